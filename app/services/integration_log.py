"""Writing the integration log. `record` adds an entry to the caller's transaction, so that it
commits (or rolls back) with the change it describes; `record_now` writes it on a connection of
its own, for failures whose transaction is about to roll back."""

import logging
from datetime import date, datetime
from decimal import Decimal

from flask import g, has_request_context
from rq import get_current_job

from app.extensions import db
from app.models.integration_log import IntegrationLogEntry, LogLevel
from app.redaction import redact_text, redact_value

log = logging.getLogger(__name__)

ID_FIELDS = (
    "mpesa_transaction_id",
    "notification_id",
    "webhook_delivery_id",
    "api_key_id",
    "member_id",
)


def _plain(value):
    """`value` as JSON can hold it (money stays exact, as a string)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal | datetime | date):
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _correlation() -> dict:
    job = get_current_job()
    return {
        "request_id": g.get("request_id") if has_request_context() else None,
        "job_id": job.id if job else None,
    }


def entry(
    integration: str,
    event: str,
    message: str,
    level: str = LogLevel.INFO,
    *,
    context: dict | None = None,
    error_kind: str | None = None,
    activity: bool = False,
    **ids,
) -> IntegrationLogEntry:
    """An entry (not yet added to any session), with the current request's or job's id."""
    correlation = _correlation()
    correlation.update({k: ids.pop(k) for k in ("request_id", "job_id") if ids.get(k)})
    unknown = set(ids) - set(ID_FIELDS)
    if unknown:
        raise TypeError(f"unknown correlation ids: {', '.join(sorted(unknown))}")
    return IntegrationLogEntry(
        integration=integration,
        event=event[:60],
        message=redact_text(message),
        level=level,
        context=redact_value(_plain(context or {})),
        error_kind=(error_kind or "")[:120] or None,
        activity=activity,
        **correlation,
        **ids,
    )


def record(integration: str, event: str, message: str, level: str = LogLevel.INFO, **options):
    """Add an entry to the current transaction (the caller commits)."""
    row = entry(integration, event, message, level, **options)
    db.session.add(row)
    return row


def record_now(integration: str, event: str, message: str, level: str = LogLevel.INFO, **options):
    """Write an entry at once on a connection of its own: it stays even if the caller's
    transaction rolls back. A failure to write it is logged, never raised."""
    row = entry(integration, event, message, level, **options)
    values = {c.key: getattr(row, c.key) for c in IntegrationLogEntry.__table__.columns}
    try:
        with db.engine.begin() as connection:
            connection.execute(
                IntegrationLogEntry.__table__.insert().values(
                    {k: v for k, v in values.items() if v is not None}
                )
            )
    except Exception:  # noqa: BLE001 - the log must never break what it describes
        log.exception("could not write the integration log entry %s", event)
