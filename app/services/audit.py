"""Audit entries, added to the caller's transaction so they commit or roll back with the change."""

from app.extensions import db
from app.models import AuditLog
from app.services import audit_activity
from app.services.actor import Actor


def record(
    actor: Actor, action: str, target_type: str, target_id: int | None, **details
) -> AuditLog:
    """Add one audit entry to the current transaction (the caller commits)."""
    entry = AuditLog(
        actor_type=actor.type,
        actor_id=actor.id,
        actor_label=actor.label,
        action=action,
        target_type=target_type,
        target_id=target_id,
        details=details,
        ip=actor.ip,
    )
    db.session.add(entry)
    audit_activity.record(entry)
    return entry
