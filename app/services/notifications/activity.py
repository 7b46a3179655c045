"""What the gateway writes to the integration log: each failed provider attempt (grouped by
provider and outcome), a provider's circuit opening, and notifications that failed for good,
which are also dashboard activity. Accepted messages are not logged: the notifications table is
their record."""

from app.integrations.notify.base import SendResult
from app.models import Integration, LogLevel, Notification
from app.services import integration_log


def _record(row: Notification, event: str, message: str, level: str, **options) -> None:
    integration_log.record(
        Integration.NOTIFICATIONS,
        event,
        message,
        level,
        notification_id=row.id,
        member_id=row.recipient_id,
        **options,
    )


def provider_failed(row: Notification, result: SendResult) -> None:
    _record(
        row,
        "notify.provider_failed",
        f"{row.channel.upper()} {row.id} via {result.provider}: {result.outcome}. {result.detail}",
        LogLevel.WARNING,
        context={"provider": result.provider, "http_status": result.http_status},
        error_kind=f"{result.provider}: {result.outcome}",
    )


def circuit_opened(row: Notification, provider: str, cooling_off_seconds: int) -> None:
    _record(
        row,
        "notify.circuit_opened",
        f"{provider} failed repeatedly: skipped for {cooling_off_seconds} s.",
        LogLevel.WARNING,
        context={"provider": provider},
        error_kind=f"{provider}: circuit open",
        activity=True,
    )


def failed(
    row: Notification, reason: str, retrying: bool, kind: str = "every provider failed"
) -> None:
    """A notification no provider took: a warning while it will be retried, an error (and
    activity) once it has failed for good."""
    _record(
        row,
        "notify.retrying" if retrying else "notify.failed",
        f"{row.channel.upper()} {row.id} to {row.recipient_contact} "
        + ("will be retried: " if retrying else "failed: ")
        + reason,
        LogLevel.WARNING if retrying else LogLevel.ERROR,
        error_kind=kind,
        activity=not retrying,
    )
