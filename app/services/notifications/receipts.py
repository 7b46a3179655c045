"""Delivery receipts: stored as they arrive (verified by the route first), applied to their
notification forward only: a late `sent` never overwrites `delivered`, a duplicate receipt changes
nothing, and a receipt that comes before the send was recorded waits and is applied then.
Bounces, complaints and STOP replies feed the suppression list."""

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.extensions import db
from app.integrations.notify.base import DeliveryReceipt, DeliveryStatus
from app.models import (
    Channel,
    NotificationReceipt,
    NotificationStatus,
    Suppression,
    SuppressionReason,
)
from app.models.base import utcnow
from app.models.notifications import STATUS_RANK, UNSENT
from app.services.notifications.status_change import NOTIFICATIONS, move

# What each receipt state makes of a notification.
NOTIFICATION_STATUS = {
    DeliveryStatus.QUEUED: NotificationStatus.SENT,
    DeliveryStatus.SENT: NotificationStatus.SENT,
    DeliveryStatus.DELIVERED: NotificationStatus.DELIVERED,
    DeliveryStatus.FAILED: NotificationStatus.FAILED,
    DeliveryStatus.UNDELIVERED: NotificationStatus.FAILED,
    DeliveryStatus.BOUNCED: NotificationStatus.FAILED,
    DeliveryStatus.COMPLAINED: None,  # delivered, then marked as spam: suppress only
    DeliveryStatus.UNSUBSCRIBED: None,
}
SUPPRESS = {
    DeliveryStatus.BOUNCED: SuppressionReason.HARD_BOUNCE,
    DeliveryStatus.COMPLAINED: SuppressionReason.COMPLAINT,
    DeliveryStatus.UNSUBSCRIBED: SuppressionReason.UNSUBSCRIBE,
    DeliveryStatus.UNDELIVERED: SuppressionReason.INVALID,
}


def _event_id(receipt: DeliveryReceipt) -> str:
    return (
        receipt.event_id or f"{receipt.provider_message_id}:{receipt.status}:{receipt.occurred_at}"
    )[:200]


def store(receipts: list[DeliveryReceipt]) -> list[int]:
    """Keep each receipt once (a provider-unique event id) and apply what can be applied, in one
    transaction. Commits; returns the ids of the receipts that were new."""
    new, waiting = [], []
    for receipt in receipts:
        row = _notification_for(receipt.provider, receipt.provider_message_id, receipt.reference)
        applies = _ready(row)
        receipt_id = _keep_once(receipt, applied_to=row.id if applies else None)
        if receipt_id is None:
            continue  # the same event again: nothing to do
        new.append(receipt_id)
        if applies:
            _apply(receipt, row)
        else:
            waiting.append((receipt_id, receipt))
    db.session.commit()  # each receipt with what it changed, or kept waiting for its send
    for receipt_id, receipt in waiting:
        _apply_if_sent_since(receipt_id, receipt)
    return new


def _apply_if_sent_since(receipt_id: int, receipt: DeliveryReceipt) -> None:
    """A receipt that found no recorded send may have come while the send was being recorded:
    the job recording it looks for waiting receipts once its own commit is done, and may have
    looked before this receipt was committed. Looked for again now, after that commit, one of
    the two sees the other's (the receipt is claimed, so it is applied once). Commits."""
    row = _notification_for(receipt.provider, receipt.provider_message_id, receipt.reference)
    if _ready(row) and _claim(receipt_id, row.id):
        _apply(receipt, row)
    db.session.commit()


# Receipts come two or more per message, each in a request of its own: the statements are built
# once, with bound parameters, so that a receipt costs the database's work and little else.
RECEIPTS = NotificationReceipt.__table__
_FOUND = (NOTIFICATIONS.c.id, NOTIFICATIONS.c.status, NOTIFICATIONS.c.channel,
          NOTIFICATIONS.c.recipient_contact)  # fmt: skip
