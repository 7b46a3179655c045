"""An administrator's test message: stored through the gateway like any notification (sent by the
worker, never in the web request), at high priority so quiet hours do not hold it, marked as a
test so the duplicate rule lets a repeat through, optionally forced through one provider; and
its progress, provider attempt by attempt, while it is sent and its receipts arrive."""

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select

from app.extensions import db
from app.models import (
    Channel,
    Notification,
    NotificationAttempt,
    NotificationReceipt,
    NotificationStatus,
    Priority,
)
from app.models.base import utcnow
from app.services import audit
from app.services.actor import Actor
from app.services.errors import NotFound, ValidationFailed
from app.services.lookup import ID_MAX
from app.services.notifications import config, gateway, providers
from app.services.notifications.admin_settings import PROVIDER_LABELS
from app.services.notifications.rules import TEST_TYPE
from app.services.validation import normalize_email, normalize_phone

FINAL = (NotificationStatus.DELIVERED, NotificationStatus.FAILED, NotificationStatus.SKIPPED)
# How long the result panel keeps asking after the notification last changed: a sent message
# whose receipt never comes (no public address, a provider that reports nothing) stops there.
WAIT = timedelta(minutes=2)


def _known(channel: str) -> tuple[str, ...]:
    return config.SMS_PROVIDERS if channel == Channel.SMS else config.EMAIL_PROVIDERS


def _check(channel: str, recipient: str, message: str, subject: str, provider: str | None):
    """Each bad field's message, by the form's names: what the gateway would refuse, and a
    channel or forced provider that no configured provider can serve."""
    errors: dict[str, str] = {}
    if channel not in (Channel.SMS, Channel.EMAIL):
        return {"channel": "Choose SMS or email."}
    try:
        contact = (
            normalize_phone(recipient) if channel == Channel.SMS else normalize_email(recipient)
        )
        if not contact:
            raise ValueError("Enter the email address.")
    except ValueError as exc:
        errors["recipient"] = str(exc)
    text = (message or "").replace("\x00", "").strip()
    if not text:
        errors["message"] = "Write the message."
    elif len(text) > gateway.MAX_MESSAGE:
        errors["message"] = f"Use at most {gateway.MAX_MESSAGE:,} characters."
    if len((subject or "").strip()) > gateway.MAX_SUBJECT:
        errors["subject"] = f"Use at most {gateway.MAX_SUBJECT} characters."
    word = "an SMS" if channel == Channel.SMS else "an email"
    if provider:
        if provider not in _known(channel):
            errors["provider"] = f"{PROVIDER_LABELS.get(provider, provider)} cannot send {word}."
        elif providers.client_for(provider) is None:
            errors["provider"] = (
                f"{PROVIDER_LABELS[provider]} is not configured: set its settings first."
            )
    elif not any(providers.client_for(name) for name in config.current().order(channel)):
        errors["provider"] = (
            f"No provider in the failover order can send {word}: configure one first."
        )
    return errors


def send(
    channel: str,
    recipient: str,
    message: str,
    actor: Actor,
    subject: str | None = None,
    provider: str | None = None,
) -> Notification:
    """Store the test message and enqueue its send after the commit. The audit entry commits
    with the notification (never one without the other); its target id, unknown until the
    gateway has stored the row, is filled in just after. ValidationFailed names each bad field:
    channel, recipient, subject, message, provider."""
    provider = (provider or "").strip().lower() or None
    errors = _check(channel, recipient, message, subject or "", provider)
    if errors:
        raise ValidationFailed(errors)
    entry = audit.record(
        actor, "notify.test_message_sent", "notification", None,
        channel=channel, provider=provider or "failover order",
    )  # fmt: skip
    try:
        (row,) = gateway.create_for_contact(
            recipient,
            message,
            channel,
            subject,
            {"priority": Priority.HIGH, "type": TEST_TYPE, "provider": provider},
        )
    except ValidationFailed as exc:
        db.session.rollback()
        raise ValidationFailed(
            {("recipient" if k == "contact" else k): v for k, v in exc.errors.items()}
        ) from None
    entry.target_id = row.id
    db.session.commit()
    return row


@dataclass(frozen=True)
class Progress:
    notification: Notification
    attempts: list[NotificationAttempt]
    receipts: list[NotificationReceipt]
    final: bool  # nothing more will change by itself (or we stopped waiting): stop asking
    gave_up: bool  # not final, but it has not changed for WAIT


def progress(notification_id: int) -> Progress:
    """Where a test message stands: its status, every provider attempt and every receipt, oldest
    first. NotFound unless it is a test message."""
    row = db.session.get(Notification, notification_id) if 0 < notification_id <= ID_MAX else None
    if row is None or row.notification_type != TEST_TYPE:
        raise NotFound(f"There is no test message {notification_id}.")
    attempts = list(
        db.session.scalars(
            select(NotificationAttempt)
            .where(NotificationAttempt.notification_id == row.id)
            .order_by(NotificationAttempt.id)
        )
    )
    receipts = list(
        db.session.scalars(
            select(NotificationReceipt)
            .where(NotificationReceipt.notification_id == row.id)
            .order_by(NotificationReceipt.id)
        )
    )
    gave_up = row.status not in FINAL and utcnow() - row.updated_at > WAIT
    return Progress(row, attempts, receipts, row.status in FINAL or gave_up, gave_up)


def receipts_expected(provider: str | None) -> bool:
    """Whether `provider` can post delivery reports to us (our public address is set)."""
    return bool(provider and providers.callback_url(provider))
