"""Delivery receipts: stored as they arrive (verified by the route first), then applied to their
notification by a job (receipt_batches), forward only: a late `sent` never overwrites
`delivered`, a duplicate receipt changes nothing, and a receipt that comes before the send was
recorded waits and is applied by the job that records it. Bounces, complaints and STOP replies
feed the suppression list."""

import logging
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
from app.services.notifications import config, receipt_batches
from app.services.notifications.status_change import NOTIFICATIONS, move
from app.services.validation import normalize_phone

log = logging.getLogger(__name__)

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
    """Keep each receipt once (a provider-unique event id), to be applied by a job
    (receipt_batches): the provider's request is answered after one insert and a commit, and the
    receipts are applied in batches behind it. An opt-out, which names no message, is applied as
    it is stored. Commits; returns the ids of the receipts that were new."""
    new, to_apply = [], []
    for receipt in receipts:
        opt_out = _opt_out_contact(receipt)
        receipt_id = _keep_once(receipt, applied=opt_out is not None)
        if receipt_id is None:
            continue  # the same event again: nothing to do
        new.append(receipt_id)
        if opt_out is None:
            to_apply.append(receipt_id)
        else:
            suppress(*opt_out, SUPPRESS[receipt.status], receipt.provider, receipt.detail)
    db.session.commit()
    receipt_batches.schedule(to_apply)
    return new


def _opt_out_contact(receipt: DeliveryReceipt) -> tuple[str, str] | None:
    """(channel, contact) of a receipt that unsubscribes a contact rather than reporting on a
    message (Africa's Talking's opt-out notification, a STOP reply), else None."""
    if receipt.provider_message_id or receipt.reference or not receipt.recipient:
        return None
    if receipt.status != DeliveryStatus.UNSUBSCRIBED:
        return None
    if receipt.provider not in config.SMS_PROVIDERS:
        return Channel.EMAIL, receipt.recipient
    try:
        return Channel.SMS, normalize_phone(receipt.recipient)  # as recipient_contact holds it
    except ValueError:
        return Channel.SMS, receipt.recipient  # not a Kenyan mobile: suppressed as given


# Receipts come two or more per message, each in a request of its own: the insert is built once,
# with bound parameters, so that a receipt costs the database's work and little else.
RECEIPTS = NotificationReceipt.__table__
KEEP_ONCE = {
    name: dialect_insert(RECEIPTS).on_conflict_do_nothing().returning(RECEIPTS.c.id)
    for name, dialect_insert in (("postgresql", postgresql_insert), ("sqlite", sqlite_insert))
}
_FOUND = (NOTIFICATIONS.c.id, NOTIFICATIONS.c.status, NOTIFICATIONS.c.channel,
          NOTIFICATIONS.c.recipient_contact)  # fmt: skip
_SENT = (*_FOUND, NOTIFICATIONS.c.provider, NOTIFICATIONS.c.provider_message_id)
_WAITING = (
    RECEIPTS.c.id, RECEIPTS.c.provider, RECEIPTS.c.status, RECEIPTS.c.provider_message_id,
    RECEIPTS.c.reference, RECEIPTS.c.occurred_at, RECEIPTS.c.detail, RECEIPTS.c.permanent,
    RECEIPTS.c.cost, RECEIPTS.c.currency,
)  # fmt: skip
CLAIM = (
    update(RECEIPTS)
    .where(RECEIPTS.c.id.in_(bindparam("ids", expanding=True)), RECEIPTS.c.applied_at.is_(None))
    .values(applied_at=bindparam("now"))
    .returning(RECEIPTS.c.id)
)
APPLIED_TO = (
    update(RECEIPTS)
    .where(RECEIPTS.c.id == bindparam("receipt_id"))
    .values(notification_id=bindparam("notification_id"))
)


def _keep_once(receipt: DeliveryReceipt, applied: bool) -> int | None:
    """Insert the receipt unless its event is stored already, waiting to be applied unless
    `applied`; its id, or None. One statement (INSERT ... ON CONFLICT DO NOTHING), not a
    savepoint that an ORM flush would need."""
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
        "applied_at": now if applied else None,
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


def apply_stored(receipt_ids: list[int]) -> int:
    """Apply the receipts of `receipt_ids` that are still waiting and whose notification has been
    sent (the others wait for the send: apply_waiting); how many were applied. A few queries for
    the whole batch, then only the changes; commits. When the batch fails, its receipts are
    applied one by one, so that one that cannot be applied (logged; it stays waiting) holds up
    none of the others."""
    try:
        return _apply_stored(receipt_ids)
    except Exception:
        db.session.rollback()
        if len(receipt_ids) == 1:
            raise
    applied, failed = 0, []
    for receipt_id in receipt_ids:
        try:
            applied += _apply_stored([receipt_id])
        except Exception:  # noqa: BLE001 - logged below; the receipt stays waiting
            db.session.rollback()
            failed.append(receipt_id)
    if failed:
        log.error("delivery reports %s could not be applied; they stay waiting", failed[:20])
    return applied


