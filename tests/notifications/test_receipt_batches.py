"""Delivery reports applied behind the route (receipt_batches): one job drains the stored
receipts in batches, against the real Redis and RQ; nothing is lost when Redis or the job
fails."""

import pytest
from redis import Redis
from rq import Queue
from sqlalchemy import select

from app.extensions import db
from app.integrations.notify.base import DeliveryReceipt, DeliveryStatus
from app.jobs.notifications import send_due_notifications
from app.models import Notification, NotificationReceipt
from app.models.base import utcnow
from app.services.notifications import gateway, receipt_batches, receipts

AT = "africastalking"


def sent(member, message_id):
    row = gateway.create(member.id, f"Hello {message_id}", "sms", "Hello", {"priority": "high"})[0]
    row.status, row.provider, row.provider_message_id = "sent", AT, message_id
    db.session.commit()
    return row


def delivered(message_id, event):
    return DeliveryReceipt(provider=AT, status=DeliveryStatus.DELIVERED,
                           provider_message_id=message_id, event_id=event)  # fmt: skip


def statuses(rows):
    db.session.expire_all()
    return [db.session.get(Notification, row.id).status for row in rows]


def drain_jobs(redis_conn):
    return [job for job in Queue("high", connection=redis_conn).get_jobs()
            if job.func_name == receipt_batches.JOB]  # fmt: skip


def test_reports_stored_one_by_one_are_applied_by_one_job(member, redis_conn, run_jobs):
    rows = [sent(member, f"ATXid_{n}") for n in range(3)]
    for n in range(3):
        receipts.store([delivered(f"ATXid_{n}", f"e{n}")])
    assert statuses(rows) == ["sent"] * 3  # stored, not applied by the route
    assert len(drain_jobs(redis_conn)) == 1
    run_jobs()
    assert statuses(rows) == ["delivered"] * 3
    assert redis_conn.llen(receipt_batches.TO_APPLY) == 0
    assert not redis_conn.exists(receipt_batches.DRAINING)  # the next report enqueues a job


def test_a_report_pushed_as_the_job_finished_is_not_left_behind(app, member, redis_conn):
    """Pushed after the job's last empty read and before it let go: the route saw the job still
    running and enqueued none, so the job takes it on."""
    first, late = sent(member, "ATXid_1"), sent(member, "ATXid_2")
    receipts.store([delivered("ATXid_1", "e1")])
    redis = app.extensions["redis"]

    class PushedJustBeforeTheRelease(Redis):
        """The real client; a report is stored the moment the job lets go."""

        def delete(self, *names):
            if receipt_batches.DRAINING in names and not late_stored:
                late_stored.append(receipts.store([delivered("ATXid_2", "e2")]))
            return super().delete(*names)

    late_stored = []
    app.extensions["redis"] = PushedJustBeforeTheRelease(connection_pool=redis.connection_pool)
    try:
        assert receipt_batches.drain(receipts.apply_stored) == 2
    finally:
        app.extensions["redis"] = redis
    assert late_stored and statuses([first, late]) == ["delivered", "delivered"]


def test_a_batch_that_raises_goes_back_for_the_retry(member, redis_conn, run_jobs):
    row = sent(member, "ATXid_1")
    [receipt_id] = receipts.store([delivered("ATXid_1", "e1")])

    def failing(_ids):
        raise RuntimeError("database went away")

    with pytest.raises(RuntimeError):
        receipt_batches.drain(failing)
    assert redis_conn.lrange(receipt_batches.TO_APPLY, 0, -1) == [str(receipt_id).encode()]
    run_jobs()
    assert statuses([row]) == ["delivered"]


def test_with_redis_down_the_report_is_kept_and_the_sweep_applies_it(app, member):
    row = sent(member, "ATXid_1")
    redis = app.extensions["redis"]
    app.extensions["redis"] = Redis(port=1, socket_connect_timeout=0.2)  # nothing listens there
    try:
        assert len(receipts.store([delivered("ATXid_1", "e1")])) == 1  # no error for the route
    finally:
        app.extensions["redis"] = redis
    assert statuses([row]) == ["sent"]
    db.session.execute(
        NotificationReceipt.__table__.update().values(
            received_at=utcnow() - 2 * receipts.SWEEP_AFTER
        )
    )
    db.session.commit()
    send_due_notifications()  # the minute's sweep
    assert statuses([row]) == ["delivered"]
    assert db.session.scalar(select(NotificationReceipt.applied_at)) is not None


def test_a_long_drain_hands_the_rest_to_a_job_behind_the_queue(
    member, redis_conn, run_jobs, monkeypatch
):
    monkeypatch.setattr(receipt_batches, "BATCH", 1)
    monkeypatch.setattr(receipt_batches, "BATCHES_PER_RUN", 2)
    rows = [sent(member, f"ATXid_{n}") for n in range(3)]
    receipts.store([delivered(f"ATXid_{n}", f"e{n}") for n in range(3)])
    [queued] = drain_jobs(redis_conn)
    queued.delete()  # run its work here instead
    assert receipt_batches.drain(receipts.apply_stored) == 2
    assert statuses(rows) == ["delivered", "delivered", "sent"]
    assert len(drain_jobs(redis_conn)) == 1  # the rest, behind whatever was queued meanwhile
    run_jobs()
    assert statuses(rows) == ["delivered"] * 3


def test_a_report_that_cannot_be_applied_holds_up_none_of_the_others(
    member, run_jobs, monkeypatch, caplog
):
    rows = [sent(member, f"ATXid_{n}") for n in range(3)]
    apply = receipts._apply

    def failing_for_the_second(receipt, row):
        if receipt.provider_message_id == "ATXid_1":
            raise ValueError("a row this code cannot handle")
        apply(receipt, row)

    monkeypatch.setattr(receipts, "_apply", failing_for_the_second)
    receipts.store([delivered(f"ATXid_{n}", f"e{n}") for n in range(3)])
    run_jobs()
    assert statuses(rows) == ["delivered", "sent", "delivered"]
    waiting = db.session.scalars(
        select(NotificationReceipt.provider_message_id).where(
            NotificationReceipt.applied_at.is_(None)
        )
    ).all()
    assert waiting == ["ATXid_1"]  # kept for the sweep once the cause is mended
    assert "could not be applied" in caplog.text
