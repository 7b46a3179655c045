"""Notifications: one row per message per channel (the old `daystar_notifications` columns plus
ours), every provider attempt, the delivery receipts as they arrived, the suppression list, the
message templates, and broadcasts (one message to a filtered set of members)."""

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import UTCDateTime, utcnow


class Channel(StrEnum):
    SMS = "sms"
    EMAIL = "email"


class Priority(StrEnum):
    HIGH = "high"  # urgent: ignores quiet hours and the daily limit
    NORMAL = "normal"
    LOW = "low"


class NotificationStatus(StrEnum):
    PENDING = "pending"  # stored; its job has not run (or it waits for scheduled_for)
    SENDING = "sending"  # a worker is calling providers now
    SENT = "sent"  # a provider accepted it; receipts follow
    DELIVERED = "delivered"
    FAILED = (
        "failed"  # every provider failed and the retries are spent, or the recipient cannot get it
    )
    SKIPPED = "skipped"  # not sent by rule: opt-out, suppression, duplicate, no contact


# How far along each status is: receipts move a notification forward only.
STATUS_RANK = {
    NotificationStatus.PENDING: 0,
    NotificationStatus.SENDING: 1,
    NotificationStatus.SENT: 2,
    NotificationStatus.DELIVERED: 3,
    NotificationStatus.FAILED: 3,
    NotificationStatus.SKIPPED: 3,
}
# Not yet handed to a provider (waiting, or being sent now): its receipts wait, a broadcast
# counts it in flight, the statistics call it waiting.
UNSENT = (NotificationStatus.PENDING, NotificationStatus.SENDING)


class Notification(db.Model):
    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_due", "status", "scheduled_for"),
        Index("ix_notifications_recipient_created", "recipient_contact", "created_at"),
        Index("ix_notifications_provider_message", "provider", "provider_message_id"),
        # Delivery statistics and the log's date range: a period's rows, read from the index alone.
        Index("ix_notifications_created_stats", "created_at", "channel", "provider", "status"),
        # A reminder goes at most once per member, kind and day, however often its job runs.
        UniqueConstraint("dedupe_key", name="uq_notifications_dedupe_key"),
        # A broadcast's progress: its notifications counted by status.
        Index("ix_notifications_broadcast_status", "broadcast_id", "status"),
        # The performance rollup: the rows sent, delivered or failed in the last minutes.
        Index("ix_notifications_updated_at", "updated_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), index=True)
    notification_type: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(5))
    provider: Mapped[str | None] = mapped_column(String(20))
    subject: Mapped[str | None] = mapped_column(String(200))
    message: Mapped[str] = mapped_column(Text)
    html_message: Mapped[str | None] = mapped_column(Text)
    recipient_contact: Mapped[str | None] = mapped_column(String(254))
    status: Mapped[str] = mapped_column(String(10), default=NotificationStatus.PENDING)
    skip_reason: Mapped[str | None] = mapped_column(String(200))
    provider_response: Mapped[str | None] = mapped_column(Text)
    provider_message_id: Mapped[str | None] = mapped_column(String(100))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    retry_count: Mapped[int] = mapped_column(Integer, default=0)
    max_retries: Mapped[int] = mapped_column(Integer, default=3)
    priority: Mapped[str] = mapped_column(String(6), default=Priority.NORMAL)
    scheduled_for: Mapped[datetime | None] = mapped_column(UTCDateTime())
    event_type: Mapped[str | None] = mapped_column(String(60))
    template: Mapped[str | None] = mapped_column(String(60))
    dedupe_key: Mapped[str | None] = mapped_column(String(120))
    # SMS: the encoding the text needs and how many parts it takes; what the provider charged.
    encoding: Mapped[str | None] = mapped_column(String(5))
    segments: Mapped[int | None] = mapped_column(Integer)
    cost: Mapped[Decimal | None] = mapped_column(Numeric(15, 4, asdecimal=True))
    currency: Mapped[str | None] = mapped_column(String(3))
    broadcast_id: Mapped[int | None] = mapped_column(ForeignKey("broadcasts.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    attempts = relationship("NotificationAttempt", lazy="raise", order_by="NotificationAttempt.id")


class NotificationAttempt(db.Model):
    """One call to one provider for one notification, whatever came of it."""

    __tablename__ = "notification_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    notification_id: Mapped[int] = mapped_column(ForeignKey("notifications.id"), index=True)
    provider: Mapped[str] = mapped_column(String(20))
    outcome: Mapped[str] = mapped_column(String(15))
    detail: Mapped[str] = mapped_column(Text, default="")
    response: Mapped[str] = mapped_column(Text, default="")
    http_status: Mapped[int | None] = mapped_column(Integer)
    provider_message_id: Mapped[str | None] = mapped_column(String(100))
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class NotificationReceipt(db.Model):
    """A provider's delivery report as it arrived, kept until it finds its notification (a
    receipt may come before the send was recorded)."""

    __tablename__ = "notification_receipts"
    __table_args__ = (
        UniqueConstraint("provider", "event_id", name="uq_notification_receipts_provider_event"),
        Index("ix_notification_receipts_unapplied", "applied_at", "received_at"),
        Index("ix_notification_receipts_message", "provider", "provider_message_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))
    event_id: Mapped[str] = mapped_column(String(200))
    provider_message_id: Mapped[str | None] = mapped_column(String(100))
    reference: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(15))
    permanent: Mapped[bool] = mapped_column(Boolean, default=False)  # suppress the contact
    detail: Mapped[str] = mapped_column(Text, default="")
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    notification_id: Mapped[int | None] = mapped_column(ForeignKey("notifications.id"), index=True)
    # The price the provider reported with it (Infobip), set on the notification when applied.
    cost: Mapped[Decimal | None] = mapped_column(Numeric(15, 4, asdecimal=True))
    currency: Mapped[str | None] = mapped_column(String(3))


class SuppressionReason(StrEnum):
    STOP = "stop"  # an SMS STOP reply
    HARD_BOUNCE = "hard_bounce"
    COMPLAINT = "complaint"
    UNSUBSCRIBE = "unsubscribe"
    INVALID = "invalid"  # the provider says the number or address does not exist
    MANUAL = "manual"


class Suppression(db.Model):
    """A contact no message may be sent to on a channel, until staff lift it."""

    __tablename__ = "suppressions"
    __table_args__ = (
        UniqueConstraint("channel", "contact", name="uq_suppressions_channel_contact"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(5))
    contact: Mapped[str] = mapped_column(String(254))
    reason: Mapped[str] = mapped_column(String(12))
    provider: Mapped[str | None] = mapped_column(String(20))
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))


class NotificationTemplate(db.Model):
    """A message staff can edit: an SMS body, and an email subject with HTML and text bodies,
    rendered in Jinja2's sandbox."""

    __tablename__ = "notification_templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    sms_body: Mapped[str] = mapped_column(Text, default="")
    email_subject: Mapped[str] = mapped_column(String(200), default="")
    email_html: Mapped[str] = mapped_column(Text, default="")
    email_text: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))