_BY_MESSAGE_ID = (NOTIFICATIONS.c.provider == bindparam("provider")) & (
    NOTIFICATIONS.c.provider_message_id == bindparam("message_id")
)
_BY_REFERENCE = NOTIFICATIONS.c.id == bindparam("notification_id")
FIND = {
    (True, False): select(*_FOUND).where(_BY_MESSAGE_ID).limit(1),
    (False, True): select(*_FOUND).where(_BY_REFERENCE).limit(1),
    (True, True): select(*_FOUND).where(or_(_BY_MESSAGE_ID, _BY_REFERENCE)).limit(1),
}
CLAIM = update(RECEIPTS).where(
    RECEIPTS.c.id == bindparam("receipt_id"), RECEIPTS.c.applied_at.is_(None)
)
KEEP_ONCE = {
    name: dialect_insert(RECEIPTS).on_conflict_do_nothing().returning(RECEIPTS.c.id)
    for name, dialect_insert in (("postgresql", postgresql_insert), ("sqlite", sqlite_insert))
}


def _keep_once(receipt: DeliveryReceipt, applied_to: int | None) -> int | None:
    """Insert the receipt unless its event is stored already, as applied to the notification
    `applied_to` or, without one, waiting; its id, or None. One statement (INSERT ... ON
    CONFLICT DO NOTHING), not a savepoint that an ORM flush would need."""
    now = utcnow()
    values = {
        "provider": receipt.provider,
        "event_id": _event_id(receipt),
        "provider_message_id": receipt.provider_message_id,
        "reference": (receipt.reference or "")[:40] or None,
        "status": str(receipt.status),
        "permanent": receipt.permanent,
        "detail": receipt.detail[:2000],
        "occurred_at": receipt.occurred_at,
        "payload": receipt.raw,
        "received_at": now,
        "cost": receipt.cost,
        "currency": (receipt.currency or "")[:3] or None,
        "notification_id": applied_to,
        "applied_at": now if applied_to is not None else None,
    }
    statement = KEEP_ONCE[db.session.get_bind().dialect.name]
    return db.session.execute(statement, values).scalar()


@dataclass
class Found:
    """The notification a receipt is about, as this transaction last saw or left it."""

    id: int
    status: str
    channel: str
    recipient_contact: str | None


def _our_id(reference: str | None) -> int | None:
    """The notification id we passed the provider, when the receipt's reference is one."""
    return int(reference) if reference and reference.isdigit() else None


def _notification_for(provider: str, message_id: str | None, reference: str | None):
    """The notification a receipt is about, or None."""
    our_id = _our_id(reference)
    if not (message_id or our_id is not None):
        return None
    parameters = {"provider": provider, "message_id": message_id}
    if our_id is not None:
        parameters["notification_id"] = our_id
    row = db.session.execute(FIND[bool(message_id), our_id is not None], parameters).first()
    return Found(*row) if row else None


def _ready(row: Found | None) -> bool:
    """Whether a receipt about `row` can be applied now: its notification is known and its send
    has been recorded (else the receipt waits for it)."""
    return row is not None and row.status not in UNSENT


def _apply(receipt: DeliveryReceipt, row: Found) -> None:
    """Apply a receipt to its notification `row`, which is _ready; the caller marks the receipt
    applied and commits."""
    target = NOTIFICATION_STATUS.get(receipt.status)
    if (
        receipt.status == DeliveryStatus.FAILED
        and row.channel == Channel.EMAIL
        and not receipt.permanent
    ):
        target = None  # a soft bounce or deferral: the mail server keeps trying
    if target is not None and STATUS_RANK[target] > STATUS_RANK[NotificationStatus(row.status)]:
        changes = {"status": str(target)}
        if target == NotificationStatus.DELIVERED:
            changes["delivered_at"] = receipt.occurred_at or utcnow()
        elif target == NotificationStatus.FAILED:
            changes["failed_at"] = receipt.occurred_at or utcnow()
            changes["skip_reason"] = (receipt.detail or receipt.status)[:200]
        if receipt.cost is not None:
            changes.update(cost=receipt.cost, currency=receipt.currency)
        if move(row.id, (row.status,), **changes):  # unless another receipt moved it first
            row.status = str(target)
    if receipt.status in SUPPRESS and (
        receipt.permanent or receipt.status != DeliveryStatus.UNDELIVERED
    ):
        suppress(row.channel, row.recipient_contact, SUPPRESS[receipt.status], receipt.provider,
                 receipt.detail)  # fmt: skip


def _claim(receipt_id: int, notification_id: int) -> bool:
    """Mark a waiting receipt applied to `notification_id`; False when another transaction
    (the route that stored it, or a job that recorded its send) has applied it first."""
    values = {"receipt_id": receipt_id, "notification_id": notification_id, "applied_at": utcnow()}
    return db.session.execute(CLAIM, values).rowcount == 1


