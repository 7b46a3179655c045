"""The suppression list as staff see and change it. Contacts land on it by themselves (a bounce,
complaint or unsubscribe receipt in receipts.py, a provider refusing the number in delivery.py);
staff may add one by hand (reason "manual", with a note) or lift one, after which messages go to
that contact again (rules.decide reads the list before every send). Every change is audited."""

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.integrations.notify.base import DeliveryStatus
from app.models import (
    Channel,
    Notification,
    NotificationReceipt,
    StaffUser,
    Suppression,
    SuppressionReason,
)
from app.services import audit
from app.services.actor import Actor
from app.services.errors import ValidationFailed
from app.services.lookup import get_or_not_found
from app.services.notifications.receipts import SUPPRESS
from app.services.pagination import Page, paginate
from app.services.validation import normalize_email, normalize_phone

CHANNELS = tuple(str(c) for c in Channel)
REASONS = tuple(str(r) for r in SuppressionReason)
MAX_NOTE = 500
MAX_SEARCH = 100


@dataclass(frozen=True)
class Filters:
    """Which entries a list shows: one channel, one reason, contacts containing `search`."""

    channel: str | None = None
    reason: str | None = None
    search: str = ""


def _clean(value) -> str:
    # PostgreSQL refuses NUL characters in text: drop them so that odd input is a 4xx, never a 500.
    return str(value or "").replace("\x00", "").strip()


def filters_from(channel, reason, search) -> Filters:
    """Filters from what a person typed: an unknown channel or reason means every one."""
    channel, reason = _clean(channel), _clean(reason)
    return Filters(
        channel if channel in CHANNELS else None,
        reason if reason in REASONS else None,
        _clean(search)[:MAX_SEARCH],
    )


def _contains(search: str):
    """A contact search: case-insensitive, and a phone number typed as 0712 345 678 finds
    254712345678."""
    text = search.lower()
    digits = re.sub(r"[\s()+-]", "", text)
    if digits.isdigit():
        text = digits[1:] if digits.startswith("0") else digits
    return func.lower(Suppression.contact).contains(text, autoescape=True)


def list_entries(filters: Filters, page: int, per_page: int) -> Page:
    """One page of the list, newest first: two queries."""
    query = select(Suppression).order_by(Suppression.created_at.desc(), Suppression.id.desc())
    if filters.channel:
        query = query.where(Suppression.channel == filters.channel)
    if filters.reason:
        query = query.where(Suppression.reason == filters.reason)
    if filters.search:
        query = query.where(_contains(filters.search))
    return paginate(query, page, per_page)


@dataclass(frozen=True)
class Origin:
    """Where an entry came from: the delivery receipt that put it there (if a receipt did), or
    the staff member who added it by hand."""

    receipt_status: str | None = None
    receipt_event: str | None = None
    receipt_at: datetime | None = None
    added_by: str | None = None


def origins(entries: list[Suppression]) -> dict[int, Origin]:
    """The origin of each entry on a page, by id: two queries whatever the page's size."""
    staff_ids = {e.created_by_id for e in entries if e.created_by_id}
    emails = (
        dict(
            db.session.execute(
                select(StaffUser.id, StaffUser.email).where(StaffUser.id.in_(staff_ids))
            ).all()
        )
        if staff_ids
        else {}
    )
    automatic = [e for e in entries if e.reason != SuppressionReason.MANUAL]
    receipts: dict[tuple[str, str], list] = {}
    if automatic:
        suppressing = [str(status) for status in SUPPRESS if status != DeliveryStatus.UNDELIVERED]
        rows = db.session.execute(
            select(
                Notification.channel,
                Notification.recipient_contact,
                NotificationReceipt.status,
                NotificationReceipt.event_id,
                NotificationReceipt.occurred_at,
                NotificationReceipt.received_at,
            )
            .join(Notification, NotificationReceipt.notification_id == Notification.id)
            .where(
                Notification.recipient_contact.in_({e.contact for e in automatic}),
                or_(
                    NotificationReceipt.status.in_(suppressing),
                    (NotificationReceipt.status == DeliveryStatus.UNDELIVERED)
                    & NotificationReceipt.permanent.is_(True),
                ),
            )
            .order_by(NotificationReceipt.received_at)
        ).all()
        for channel, contact, *receipt in rows:
            receipts.setdefault((channel, contact), []).append(receipt)
    found = {}
    for entry in entries:
        # The latest suppressing receipt that came before the entry was made.
        before = [
            r for r in receipts.get((entry.channel, entry.contact), []) if r[3] <= entry.created_at
        ]
        status, event, occurred, received = before[-1] if before else (None, None, None, None)
        found[entry.id] = Origin(
            status, event, occurred or received, emails.get(entry.created_by_id)
        )
    return found


def get(suppression_id) -> Suppression:
    """The entry, or NotFound."""
    return get_or_not_found(
        Suppression, suppression_id, "That contact is not on the suppression list (any more)."
    )


def add(channel, contact, note, actor: Actor) -> Suppression:
    """Put a contact on the list by hand (reason "manual"): no message goes to it on that channel
    until it is lifted. ValidationFailed names each bad field. Audited; commits."""
    channel, contact, note = _clean(channel), _clean(contact), _clean(note)
    errors: dict[str, str] = {}
    if channel not in CHANNELS:
        errors["channel"] = "Choose SMS or email."
    else:
        try:
            normalised = (
                normalize_phone(contact) if channel == Channel.SMS else normalize_email(contact)
            )
        except ValueError as exc:
            errors["contact"] = str(exc)
        else:
            if normalised:
                contact = normalised
            else:
                errors["contact"] = "Enter the email address."
    if not note:
        errors["note"] = "Say why messages to this contact must stop (it goes in the audit log)."
    elif len(note) > MAX_NOTE:
        errors["note"] = f"Use at most {MAX_NOTE} characters."
    if errors:
        raise ValidationFailed(errors)
    taken = db.session.scalar(
        select(Suppression.reason).where(
            Suppression.channel == channel, Suppression.contact == contact
        )
    )
    if taken:
        raise ValidationFailed({"contact": f"{contact} is on the list already ({taken})."})
    entry = Suppression(
        channel=channel,
        contact=contact,
        reason=SuppressionReason.MANUAL,
        detail=note,
        created_by_id=actor.staff_id,
    )
    db.session.add(entry)
    try:
        db.session.flush()
    except IntegrityError:  # added by a receipt at the same moment
        db.session.rollback()
        raise ValidationFailed({"contact": f"{contact} is on the list already."}) from None
    audit.record(
        actor,
        "notification_suppression.added",
        "notification_suppression",
        entry.id,
        channel=channel,
        contact=contact,
        note=note,
    )
    db.session.commit()
    return entry


@dataclass(frozen=True)
class Lifted:
    """An entry that was taken off the list."""

    channel: str
    contact: str
    reason: str


def remove(suppression_id, actor: Actor, note=None) -> Lifted:
    """Take an entry off the list: messages go to that contact on that channel again. The note
    (optional) says why. NotFound when it is gone already. Audited; commits."""
    note = _clean(note)
    if len(note) > MAX_NOTE:
        raise ValidationFailed({"note": f"Use at most {MAX_NOTE} characters."})
    entry = get(suppression_id)
    lifted = Lifted(entry.channel, entry.contact, entry.reason)
    audit.record(
        actor,
        "notification_suppression.removed",
        "notification_suppression",
        entry.id,
        channel=entry.channel,
        contact=entry.contact,
        reason=entry.reason,
        provider=entry.provider,
        detail=entry.detail,
        note=note or None,
    )
    db.session.delete(entry)
    db.session.commit()
    return lifted
