"""What the notification log reads: the list with its filters, and one notification with its
provider attempts, delivery receipts (linked, or still waiting for it) and audit trail. Reads
only; nothing here changes a row."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import selectinload

from app.clock import NAIROBI
from app.extensions import db
from app.models import (
    AuditLog,
    Member,
    Notification,
    NotificationReceipt,
)

AUDIT_TARGET = "notification"


@dataclass(frozen=True)
class Filters:
    """The log's filters, already checked (None: no filter)."""

    channel: str | None = None
    status: str | None = None
    provider: str | None = None
    notification_type: str | None = None
    contact: str | None = None  # a normalised phone number or email address
    member_id: int | None = None
    date_from: date | None = None
    date_to: date | None = None
    text: str | None = None  # found anywhere in the message or subject, any case


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(0), NAIROBI).astimezone(UTC)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def notifications_query(filters: Filters):
    """Notifications matching `filters`, newest first."""
    query = select(Notification)
    exact = {
        Notification.channel: filters.channel,
        Notification.status: filters.status,
        Notification.provider: filters.provider,
        Notification.notification_type: filters.notification_type,
        Notification.recipient_contact: filters.contact,
        Notification.recipient_id: filters.member_id,
    }
    for column, value in exact.items():
        if value is not None:
            query = query.where(column == value)
    if filters.date_from:
        query = query.where(Notification.created_at >= _start_of(filters.date_from))
    if filters.date_to:
        query = query.where(Notification.created_at < _start_of(filters.date_to + timedelta(1)))
    if filters.text:
        pattern = _like(filters.text)
        query = query.where(
            or_(
                Notification.message.ilike(pattern, escape="\\"),
                Notification.subject.ilike(pattern, escape="\\"),
            )
        )
    return query.order_by(Notification.id.desc())


def members_of(rows: list[Notification]) -> dict[int, Member]:
    """The members the notifications went to, by id: one query for a whole page."""
    wanted = {row.recipient_id for row in rows if row.recipient_id}
    if not wanted:
        return {}
    return {m.id: m for m in db.session.scalars(select(Member).where(Member.id.in_(wanted)))}


def notification_detail(notification_id: int) -> Notification | None:
    """The notification with its provider attempts loaded (read afresh)."""
    return db.session.scalar(
        select(Notification)
        .where(Notification.id == notification_id)
        .options(selectinload(Notification.attempts))
        .execution_options(populate_existing=True)
    )


def receipts_for(row: Notification) -> list[NotificationReceipt]:
    """The delivery receipts applied to the notification, and those naming its provider message
    id or our reference that are not applied yet (they came first, or wait for a job)."""
    conditions = [
        NotificationReceipt.notification_id == row.id,
        NotificationReceipt.applied_at.is_(None) & (NotificationReceipt.reference == str(row.id)),
    ]
    if row.provider and row.provider_message_id:
        conditions.append(
            (NotificationReceipt.provider == row.provider)
            & (NotificationReceipt.provider_message_id == row.provider_message_id)
        )
    return list(
        db.session.scalars(
            select(NotificationReceipt).where(or_(*conditions)).order_by(NotificationReceipt.id)
        )
    )


def audit_trail(notification_id: int) -> list[AuditLog]:
    """What people did to the notification (a resend, ...), oldest first."""
    return list(
        db.session.scalars(
            select(AuditLog)
            .where(AuditLog.target_type == AUDIT_TARGET, AuditLog.target_id == notification_id)
            .order_by(AuditLog.id)
        )
    )
