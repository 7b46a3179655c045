"""What is checked before any provider is tried: a contact to send to, the member's opt-out, the
suppression list, the same text twice within the window, quiet hours (non-urgent SMS waits for
the morning, it is not dropped) and the daily limit of non-urgent messages."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

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
    return decide_many([row], settings, now)[row.id]


def decide_many(
    rows: list[Notification], settings: NotifySettings, now: datetime | None = None
) -> dict[int, Decision]:
    """decide() for each of `rows` (stored or not yet: resend asks first), by id, from four
    grouped queries whatever their number. They are decided in order, and one allowed to send
    counts towards the daily limit and the duplicate rule of the ones after it."""
    now = now or utcnow()
    seen = _Seen.load(rows, settings, now)
    decisions = {}
    for row in rows:
        decisions[row.id] = _decide(row, settings, now, seen)
        if decisions[row.id] is SEND:
            seen.add(row, now)
    return decisions


def _decide(row: Notification, settings: NotifySettings, now: datetime, seen: "_Seen") -> Decision:
    if not row.recipient_contact:
        what = "phone number" if row.channel == Channel.SMS else "email address"
        return Decision("skip", f"The recipient has no {what}.")
    if row.recipient_id in seen.opted_out[row.channel]:
        return Decision("skip", f"The member has opted out of {row.channel}.")
    suppressed = seen.suppressed.get((row.channel, row.recipient_contact))
    if suppressed:
        return Decision("skip", f"The contact is on the suppression list ({suppressed}).")
    if row.notification_type != TEST_TYPE and seen.same_text_within_window(row):
        return Decision("skip", "The same message went to this contact within the hour.")
    if row.priority == Priority.HIGH:
        return SEND
    if row.channel == Channel.SMS and (until := in_quiet_hours(now, settings)):
        return Decision("defer", "Quiet hours: held until the morning.", until)
    if seen.not_urgent_today(row) >= int(settings.daily_limit):
        return Decision("skip", f"The daily limit of {settings.daily_limit} messages is reached.")
    return SEND


@dataclass
class _Sent:
    channel: str
    contact: str
    message: str
    priority: str
    created_at: datetime


class _Seen:
    """What the rules need to know about the contacts of a batch: opt-outs, suppressions, and
    the messages counted as sent to them (sending, sent or delivered) since the earlier of the
    duplicate window's start and the start of the Nairobi day."""

    def __init__(self, window_start: datetime, day_start: datetime):
        self.window_start, self.day_start = window_start, day_start
        self.opted_out: dict[str, set[int]] = {Channel.SMS: set(), Channel.EMAIL: set()}
        self.suppressed: dict[tuple[str, str], str] = {}
        self.sent: dict[tuple[str, str], list[_Sent]] = defaultdict(list)

    @classmethod
    def load(cls, rows: list[Notification], settings: NotifySettings, now: datetime) -> "_Seen":
        window_start = now - timedelta(minutes=int(settings.duplicate_window_minutes))
        day_start = datetime.combine(now.astimezone(NAIROBI).date(), datetime.min.time(), NAIROBI)
        seen = cls(window_start, day_start)
        contacts = {row.recipient_contact for row in rows if row.recipient_contact}
        member_ids = {row.recipient_id for row in rows if row.recipient_id}
        if member_ids:
            for member in db.session.execute(
                select(Member.id, Member.sms_opt_in, Member.email_opt_in).where(
                    Member.id.in_(member_ids)
                )
            ):
                if not member.sms_opt_in:
                    seen.opted_out[Channel.SMS].add(member.id)
                if not member.email_opt_in:
                    seen.opted_out[Channel.EMAIL].add(member.id)
        if not contacts:
            return seen
        seen.suppressed = {
            (channel, contact): reason
            for channel, contact, reason in db.session.execute(
                select(Suppression.channel, Suppression.contact, Suppression.reason).where(
                    Suppression.contact.in_(contacts)
                )
            )
        }
        for sent in db.session.execute(
            select(
                Notification.channel,
                Notification.recipient_contact,
                Notification.message,
                Notification.priority,
                Notification.created_at,
            ).where(
                Notification.recipient_contact.in_(contacts),
                Notification.status.in_(COUNTED),
                Notification.created_at >= min(window_start, day_start),
                Notification.id.not_in([row.id for row in rows if row.id is not None]),
            )
        ):
            seen.sent[sent.channel, sent.recipient_contact].append(_Sent(*sent))
        return seen

    def add(self, row: Notification, now: datetime) -> None:
        sent = _Sent(row.channel, row.recipient_contact, row.message, row.priority, now)
        self.sent[row.channel, row.recipient_contact].append(sent)

    def _since(self, row: Notification, since: datetime) -> list[_Sent]:
        return [
            sent
            for sent in self.sent.get((row.channel, row.recipient_contact), ())
            if sent.created_at >= since
        ]

    def same_text_within_window(self, row: Notification) -> bool:
        return any(sent.message == row.message for sent in self._since(row, self.window_start))

    def not_urgent_today(self, row: Notification) -> int:
        return sum(sent.priority != Priority.HIGH for sent in self._since(row, self.day_start))
