"""Delivery receipts: stored as they arrive (verified by the route first), applied to their
notification forward only: a late `sent` never overwrites `delivered`, a duplicate receipt changes
nothing, and a receipt that comes before the send was recorded waits and is applied then.
Bounces, complaints and STOP replies feed the suppression list."""

from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.extensions import db
from app.integrations.notify.base import DeliveryReceipt, DeliveryStatus
from app.models import (
    Channel,
    Notification,
    NotificationReceipt,
    NotificationStatus,
    Suppression,
    SuppressionReason,
)
from app.models.base import utcnow
from app.models.notifications import STATUS_RANK

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
    new = []
    for receipt in receipts:
        receipt_id = _keep_once(receipt)
        if receipt_id is not None:  # else the same event again: nothing to do
            _apply(receipt_id, receipt)
            new.append(receipt_id)
    db.session.commit()  # each receipt with what it changed, or kept waiting for its send
    return new


def _keep_once(receipt: DeliveryReceipt) -> int | None:
    """Insert the receipt unless its event is stored already; its id, or None. One statement
    (INSERT ... ON CONFLICT DO NOTHING), not a savepoint that an ORM flush would need."""
    table = NotificationReceipt.__table__
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
    }
    dialect = db.session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(table).values(values).on_conflict_do_nothing().returning(table.c.id)
    return db.session.scalar(statement)


def _notification_for(provider: str, message_id: str | None, reference: str | None):
    """The notification a receipt is about (the columns _apply needs), or None."""
    conditions = []
    if message_id:
        conditions.append(
            (Notification.provider == provider) & (Notification.provider_message_id == message_id)
        )
    if reference and reference.isdigit():
        conditions.append(Notification.id == int(reference))
    if not conditions:
        return None
    return db.session.execute(
        select(
            Notification.id, Notification.status, Notification.channel,
            Notification.recipient_contact,
        ).where(or_(*conditions)).limit(1)
    ).first()  # fmt: skip


def _apply(receipt_id: int, receipt: DeliveryReceipt) -> bool:
    """Apply one stored receipt if its notification is known and has been sent; else it waits.
    The caller commits."""
    row = _notification_for(receipt.provider, receipt.provider_message_id, receipt.reference)
    if row is None or row.status in (NotificationStatus.PENDING, NotificationStatus.SENDING):
        return False
    target = NOTIFICATION_STATUS.get(receipt.status)
    if (
        receipt.status == DeliveryStatus.FAILED
        and row.channel == Channel.EMAIL
        and not receipt.permanent
    ):
        target = None  # a soft bounce or deferral: the mail server keeps trying
    if target is not None and STATUS_RANK[target] > STATUS_RANK[NotificationStatus(row.status)]:
        stamp = {
            NotificationStatus.DELIVERED: {"delivered_at": receipt.occurred_at or utcnow()},
            NotificationStatus.FAILED: {"failed_at": receipt.occurred_at or utcnow(),
                                        "skip_reason": (receipt.detail or receipt.status)[:200]},
        }.get(target, {})  # fmt: skip
        if receipt.cost is not None:
            stamp = {**stamp, "cost": receipt.cost, "currency": receipt.currency}
        db.session.execute(
            update(Notification)
            .where(Notification.id == row.id, Notification.status == row.status)
            .values(status=target, updated_at=utcnow(), **stamp)
            .execution_options(synchronize_session=False)
        )
    if receipt.status in SUPPRESS and (
        receipt.permanent or receipt.status != DeliveryStatus.UNDELIVERED
    ):
        _suppress(row, receipt)
    db.session.execute(
        update(NotificationReceipt)
        .where(NotificationReceipt.id == receipt_id)
        .values(applied_at=utcnow(), notification_id=row.id)
        .execution_options(synchronize_session=False)
    )
    return True


def _suppress(row: Notification, receipt: DeliveryReceipt) -> None:
    contact = row.recipient_contact
    exists = db.session.scalar(
        select(Suppression.id).where(
            Suppression.channel == row.channel, Suppression.contact == contact
        )
    )
    if exists is None and contact:
        db.session.add(
            Suppression(
                channel=row.channel,
                contact=contact,
                reason=SUPPRESS[receipt.status],
                provider=receipt.provider,
                detail=receipt.detail[:500],
            )
        )


def apply_waiting(notification_ids: list[int]) -> int:
    """Apply the receipts that arrived before these notifications' sends were recorded (one
    query for all of them); how many were applied."""
    if not notification_ids:
        return 0
    message_ids = db.session.scalars(
        select(Notification.provider_message_id).where(
            Notification.id.in_(notification_ids), Notification.provider_message_id.is_not(None)
        )
    ).all()
    waiting = db.session.scalars(
        select(NotificationReceipt)
        .where(
            NotificationReceipt.applied_at.is_(None),
            or_(
                NotificationReceipt.provider_message_id.in_(message_ids),
                NotificationReceipt.reference.in_([str(n) for n in notification_ids]),
            ),
        )
        .order_by(NotificationReceipt.id)
    ).all()
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
        )
        applied += _apply(stored.id, receipt)
    db.session.commit()
    return applied