class BroadcastStatus(StrEnum):
    QUEUED = "queued"  # confirmed; its job has not started
    SENDING = "sending"  # its job is storing the notifications, or they are being sent
    FINISHED = "finished"  # every notification was sent, delivered, failed or skipped
    CANCELLED = "cancelled"  # stopped by staff: pending notifications were skipped


class Broadcast(db.Model):
    """One message staff sent to a filtered set of members (a policy change, say): what, on
    which channels, to whom (`filters`), and how far its job got."""

    __tablename__ = "broadcasts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    channel: Mapped[str] = mapped_column(String(5))  # sms, email or both
    template: Mapped[str | None] = mapped_column(String(60))  # None: `message` is the text
    subject: Mapped[str | None] = mapped_column(String(200))  # email subject, or notice title
    message: Mapped[str] = mapped_column(Text)
    effective_on: Mapped[date | None] = mapped_column(Date)  # policy_change
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # maintenance_notice
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    priority: Mapped[str] = mapped_column(String(6), default=Priority.NORMAL)
    filters: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(10), default=BroadcastStatus.QUEUED)
    targeted: Mapped[int] = mapped_column(Integer, default=0)  # members the filters matched
    processed: Mapped[int] = mapped_column(Integer, default=0)  # of them, members done so far
    created: Mapped[int] = mapped_column(Integer, default=0)  # notifications stored
    skipped: Mapped[int] = mapped_column(Integer, default=0)  # members with no channel to use
    last_member_id: Mapped[int] = mapped_column(Integer, default=0)  # where a re-run resumes
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    cancelled_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    all_created_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    created_by = relationship("StaffUser", foreign_keys=[created_by_id], lazy="joined")
    cancelled_by = relationship("StaffUser", foreign_keys=[cancelled_by_id], lazy="joined")
