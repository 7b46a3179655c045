"""What is checked before any provider is tried: a contact to send to, the member's opt-out, the
suppression list, the same text twice within the window, quiet hours (non-urgent SMS waits for
the morning, it is not dropped) and the daily limit of non-urgent messages."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from app.clock import NAIROBI
from app.extensions import db
from app.models import Channel, Member, Notification, NotificationStatus, Priority, Suppression
from app.models.base import utcnow
from app.services.notifications.config import NotifySettings

COUNTED = (NotificationStatus.SENDING, NotificationStatus.SENT, NotificationStatus.DELIVERED)
# notification_type of an administrator's test message: sent on purpose, often twice in a row,
# so the duplicate rule does not hold it back (every other rule applies).
TEST_TYPE = "test"


@dataclass(frozen=True)
class Decision:
    action: str  # "send", "skip" or "defer"
    reason: str = ""
    until: datetime | None = None


SEND = Decision("send")


def in_quiet_hours(now: datetime, settings: NotifySettings) -> datetime | None:
    """When quiet hours end, if `now` falls inside them (Nairobi time); else None."""
    local = now.astimezone(NAIROBI)
    start, end = settings.quiet_start, settings.quiet_end
    clock = local.time()
    inside = (start <= clock or clock < end) if start > end else (start <= clock < end)
    if not inside:
        return None
    day = local.date() if clock < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, NAIROBI)


def decide(row: Notification, settings: NotifySettings, now: datetime | None = None) -> Decision:
    """Whether the notification may go to a provider now."""
    now = now or utcnow()
    if not row.recipient_contact:
        what = "phone number" if row.channel == Channel.SMS else "email address"
        return Decision("skip", f"The recipient has no {what}.")
    member = db.session.get(Member, row.recipient_id) if row.recipient_id else None
    if member is not None:
        opted_in = member.sms_opt_in if row.channel == Channel.SMS else member.email_opt_in
        if not opted_in:
            return Decision("skip", f"The member has opted out of {row.channel}.")
    suppressed = db.session.scalar(
        select(Suppression.reason).where(
            Suppression.channel == row.channel, Suppression.contact == row.recipient_contact
        )
    )
    if suppressed:
        return Decision("skip", f"The contact is on the suppression list ({suppressed}).")
    window = timedelta(minutes=int(settings.duplicate_window_minutes))
    if row.notification_type != TEST_TYPE and _sent_since(row, now - window, same_text=True):
        return Decision("skip", "The same message went to this contact within the hour.")
    if row.priority == Priority.HIGH:
        return SEND
    if row.channel == Channel.SMS and (until := in_quiet_hours(now, settings)):
        return Decision("defer", "Quiet hours: held until the morning.", until)
    day_start = datetime.combine(now.astimezone(NAIROBI).date(), datetime.min.time(), NAIROBI)
    if _sent_since(row, day_start, same_text=False) >= int(settings.daily_limit):
        return Decision("skip", f"The daily limit of {settings.daily_limit} messages is reached.")
    return SEND


def _sent_since(row: Notification, since: datetime, same_text: bool) -> int:
    query = select(func.count()).where(
        Notification.id != row.id,
        Notification.channel == row.channel,
        Notification.recipient_contact == row.recipient_contact,
        Notification.status.in_(COUNTED),
        Notification.created_at >= since,
    )
    if same_text:
        query = query.where(Notification.message == row.message)
    else:
        query = query.where(Notification.priority != Priority.HIGH)
    return db.session.scalar(query)
