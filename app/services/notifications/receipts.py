"""Delivery receipts: stored as they arrive (verified by the route first), applied to their
notification forward only: a late `sent` never overwrites `delivered`, a duplicate receipt changes
nothing, and a receipt that comes before the send was recorded waits and is applied then.
Bounces, complaints and STOP replies feed the suppression list."""

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

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
    """Keep each receipt once (a provider-unique event id), then apply what can be applied.
    Commits; returns the ids of the receipts that were new."""
    new = []
    for receipt in receipts:
        row = NotificationReceipt(
            provider=receipt.provider,
            event_id=_event_id(receipt),
            provider_message_id=receipt.provider_message_id,
            reference=(receipt.reference or "")[:40] or None,
            status=receipt.status,
            permanent=receipt.permanent,
            detail=receipt.detail[:2000],
            occurred_at=receipt.occurred_at,
            payload=receipt.raw,
        )
        try:
            with db.session.begin_nested():
                db.session.add(row)
        except IntegrityError:
            continue  # the same event again: nothing to do
        new.append((row.id, receipt))
    db.session.commit()
    for row_id, receipt in new:
        _apply(row_id, receipt)
    return [row_id for row_id, _ in new]


def _notification_for(
    provider: str, message_id: str | None, reference: str | None
) -> Notification | None:
    conditions = []
    if message_id:
        conditions.append(
            (Notification.provider == provider) & (Notification.provider_message_id == message_id)
        )
    if reference and reference.isdigit():
        conditions.append(Notification.id == int(reference))
    if not conditions:
        return None
    return db.session.scalars(select(Notification).where(or_(*conditions))).first()


def _apply(receipt_id: int, receipt: DeliveryReceipt) -> bool:
    """Apply one stored receipt if its notification is known and has been sent; else it waits."""
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
        )
    if receipt.status in SUPPRESS and (
        receipt.permanent or receipt.status != DeliveryStatus.UNDELIVERED
    ):
        _suppress(row, receipt)
    db.session.execute(
        update(NotificationReceipt)
        .where(NotificationReceipt.id == receipt_id)
        .values(applied_at=utcnow(), notification_id=row.id)
    )
    db.session.commit()
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


def apply_waiting(notification_id: int) -> int:
    """Apply the receipts that arrived before this notification's send was recorded."""
    row = db.session.get(Notification, notification_id)
    waiting = db.session.scalars(
        select(NotificationReceipt)
        .where(
            NotificationReceipt.applied_at.is_(None),
            or_(
                (NotificationReceipt.provider == row.provider)
                & (NotificationReceipt.provider_message_id == row.provider_message_id),
                NotificationReceipt.reference == str(row.id),
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
    return applied
