"""Delivery statistics on a known data set: the figures per provider and channel, the delivery
rate, the chart's buckets, what is waiting, the providers' circuit state; one GROUP BY query,
read from the index."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event

from app.clock import NAIROBI
from app.extensions import db
from app.models import Notification
from app.services.errors import ValidationFailed
from app.services.notifications import circuit, stats

# 12:30 in Nairobi on 10 March 2026 (09:30 UTC).
NOW = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)


def add(channel, provider, status, ago, count=1, **values):
    """`count` notifications stored `ago` before NOW."""
    for _ in range(count):
        db.session.add(Notification(
            notification_type="general", channel=channel, provider=provider, status=status,
            message="Hello", recipient_contact="254712345678" if channel == "sms" else "a@b.co",
            created_at=NOW - ago, **values,
        ))  # fmt: skip
    db.session.commit()


@pytest.fixture
def known_data():
    hours, days = (lambda n: timedelta(hours=n)), (lambda n: timedelta(days=n))
    add("sms", "africastalking", "delivered", hours(1), 2)  # today
    add("sms", "africastalking", "delivered", days(2))
    add("sms", "africastalking", "sent", hours(3))
    add("sms", "africastalking", "failed", days(1))
    add("sms", "twilio", "delivered", days(3))
    add("sms", None, "skipped", hours(2), 2)
    add("sms", None, "pending", timedelta(minutes=5))
    add("email", "sendgrid", "delivered", days(6), 2)
    add("email", "sendgrid", "failed", hours(30), 2)
    add("email", None, "failed", days(4))  # every provider failed: no provider took it
    add("sms", "africastalking", "delivered", days(10), 4)  # only in the 30 days
    add("sms", "africastalking", "failed", days(40))  # in no period


def figures(counts):
    return (counts.sent, counts.delivered, counts.failed, counts.skipped, counts.waiting,
            counts.total, counts.delivery_rate)  # fmt: skip


def test_seven_days_by_provider_and_channel(known_data):
    result = stats.delivery_stats("7d", NOW)
    assert result.since == datetime(2026, 3, 4, 0, 0, tzinfo=NAIROBI)  # 6 days before today
    by_row = {(r.channel, r.provider): figures(r.counts) for r in result.rows}
    assert by_row == {
        # sent, delivered, failed, skipped, waiting, total, rate (delivered of sent-or-further)
        ("sms", "africastalking"): (1, 3, 1, 0, 0, 5, 60.0),
        ("sms", "twilio"): (0, 1, 0, 0, 0, 1, 100.0),
        ("sms", None): (0, 0, 0, 2, 1, 3, None),
        ("email", "sendgrid"): (0, 2, 2, 0, 0, 4, 50.0),
        ("email", None): (0, 0, 1, 0, 0, 1, 0.0),
    }
    # SMS first, providers in the failover order, "no provider" last.
    assert [(r.channel, r.provider) for r in result.rows] == [
        ("sms", "africastalking"), ("sms", "twilio"), ("sms", None),
        ("email", "sendgrid"), ("email", None),
    ]  # fmt: skip
    assert figures(result.channels["sms"]) == (1, 4, 1, 2, 1, 9, 66.7)
    assert figures(result.channels["email"]) == (0, 2, 3, 0, 0, 5, 40.0)
    assert figures(result.total) == (1, 6, 4, 2, 1, 14, 54.5)
    assert result.rows[2].label == "No provider" and result.rows[0].label == "Africa's Talking"


def test_the_daily_series(known_data):
    result = stats.delivery_stats("7d", NOW)
    assert result.unit == "day"
    assert [b.day for b in result.buckets] == [4, 5, 6, 7, 8, 9, 10]
    assert result.series["delivered"] == [2, 0, 0, 1, 1, 0, 2]
    assert result.series["failed"] == [0, 0, 1, 0, 0, 3, 0]


def test_thirty_days_and_twenty_four_hours(known_data):
    month = stats.delivery_stats("30d", NOW)
    assert len(month.buckets) == 30
    assert figures(month.total) == (1, 10, 4, 2, 1, 18, 66.7)
    day = stats.delivery_stats("24h", NOW)
    assert day.unit == "hour" and len(day.buckets) == 24
    assert day.buckets[-1] == datetime(2026, 3, 10, 12, 0)  # this hour, Nairobi time
    assert day.since == datetime(2026, 3, 9, 13, 0, tzinfo=NAIROBI)
    assert figures(day.total) == (1, 2, 0, 2, 1, 6, 66.7)
    assert day.series["delivered"][-2] == 2  # stored at 11:30
    assert sum(day.series["delivered"]) == 2


def test_no_notifications():
    result = stats.delivery_stats("7d", NOW)
    assert result.rows == [] and result.total.total == 0 and result.total.delivery_rate is None
    assert result.series["delivered"] == [0] * 7


@pytest.mark.parametrize("bad", ["1y", "7", "<b>", "24H "])
def test_a_period_that_is_not_offered_is_refused(bad):
    with pytest.raises(ValidationFailed) as caught:
        stats.delivery_stats(bad, NOW)
    assert caught.value.errors == {"period": "Choose 24 hours, 7 days or 30 days."}


def test_the_default_period_is_seven_days():
    assert stats.check_period(None) == stats.check_period("") == "7d"


def count_statements(action):
    statements = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        action()
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    return statements


def test_one_group_by_query_whatever_the_number_of_rows(known_data):
    few = count_statements(lambda: stats.delivery_stats("30d", NOW))
    add("sms", "infobip", "delivered", timedelta(days=5), 40)
    add("email", "mailgun", "failed", timedelta(days=2), 40)
    many = count_statements(lambda: stats.delivery_stats("30d", NOW))
    assert len(many) == len(few)
    grouped = [s for s, _ in many if "GROUP BY" in s]
    assert len(grouped) == 1 and "notifications" in grouped[0]


def test_the_statistics_are_read_from_the_index(known_data):
    """The period's rows come from ix_notifications_created_stats (a covering index)."""
    statement, parameters = next(
        (s, p)
        for s, p in count_statements(lambda: stats.delivery_stats("7d", NOW))
        if "GROUP BY" in s
    )
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")  # a few rows: force the choice
        plan = connection.exec_driver_sql(f"EXPLAIN {statement}", parameters).scalars().all()
    else:
        plan = [row[-1] for row in connection.exec_driver_sql(
            f"EXPLAIN QUERY PLAN {statement}", parameters)]  # fmt: skip
    db.session.rollback()
    assert any("ix_notifications_created_stats" in line for line in plan), plan


