"""Storing notifications and the rules checked before any provider is tried."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Notification, NotificationStatus, Suppression
from app.services.notifications import config, gateway, rules

EVENING = datetime(2026, 11, 27, 19, 30, tzinfo=UTC)  # 22:30 in Nairobi
NOON = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)  # 12:00 in Nairobi


def test_one_row_per_channel_stored_before_any_provider(member, redis_conn):
    answer = gateway.send_notification(member.id, "Your payment has been received", "both", "Payment",
                                       {"type": "payment_confirmation", "priority": "high"})  # fmt: skip
    assert answer["success"] is True
    rows = db.session.scalars(select(Notification).order_by(Notification.id)).all()
    assert [r.id for r in rows] == answer["notification_ids"]
    sms, email = rows
    assert (sms.channel, sms.recipient_contact, sms.status, sms.encoding, sms.segments) == (
        "sms", member.phone, NotificationStatus.PENDING, "GSM-7", 1,
    )  # fmt: skip
    assert (email.channel, email.recipient_contact, email.subject) == (
        "email",
        member.email,
        "Payment",
    )
    queued = [job.args for job in _jobs(redis_conn, "high") if job.func_name == gateway.SEND_JOB]
    assert sorted(queued) == [(sms.id,), (email.id,)]


def _jobs(redis_conn, queue):
    from app.jobs import get_queue

    return get_queue(queue).get_jobs()


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ((999_999, "Hi", "sms"), "recipient_id"),
        ((None, "Hi", "sms"), "recipient_id"),
        (("x", "Hi", "sms"), "recipient_id"),
        ((1, "Hi", "fax"), "channel"),
        ((1, "   ", "sms"), "message"),
        ((1, "x" * 10_001, "sms"), "message"),
    ],
)
def test_bad_arguments_are_refused_naming_them(member, args, field):
    answer = gateway.send_notification(*args)
    assert answer["success"] is False and field in answer["message"]
    assert db.session.scalars(select(Notification)).all() == []


def test_a_dedupe_key_stores_once(member):
    first = gateway.create(
        member.id, "Reminder", "sms", options={"dedupe_key": f"due:{member.id}:2026-11-27"}
    )
    again = gateway.create(
        member.id, "Reminder", "sms", options={"dedupe_key": f"due:{member.id}:2026-11-27"}
    )
    assert len(first) == 1 and again == []


def decide(row, now=NOON):
    return rules.decide(row, config.current(), now)


def one(member, channel="sms", priority="normal", message="Hello"):
    return gateway.create(member.id, message, channel, "Subject", {"priority": priority})[0]


def test_opt_out_and_suppression_skip(member):
    row = one(member)
    assert decide(row).action == "send"
    member.sms_opt_in = False
    db.session.commit()
    assert decide(row) == rules.Decision("skip", "The member has opted out of sms.")
    member.sms_opt_in = True
    db.session.add(Suppression(channel="sms", contact=member.phone, reason="stop"))
    db.session.commit()
    assert "suppression list (stop)" in decide(row).reason


def test_no_contact_skips(member):
    member.email = None
    db.session.commit()
    assert decide(one(member, "email")).reason == "The recipient has no email address."


def test_quiet_hours_hold_non_urgent_sms_until_morning(member):
    decision = decide(one(member), EVENING)
    assert decision.action == "defer"
    assert decision.until == datetime(2026, 11, 28, 4, 0, tzinfo=UTC)  # 07:00 in Nairobi
    assert decide(one(member, priority="high", message="Urgent"), EVENING).action == "send"
    assert decide(one(member, "email", message="Mail"), EVENING).action == "send"


def test_the_same_text_twice_within_the_hour_is_skipped(member):
    first, second = one(member), one(member)
    first.status = NotificationStatus.SENT
    db.session.commit()
    assert decide(second).reason == "The same message went to this contact within the hour."


def test_the_daily_limit_counts_non_urgent_messages(member):
    for n in range(5):
        sent = one(member, message=f"Message {n}")
        sent.status = NotificationStatus.DELIVERED
    db.session.commit()
    assert "daily limit of 5" in decide(one(member, message="Sixth")).reason
    assert decide(one(member, priority="high", message="Urgent")).action == "send"


def test_a_batch_is_decided_in_order_each_send_counting_for_the_next(member, app, monkeypatch):
    monkeypatch.setitem(app.config, "NOTIFY_OVERRIDES", {"daily_limit": "3"})
    earlier = one(member, message="Earlier today")
    earlier.status = NotificationStatus.SENT
    db.session.commit()
    batch = [one(member, message=text) for text in ("Twice", "Twice", "Once", "Third")]
    batch.append(one(member, priority="high", message="Urgent"))
    decisions = rules.decide_many(batch, config.current(), NOON)
    assert [decisions[row.id].action for row in batch] == ["send", "skip", "send", "skip", "send"]
    assert "within the hour" in decisions[batch[1].id].reason
    assert "daily limit of 3" in decisions[batch[3].id].reason
    other = one(member, "email", message="Twice")  # another channel: its own count
    assert rules.decide_many([other], config.current(), NOON)[other.id] == rules.SEND


def test_quiet_hours_across_midnight_and_inside_one_day():
    settings = config.NotifySettings()
    assert rules.in_quiet_hours(datetime(2026, 11, 27, 1, 0, tzinfo=UTC), settings) == datetime(
        2026, 11, 27, 4, 0, tzinfo=UTC
    )  # 04:00 in Nairobi: until 07:00 that day
    assert rules.in_quiet_hours(NOON, settings) is None
    daytime = config.NotifySettings(quiet_hours_start="12:00", quiet_hours_end="14:00")
    assert rules.in_quiet_hours(NOON, daytime) == NOON + timedelta(hours=2)
    assert rules.in_quiet_hours(EVENING, daytime) is None
