"""Retention: what is kept only for a while. Integration log entries and API request log rows
older than their configured ages are deleted, and old notifications lose their message bodies
(text, HTML and the provider's answer) while the row, its status and its dates stay. Each batch
is one short transaction, so no big table is locked for long; running it again finds nothing
more to do. The API request log keeps its own rule (api_log.retention_cutoff); an integration
log or notification body age of 0 or less keeps those for ever."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, or_, select, update

from app.extensions import db
from app.models import IntegrationLogEntry, Notification, NotificationStatus
from app.models.base import utcnow
from app.services import api_log

BATCH = 5_000
# A notification's body is kept while it may still be sent or retried.
FINISHED = (
    NotificationStatus.SENT,
    NotificationStatus.DELIVERED,
    NotificationStatus.FAILED,
    NotificationStatus.SKIPPED,
)


@dataclass(frozen=True)
class Pruned:
    """How many rows one run deleted or blanked."""

    integration_log: int = 0
    api_requests: int = 0
    notification_bodies: int = 0


def cutoff(setting: str, now: datetime | None = None) -> datetime | None:
    """The time before which the records `setting` (a number of days) covers go; None when the
    setting keeps them for ever."""
    days = int(current_app.config[setting])
    return (now or utcnow()) - timedelta(days=days) if days > 0 else None


def _until_done(prune_batch, before: datetime | None, batch_size: int) -> int:
    total = 0
    while before is not None:
        done = prune_batch(before, batch_size)
        total += done
        if done < batch_size:
            break
    return total


def prune_integration_log_batch(before: datetime, batch_size: int = BATCH) -> int:
    """Delete up to `batch_size` of the oldest integration log entries written before `before`
    (one transaction); how many went."""
    ids = list(
        db.session.scalars(
            select(IntegrationLogEntry.id)
            .where(IntegrationLogEntry.created_at < before)
            .order_by(IntegrationLogEntry.created_at)
            .limit(batch_size)
        )
    )
    if ids:
        db.session.execute(
            delete(IntegrationLogEntry)
            .where(IntegrationLogEntry.id.in_(ids))
            .execution_options(synchronize_session=False)
        )
    db.session.commit()
    return len(ids)


def blank_notification_bodies_batch(before: datetime, batch_size: int = BATCH) -> int:
    """Blank the message, HTML and provider answer of up to `batch_size` finished notifications
    created before `before` that still have any (one transaction); how many were blanked."""
    n = Notification
    ids = list(
        db.session.scalars(
            select(n.id)
            .where(
                n.created_at < before,
                n.status.in_(FINISHED),
                or_(n.message != "", n.html_message.is_not(None), n.provider_response.is_not(None)),
            )
            .order_by(n.created_at)
            .limit(batch_size)
        )
    )
    if ids:
        db.session.execute(
            update(n)
            .where(n.id.in_(ids))
            .values(message="", html_message=None, provider_response=None)
            .execution_options(synchronize_session=False)
        )
    db.session.commit()
    return len(ids)


def apply(now: datetime | None = None, batch_size: int = BATCH) -> Pruned:
    """Prune everything past its configured age, batch by batch; what went."""
    return Pruned(
        integration_log=_until_done(
            prune_integration_log_batch,
            cutoff("DAYSTAR_INTEGRATION_LOG_RETENTION_DAYS", now),
            batch_size,
        ),
        api_requests=_until_done(api_log.prune_batch, api_log.retention_cutoff(now), batch_size),
        notification_bodies=_until_done(
            blank_notification_bodies_batch,
            cutoff("DAYSTAR_NOTIFICATION_BODY_RETENTION_DAYS", now),
            batch_size,
        ),
    )