def test_what_is_waiting():
    now = datetime.now(UTC)
    later = now + timedelta(hours=3)
    add("sms", None, "pending", timedelta(0), 2)  # queued
    add("email", None, "pending", timedelta(0))
    add("sms", None, "pending", timedelta(0), scheduled_for=later)  # scheduled
    add("sms", None, "pending", timedelta(0), scheduled_for=later,
        skip_reason="Quiet hours: held until the morning.")  # fmt: skip
    add("email", None, "pending", timedelta(0), scheduled_for=later, retry_count=1,
        skip_reason="Every provider failed; retrying in 5 min")  # fmt: skip
    add("sms", "twilio", "sending", timedelta(0))
    add("sms", "twilio", "delivered", timedelta(0))  # not waiting
    assert stats.waiting_counts(now) == {
        "queued": {"sms": 2, "email": 1},
        "sending": {"sms": 1, "email": 0},
        "scheduled": {"sms": 1, "email": 0},
        "quiet_hours": {"sms": 1, "email": 0},
        "retrying": {"sms": 0, "email": 1},
    }


def test_provider_states(app):
    saved = app.config["NOTIFY_OVERRIDES"]
    app.config["NOTIFY_OVERRIDES"] = {
        "sms_providers": "twilio,africastalking",
        "africastalking.username": "sandbox",
        "africastalking.api_key": "at-key-0001",
    }
    try:
        circuit.record_failure("twilio", threshold=1, window=60, cooling_off=60)
        states = {s.name: s for s in stats.provider_states()}
    finally:
        app.config["NOTIFY_OVERRIDES"] = saved
    assert [s.name for s in stats.provider_states()][:3] == ["africastalking", "twilio", "infobip"]
    twilio, at, infobip = states["twilio"], states["africastalking"], states["infobip"]
    assert (twilio.position, twilio.configured, twilio.circuit_open) == (1, False, True)
    assert (at.position, at.configured, at.circuit_open) == (2, True, False)
    assert (infobip.position, infobip.circuit_open) == (None, False)
    assert states["ses"].channel == "email" and states["ses"].label == "Amazon SES"
