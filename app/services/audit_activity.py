"""Audit entries that are also integration activity: a key created, a webhook endpoint disabled,
a reconciliation finished... each becomes an integration log entry in the same transaction, so
the dashboard's activity feed and the log browser show them without every caller writing twice."""

from app.models import AuditLog, Integration, LogLevel
from app.services import integration_log

# action -> (integration, level, what happened)
ACTIVITY = {
    "api_key.created": (Integration.ACCOUNTING_API, LogLevel.INFO, "API key created"),
    "api_key.rotated": (Integration.ACCOUNTING_API, LogLevel.INFO, "API key rotated"),
    "api_key.revoked": (Integration.ACCOUNTING_API, LogLevel.INFO, "API key revoked"),
    "webhook_endpoint.created": (Integration.WEBHOOKS, LogLevel.INFO, "Webhook endpoint added"),
    "webhook_endpoint.enabled": (Integration.WEBHOOKS, LogLevel.INFO, "Webhook endpoint enabled"),
    "webhook_endpoint.disabled": (
        Integration.WEBHOOKS,
        LogLevel.WARNING,
        "Webhook endpoint disabled",
    ),
    "webhook_endpoint.deleted": (Integration.WEBHOOKS, LogLevel.INFO, "Webhook endpoint deleted"),
    "mpesa.disbursement_requested": (Integration.MPESA, LogLevel.INFO, "Disbursement requested"),
    "mpesa.disbursement_approved": (Integration.MPESA, LogLevel.INFO, "Disbursement approved"),
    "mpesa_reconciliation.finished": (Integration.MPESA, LogLevel.INFO, "Reconciliation finished"),
    "mpesa_suspense.resolved": (Integration.MPESA, LogLevel.INFO, "Suspense item allocated"),
    "broadcast.queued": (Integration.NOTIFICATIONS, LogLevel.INFO, "Broadcast queued"),
    "job.retried": (Integration.JOBS, LogLevel.INFO, "Failed job retried"),
    "job.deleted": (Integration.JOBS, LogLevel.INFO, "Failed job deleted"),
    "job.retried_all": (Integration.JOBS, LogLevel.INFO, "Failed jobs retried"),
    "job.deleted_all": (Integration.JOBS, LogLevel.INFO, "Failed jobs deleted"),
    "mpesa.settings_changed": (Integration.MPESA, LogLevel.INFO, "M-Pesa settings changed"),
    "notify.settings_changed": (
        Integration.NOTIFICATIONS,
        LogLevel.INFO,
        "Notification settings changed",
    ),
}

TARGET_IDS = {
    "api_key": "api_key_id",
    "mpesa_transaction": "mpesa_transaction_id",
    "member": "member_id",
}


def record(entry: AuditLog) -> None:
    """Add the integration log entry for an audit entry that is activity (others: nothing)."""
    known = ACTIVITY.get(entry.action)
    if known is None:
        return
    integration, level, what = known
    target = f" {entry.target_type.replace('_', ' ')} {entry.target_id}" if entry.target_id else ""
    id_field = TARGET_IDS.get(entry.target_type)
    ids = {id_field: entry.target_id} if id_field and entry.target_id else {}
    integration_log.record(
        integration,
        entry.action,
        f"{what}:{target} by {entry.actor_label}." if target else f"{what} by {entry.actor_label}.",
        level,
        context={
            "audit": entry.details or {},
            "target": entry.target_type,
            "target_id": entry.target_id,
        },
        activity=True,
        **ids,
    )
