"""Storing notifications: one row per channel, our id recorded before any provider is called, the
send enqueued after the commit on the queue of its priority. What a provider is then asked to do
is decided by `rules` (before any provider) and `delivery` (the providers, in order)."""

from datetime import datetime

from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import Channel, Member, Notification, NotificationStatus, Priority
from app.models.base import utcnow
from app.services.after_commit import enqueue_after_commit
from app.services.errors import ServiceError, ValidationFailed
from app.services.notifications import config
from app.services.notifications.sms_text import shape
from app.services.validation import normalize_email, normalize_phone

SEND_JOB = "app.jobs.notifications.deliver"
QUEUE_OF = {Priority.HIGH: "high", Priority.NORMAL: "default", Priority.LOW: "low"}
CHANNELS = {"sms": (Channel.SMS,), "email": (Channel.EMAIL,), "both": (Channel.SMS, Channel.EMAIL)}
MAX_MESSAGE = 10_000
MAX_SUBJECT = 200


def _contact(member: Member, channel: str) -> str | None:
    return member.phone if channel == Channel.SMS else member.email


def create(
    recipient_id,
    message: str,
    channel: str,
    subject: str | None = None,
    options: dict | None = None,
    html_message: str | None = None,
) -> list[Notification]:
    """Store one notification per channel of `channel` (sms, email or both) for member
    `recipient_id` and enqueue each send after the commit (scheduled ones wait for the minute
    sweep). ValidationFailed names each bad argument. With options["dedupe_key"], a second call
    with the same key stores nothing and returns []. Commits."""
    options = dict(options or {})
    errors: dict[str, str] = {}
    member = db.session.get(Member, int(recipient_id)) if str(recipient_id).isdigit() else None
    if member is None:
        errors["recipient_id"] = "There is no such member."
    if channel not in CHANNELS:
        errors["channel"] = "Choose sms, email or both."
    text = (message or "").replace("\x00", "").strip()
    if not text:
        errors["message"] = "Write the message."
    elif len(text) > MAX_MESSAGE:
        errors["message"] = f"Use at most {MAX_MESSAGE:,} characters."
    subject = (subject or "").replace("\x00", "").strip() or None
    if subject and len(subject) > MAX_SUBJECT:
        errors["subject"] = f"Use at most {MAX_SUBJECT} characters."
    priority = options.get("priority") or Priority.NORMAL
    if priority not in set(Priority):
        errors["priority"] = "Choose high, normal or low."
    scheduled_for = options.get("scheduled_for")
    if scheduled_for is not None and (
        not isinstance(scheduled_for, datetime) or scheduled_for.tzinfo is None
    ):
        errors["scheduled_for"] = "Give a time with its time zone."
    if errors:
        raise ValidationFailed(errors)
    settings = config.current()
    rows = []
    for each in CHANNELS[channel]:
        row = Notification(
            recipient_id=member.id,
            notification_type=str(options.get("type") or "general")[:40],
            channel=each,
            subject=(subject or "Daystar SACCO") if each == Channel.EMAIL else None,
            message=text,
            html_message=html_message if each == Channel.EMAIL else None,
            recipient_contact=_contact(member, each),
            status=NotificationStatus.PENDING,
            priority=priority,
            max_retries=int(settings.max_retries),
            scheduled_for=scheduled_for,
            event_type=(options.get("event_type") or None),
            template=(options.get("template") or None),
            dedupe_key=f"{options['dedupe_key']}:{each}" if options.get("dedupe_key") else None,
        )
        if each == Channel.SMS:
            sms = shape(text)
            row.encoding, row.segments = sms.encoding, sms.segments
        db.session.add(row)
        rows.append(row)
    try:
        db.session.flush()
    except IntegrityError:  # the dedupe key was used: this reminder went already
        db.session.rollback()
        return []
    for row in rows:
        if row.scheduled_for is None or row.scheduled_for <= utcnow():
            enqueue_after_commit(
                SEND_JOB, row.id, queue=QUEUE_OF[priority], job_id=f"notify-{row.id}"
            )
    db.session.commit()
    return rows


def send_notification(recipient_id, message, channel, subject=None, options=None) -> dict:
    """The previous system's call: {"success", "notification_ids", "message"}."""
    try:
        rows = create(recipient_id, message, channel, subject, options)
    except ServiceError as exc:
        return {"success": False, "notification_ids": [], "message": exc.message}
    return {
        "success": True,
        "notification_ids": [row.id for row in rows],
        "message": f"{len(rows)} notification(s) queued.",
    }


def create_for_contact(
    contact: str,
    message: str,
    channel: str,
    subject: str | None = None,
    options: dict | None = None,
    html_message: str | None = None,
) -> list[Notification]:
    """Store one notification to a phone number (sms) or email address (email) that belongs to
    no member, such as an administrator's alert, and enqueue its send after the commit; options
    and dedupe keys as create(), and options["provider"] sends through that provider only instead
    of the failover order (an administrator's test message). ValidationFailed names each bad
    argument. Commits."""
    options = dict(options or {})
    errors: dict[str, str] = {}
    if channel not in (Channel.SMS, Channel.EMAIL):
        errors["channel"] = "Choose sms or email."
    try:
        contact = normalize_phone(contact) if channel == Channel.SMS else normalize_email(contact)
    except ValueError as exc:
        errors["contact"] = str(exc)
    if not contact and "contact" not in errors:
        errors["contact"] = "Give the phone number or email address."
    text = (message or "").replace("\x00", "").strip()
    if not text or len(text) > MAX_MESSAGE:
        errors["message"] = f"Write the message (at most {MAX_MESSAGE:,} characters)."
    subject = ((subject or "").replace("\x00", "").strip() or "Daystar SACCO")[:MAX_SUBJECT]
    priority = options.get("priority") or Priority.NORMAL
    if priority not in set(Priority):
        errors["priority"] = "Choose high, normal or low."
    provider = options.get("provider") or None
    known = config.SMS_PROVIDERS if channel == Channel.SMS else config.EMAIL_PROVIDERS
    if provider is not None and provider not in known:
        errors["provider"] = f"Choose one of {', '.join(known)}."
    if errors:
        raise ValidationFailed(errors)
    row = Notification(
        recipient_id=None,
        provider=provider,  # set before sending only when forced (see delivery._try_providers)
        notification_type=str(options.get("type") or "general")[:40],
        channel=channel,
        subject=subject if channel == Channel.EMAIL else None,
        message=text,
        html_message=html_message if channel == Channel.EMAIL else None,
        recipient_contact=contact,
        status=NotificationStatus.PENDING,
        priority=priority,
        max_retries=int(config.current().max_retries),
        event_type=(options.get("event_type") or None),
        template=(options.get("template") or None),
        dedupe_key=f"{options['dedupe_key']}:{channel}" if options.get("dedupe_key") else None,
    )
    if channel == Channel.SMS:
        sms = shape(text)
        row.encoding, row.segments = sms.encoding, sms.segments
    db.session.add(row)
    try:
        db.session.flush()
    except IntegrityError:  # the dedupe key was used: this one went already
        db.session.rollback()
        return []
    enqueue_after_commit(SEND_JOB, row.id, queue=QUEUE_OF[priority], job_id=f"notify-{row.id}")
    db.session.commit()
    return [row]