def _apply_stored(receipt_ids: list[int]) -> int:
    waiting = db.session.execute(
        select(*_WAITING)
        .where(RECEIPTS.c.id.in_(receipt_ids), RECEIPTS.c.applied_at.is_(None))
        .order_by(RECEIPTS.c.id)
    ).all()
    ours = {_our_id(row.reference) for row in waiting} - {None}
    if not ours and not any(row.provider_message_id for row in waiting):
        db.session.commit()
        return 0
    sent = db.session.execute(
        select(*_SENT).where(
            or_(_about_the_messages_of(NOTIFICATIONS, waiting), NOTIFICATIONS.c.id.in_(ours))
        )
    ).all()
    return _apply_each(waiting, sent)


def apply_waiting(notification_ids: list[int]) -> int:
    """Apply the receipts that arrived before these notifications' sends were recorded (two
    queries for all of them, then only the changes); how many were applied. Commits."""
    if not notification_ids:
        return 0
    sent = db.session.execute(select(*_SENT).where(NOTIFICATIONS.c.id.in_(notification_ids))).all()
    waiting = db.session.execute(
        select(*_WAITING)
        .where(
            RECEIPTS.c.applied_at.is_(None),
            or_(
                _about_the_messages_of(RECEIPTS, sent),
                RECEIPTS.c.reference.in_([str(row.id) for row in sent]),
            ),
        )
        .order_by(RECEIPTS.c.id)
    ).all()
    return _apply_each(waiting, sent)


def _about_the_messages_of(table, rows):
    """`table`'s rows about a provider message one of `rows` names: both columns of their
    (provider, provider_message_id) index are compared, which the index serves."""
    named = [row for row in rows if row.provider_message_id]
    return table.c.provider.in_({row.provider for row in named}) & table.c.provider_message_id.in_(
        {row.provider_message_id for row in named}
    )


def _apply_each(waiting: list, sent: list) -> int:
    """Apply each of the `waiting` receipt rows, in order, whose notification is among `sent`
    and has been handed to a provider; the rest keep waiting. The receipts are claimed first
    (marked applied unless another transaction did it first), so each is applied once, however
    many jobs look at it. Commits; how many were applied."""
    found = {row.id: Found(*row[: len(_FOUND)]) for row in sent}
    by_message = {
        (row.provider, row.provider_message_id): found[row.id]
        for row in sent
        if row.provider_message_id
    }
    ready = {}
    for stored in waiting:
        row = by_message.get((stored.provider, stored.provider_message_id))
        if row is None:
            row = found.get(_our_id(stored.reference))
        if _ready(row):
            ready[stored.id] = (stored, row)
    claimed = set()
    if ready:
        claimed = set(db.session.scalars(CLAIM, {"ids": list(ready), "now": utcnow()}).all())
    for receipt_id in sorted(claimed):
        stored, row = ready[receipt_id]
        _apply(_as_receipt(stored), row)
    if claimed:
        db.session.execute(
            APPLIED_TO,
            [{"receipt_id": rid, "notification_id": ready[rid][1].id} for rid in claimed],
        )
    db.session.commit()
    return len(claimed)


def _as_receipt(stored) -> DeliveryReceipt:
    return DeliveryReceipt(
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


SWEEP_AFTER = timedelta(minutes=1)  # younger ones are still on their way through receipt_batches
SWEEP_WINDOW = timedelta(days=2)
SWEEP_LIMIT = 1000


def apply_left_waiting() -> int:
    """Receipts still waiting a minute after they came: their batch was lost (Redis was down
    when they were stored, or the job applying them died), or their notification's send was
    being recorded (the send job then applies them; this is the backstop). Those received
    between a minute and two days ago, the newest 1,000 (receipts of messages we never sent
    wait for ever and are skipped); how many were applied. Run every minute."""
    now = utcnow()
    waiting = db.session.scalars(
        select(RECEIPTS.c.id)
        .where(
            RECEIPTS.c.applied_at.is_(None),
            RECEIPTS.c.received_at < now - SWEEP_AFTER,
            RECEIPTS.c.received_at > now - SWEEP_WINDOW,
        )
        .order_by(RECEIPTS.c.id.desc())
        .limit(SWEEP_LIMIT)
    ).all()
    return apply_stored(list(waiting)) if waiting else 0