def suppress(channel: str, contact: str | None, reason: str, provider: str, detail: str) -> None:
    """Put a contact a provider refused on the suppression list, unless it is there already
    (for a send's permanent failure, a bounce, a complaint or an unsubscribe). The caller
    commits. Staff add and lift entries through suppressions.py, audited."""
    if not contact:
        return
    exists = db.session.scalar(
        select(Suppression.id).where(Suppression.channel == channel, Suppression.contact == contact)
    )
    if exists is None:
        db.session.add(
            Suppression(channel=channel, contact=contact, reason=reason, provider=provider,
                        detail=detail[:500])
        )  # fmt: skip


def apply_waiting(notification_ids: list[int]) -> int:
    """Apply the receipts that arrived before these notifications' sends were recorded (two
    queries for all of them, then only the changes); how many were applied."""
    if not notification_ids:
        return 0
    sent = db.session.execute(
        select(*_FOUND, NOTIFICATIONS.c.provider, NOTIFICATIONS.c.provider_message_id).where(
            NOTIFICATIONS.c.id.in_(notification_ids)
        )
    ).all()
    found = {row.id: Found(*row[: len(_FOUND)]) for row in sent}
    by_message = {
        (row.provider, row.provider_message_id): found[row.id]
        for row in sent
        if row.provider_message_id
    }
    waiting = db.session.execute(
        select(
            RECEIPTS.c.id, RECEIPTS.c.provider, RECEIPTS.c.status,
            RECEIPTS.c.provider_message_id, RECEIPTS.c.reference, RECEIPTS.c.occurred_at,
            RECEIPTS.c.detail, RECEIPTS.c.permanent, RECEIPTS.c.cost, RECEIPTS.c.currency,
        )
        .where(
            RECEIPTS.c.applied_at.is_(None),
            or_(
                RECEIPTS.c.provider_message_id.in_([key[1] for key in by_message]),
                RECEIPTS.c.reference.in_([str(n) for n in found]),
            ),
        )
        .order_by(RECEIPTS.c.id)
    ).all()  # fmt: skip
    applied = 0
    for stored in waiting:
        receipt = DeliveryReceipt(
            provider=stored.provider,
            status=DeliveryStatus(stored.status),
            provider_message_id=stored.provider_message_id,
            reference=stored.reference,
            occurred_at=stored.occurred_at,
            detail=stored.detail,
            permanent=stored.permanent,
            cost=stored.cost,
            currency=stored.currency,
        )
        row = by_message.get((stored.provider, stored.provider_message_id))
        if row is None:
            row = found.get(_our_id(stored.reference))
        if _ready(row) and _claim(stored.id, row.id):
            _apply(receipt, row)
            applied += 1
    db.session.commit()
    return applied


SWEEP_AFTER = timedelta(minutes=1)  # a send being recorded now applies its own receipts
SWEEP_WINDOW = timedelta(days=2)
SWEEP_LIMIT = 1000


def apply_left_waiting() -> int:
    """Receipts still waiting although their notification has been sent: the route and the send
    job each look for the other (store, apply_waiting), so only a look that never happened (a
    process stopped between its commit and its look) leaves one. Those received between a
    minute and two days ago, the newest 1,000 (receipts of messages we never sent wait for ever
    and are skipped); how many were applied. Run every minute."""
    now = utcnow()
    waiting = db.session.execute(
        select(RECEIPTS.c.provider_message_id, RECEIPTS.c.reference)
        .where(
            RECEIPTS.c.applied_at.is_(None),
            RECEIPTS.c.received_at < now - SWEEP_AFTER,
            RECEIPTS.c.received_at > now - SWEEP_WINDOW,
        )
        .order_by(RECEIPTS.c.id.desc())
        .limit(SWEEP_LIMIT)
    ).all()
    message_ids = {row.provider_message_id for row in waiting if row.provider_message_id}
    ours = {_our_id(row.reference) for row in waiting} - {None}
    if not (message_ids or ours):
        return 0
    sent = db.session.scalars(
        select(NOTIFICATIONS.c.id).where(
            or_(NOTIFICATIONS.c.provider_message_id.in_(message_ids), NOTIFICATIONS.c.id.in_(ours)),
            NOTIFICATIONS.c.status.not_in(UNSENT),
        )
    ).all()
    return apply_waiting(list(sent))
