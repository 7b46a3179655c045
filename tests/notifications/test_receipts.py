"""Delivery receipts (receipts.store, the job that applies them, and apply_waiting): kept once,
applied forward only, and kept waiting when they come before the send was recorded."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, event, select, text

from app.extensions import db
from app.integrations.notify.base import DeliveryReceipt, DeliveryStatus
from app.jobs.notifications import send_due_notifications
from app.models import Notification, NotificationReceipt, Suppression
from app.models.base import utcnow
from app.services.notifications import gateway, receipts

URGENT = {"priority": "high"}
AT = "africastalking"
DELIVERED_AT = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)


def stored(member, channel="sms", status="sent", message_id="ATXid_1", provider=AT):
    row = gateway.create(member.id, "Hello", channel, "Hello", URGENT)[0]
    row.status, row.provider, row.provider_message_id = status, provider, message_id
    db.session.commit()
    return row


def receipt(status, event, message_id="ATXid_1", provider=AT, **more):
    return DeliveryReceipt(provider=provider, status=status, provider_message_id=message_id,
                           event_id=event, **more)  # fmt: skip


@pytest.fixture
def store(run_jobs):
    """receipts.store() as the callback route calls it, then the job it enqueued."""

    def _store(items):
        new = receipts.store(items)
        run_jobs()
        return new

    return _store


def reload(row):
    db.session.expire_all()
    return db.session.get(Notification, row.id)


def unapplied():
    return db.session.scalars(
        select(NotificationReceipt.event_id).where(NotificationReceipt.applied_at.is_(None))
    ).all()


def received_two_minutes_ago():
    db.session.execute(
        NotificationReceipt.__table__.update().values(received_at=utcnow() - timedelta(minutes=2))
    )
    db.session.commit()


def test_delivered_is_stamped_and_a_late_sent_does_not_overwrite_it(member, store):
    row = stored(member)
    store([receipt(DeliveryStatus.DELIVERED, "e1", occurred_at=DELIVERED_AT,
                            cost=Decimal("0.8000"), currency="KES")])  # fmt: skip
    store([receipt(DeliveryStatus.SENT, "e2")])
    row = reload(row)
    assert (row.status, row.delivered_at, row.cost) == ("delivered", DELIVERED_AT, Decimal("0.8"))
    assert unapplied() == []  # both applied, the late one changing nothing


def test_the_same_event_twice_is_stored_once_and_changes_nothing(member, store):
    row = stored(member)
    assert len(store([receipt(DeliveryStatus.DELIVERED, "e1")])) == 1
    assert store([receipt(DeliveryStatus.DELIVERED, "e1")]) == []
    assert db.session.scalar(select(db.func.count()).select_from(NotificationReceipt)) == 1
    assert reload(row).status == "delivered"


def test_receipts_before_the_send_was_recorded_wait_and_are_applied_in_order(member, store):
    row = stored(member, status="sending", message_id=None)
    store([receipt(DeliveryStatus.DELIVERED, "e1", "ATXid_9", occurred_at=DELIVERED_AT),
                    receipt(DeliveryStatus.SENT, "e2", "ATXid_9")])  # fmt: skip
    assert sorted(unapplied()) == ["e1", "e2"] and reload(row).status == "sending"

    row.status, row.provider_message_id = "sent", "ATXid_9"  # what the worker records
    db.session.commit()
    assert receipts.apply_waiting([row.id]) == 2
    row = reload(row)
    assert (row.status, row.delivered_at) == ("delivered", DELIVERED_AT) and unapplied() == []


def test_a_waiting_receipt_keeps_its_price_for_when_it_is_applied(member, store):
    row = stored(member, status="sending", message_id=None, provider="infobip")
    store([receipt(DeliveryStatus.DELIVERED, "e1", "ib-3", "infobip",
                            cost=Decimal("0.0070"), currency="EUR")])  # fmt: skip
    row.status, row.provider_message_id = "sent", "ib-3"
    db.session.commit()
    receipts.apply_waiting([row.id])
    row = reload(row)
    assert (row.status, row.cost, row.currency) == ("delivered", Decimal("0.0070"), "EUR")


def test_a_waiting_failure_after_delivered_in_the_same_run_is_not_applied_over_it(member, store):
    """apply_waiting follows the status it has just set: delivered, then a failure of the same
    rank, leaves it delivered."""
    row = stored(member, status="sending", message_id=None)
    store([receipt(DeliveryStatus.DELIVERED, "e1", "ATXid_7"),
                    receipt(DeliveryStatus.UNDELIVERED, "e2", "ATXid_7")])  # fmt: skip
    row.status, row.provider_message_id = "sent", "ATXid_7"
    db.session.commit()
    receipts.apply_waiting([row.id])
    assert reload(row).status == "delivered"


def test_a_receipt_finds_its_notification_by_our_reference(member, store):
    row = stored(member, channel="email", provider="sendgrid", message_id="sg-1")
    store([receipt(DeliveryStatus.DELIVERED, "e1", None, "sendgrid",
                            reference=str(row.id))])  # fmt: skip
    assert reload(row).status == "delivered"


def test_another_providers_message_id_is_not_this_notification(member, store):
    row = stored(member)
    store([receipt(DeliveryStatus.DELIVERED, "e1", provider="twilio")])
    assert reload(row).status == "sent" and unapplied() == ["e1"]


def test_an_email_soft_bounce_changes_nothing_and_a_hard_bounce_fails_and_suppresses(member, store):
    row = stored(member, channel="email", provider="sendgrid", message_id="sg-2")
    store([receipt(DeliveryStatus.FAILED, "e1", "sg-2", "sendgrid", detail="deferred")])
    assert reload(row).status == "sent"
    store([receipt(DeliveryStatus.BOUNCED, "e2", "sg-2", "sendgrid",
                            detail="550 no such user", permanent=True)])  # fmt: skip
    row = reload(row)
    assert (row.status, row.skip_reason) == ("failed", "550 no such user")
    suppressed = db.session.scalars(select(Suppression)).one()
    assert (suppressed.contact, suppressed.reason) == (member.email, "hard_bounce")


def test_a_receipt_left_waiting_behind_a_recorded_send_is_applied_by_the_minute_sweep(
    member, store
):
    """Stored while the send was being recorded, after that job looked for waiting receipts:
    the minute sweep applies it once it is a minute old."""
    row = stored(member, status="sending", message_id=None)
    store([receipt(DeliveryStatus.DELIVERED, "e1", "ATXid_5")])
    row.status, row.provider_message_id = "sent", "ATXid_5"  # recorded; its look came before
    db.session.commit()
    assert receipts.apply_left_waiting() == 0  # under a minute old: its send may still apply it
    received_two_minutes_ago()
    send_due_notifications()
    assert reload(row).status == "delivered" and unapplied() == []


def test_the_sweep_leaves_receipts_of_messages_never_sent_waiting(member, store):
    stored(member)
    store([receipt(DeliveryStatus.DELIVERED, "e1", "ATXid_unknown")])
    received_two_minutes_ago()
    assert receipts.apply_left_waiting() == 0 and unapplied() == ["e1"]


def test_a_receipt_another_transaction_applied_meanwhile_is_not_applied_again(
    member, database_url, engine_options
):
    """Two appliers (the report's job and the send's apply_waiting) read the same waiting
    receipt; the one that claims it second applies nothing. The other's claim is committed from
    a second connection just after this one read the receipt, and it left the notification
    failed: applying the receipt again would make it delivered."""
    row = stored(member)
    new = receipts.store([receipt(DeliveryStatus.DELIVERED, "e1", occurred_at=DELIVERED_AT)])
    other = create_engine(database_url, **engine_options)
    read = []

    @event.listens_for(db.engine, "after_cursor_execute")
    def applied_by_another_meanwhile(_conn, _cursor, statement, *_):
        if not read and statement.lstrip().startswith("SELECT") and "receipts" in statement:
            read.append(statement)
            with other.begin() as connection:
                connection.execute(
                    text("UPDATE notification_receipts SET applied_at = CURRENT_TIMESTAMP")
                )
                connection.execute(
                    text("UPDATE notifications SET status = 'failed' WHERE id = :id"),
                    {"id": row.id},
                )  # fmt: skip

    try:
        assert receipts.apply_stored(new) == 0
    finally:
        event.remove(db.engine, "after_cursor_execute", applied_by_another_meanwhile)
        other.dispose()
    assert read and reload(row).status == "failed"
