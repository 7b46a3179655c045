"""Administrator alerts: anomalies raised by other parts of the system (a webhook endpoint
disabled, an M-Pesa payment that does not match our request, a reconciliation with
discrepancies) reach the administrators through the same gateway as member messages.

`raise_alert()` is what other services call, inside their own transaction: the alert is queued
only after that transaction commits (never for work that rolled back) and it cannot make the
caller fail. The job then calls `alert_admins()`, which sends by email to every active admin
account (staff accounts have no phone number) and by SMS to the numbers in the
`admin_alert_phones` setting, at high priority (quiet hours do not hold it). A burst does not
flood: at most one alert of a kind goes per `admin_alert_interval_minutes` (a Redis key); the
ones held back are counted and the count goes with the next alert of that kind."""

import hashlib
import logging
import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import select

from app.extensions import db
from app.jobs import redis_client
from app.models import Channel, Notification, Priority, Role, StaffUser
from app.models.base import utcnow
from app.services.after_commit import enqueue_after_commit
from app.services.errors import ValidationFailed
from app.services.notifications import config, gateway
from app.services.notifications.templates import Renderer
from app.services.validation import normalize_phone

log = logging.getLogger(__name__)

ALERT_JOB = "app.jobs.notifications.send_admin_alert"
TITLES = {
    "webhook_endpoint_disabled": "Webhook endpoint disabled",
    "mpesa_mismatch": "M-Pesa payment does not match our request",
    "reconciliation_discrepancies": "M-Pesa reconciliation found discrepancies",
    "failed_jobs": "A burst of failed background jobs",
}
_KEY = "daystar:notify:alert:{kind}"
_HELD = "daystar:notify:alert:{kind}:held"


def _plain(value):
    if isinstance(value, Decimal):
        return f"{value:,.2f}"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


def raise_alert(kind: str, message: str, details: dict | None = None) -> None:
    """Alert the administrators once the current transaction commits (nothing if it rolls
    back). Never raises: a lost alert must not cost the caller its work."""
    try:
        token = uuid.uuid4().hex
        plain = {str(k): _plain(v) for k, v in (details or {}).items()}
        enqueue_after_commit(
            ALERT_JOB,
            kind,
            str(message)[:1000],
            plain,
            token,
            queue="high",
            job_id=f"admin-alert-{token}",
        )
    except Exception:  # noqa: BLE001 - see the docstring
        log.exception("could not queue the %s alert: %s", kind, message)


def _take_slot(kind: str, token: str, interval: int) -> int | None:
    """The number of alerts of `kind` held back since the last one sent, if this alert may go
    now (a retry of the alert holding the slot may); None if it is held back (and counted)."""
    redis = redis_client()
    key = _KEY.format(kind=kind)
    if not redis.set(key, token, nx=True, ex=interval) and redis.get(key) != token.encode():
        held = _HELD.format(kind=kind)
        redis.incr(held)
        redis.expire(held, 7 * 86400)
        return None
    return int(redis.getdel(_HELD.format(kind=kind)) or 0)


def recipients(settings: config.NotifySettings) -> list[tuple[str, str]]:
    """(channel, contact) for every active administrator's email and each alert phone number."""
    emails = db.session.scalars(
        select(StaffUser.email)
        .where(StaffUser.role == Role.ADMIN, StaffUser.active.is_(True))
        .order_by(StaffUser.id)
    )
    pairs = [(Channel.EMAIL, email) for email in emails]
    for raw in settings.admin_alert_phones.replace(";", ",").split(","):
        if raw.strip():
            try:
                pairs.append((Channel.SMS, normalize_phone(raw)))
            except ValueError:
                log.warning("admin_alert_phones: %r is not a Kenyan mobile number", raw.strip())
    return pairs


def alert_admins(
    kind: str, message: str, details: dict | None = None, token: str | None = None
) -> list[Notification]:
    """Store and enqueue the alert for each administrator contact, unless an alert of `kind`
    went within the interval (then it is only counted). Commits."""
    settings = config.current()
    token = token or uuid.uuid4().hex
    interval = max(1, int(settings.admin_alert_interval_minutes)) * 60
    held = _take_slot(kind, token, interval)
    if held is None:
        log.info("admin alert %s held back (one went within the interval): %s", kind, message)
        return []
    alert = {
        "kind": kind,
        "title": TITLES.get(kind, kind.replace("_", " ").capitalize()),
        "message": message,
        "details": dict(details or {}),
        "raised_at": utcnow(),
        "suppressed": held,
    }
    rendered = Renderer("admin_alert").render({"alert": alert})
    options = {"type": "admin_alert", "template": "admin_alert", "priority": Priority.HIGH}
    rows = []
    for channel, contact in recipients(settings):
        digest = hashlib.sha256(contact.encode()).hexdigest()[:16]
        each = {**options, "dedupe_key": f"alert:{token}:{digest}"}
        try:
            if channel == Channel.SMS:
                rows += gateway.create_for_contact(contact, rendered.sms, Channel.SMS, None, each)
            else:
                rows += gateway.create_for_contact(
                    contact, rendered.text, Channel.EMAIL, rendered.subject, each, rendered.html
                )
        except ValidationFailed as exc:  # an admin account with an odd address: tell the log
            log.warning("admin alert not stored for %s: %s", contact, exc.message)
    if not rows:
        log.warning("admin alert %s reached nobody (no active admin, no alert phone)", kind)
    return rows
