"""The gateway over real HTTP: our provider clients call the sandbox, a real RQ worker runs the
sends, and the sandbox posts its signed delivery reports back to the app's live server."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import (
    IntegrationLogEntry,
    Notification,
    NotificationAttempt,
    NotificationStatus,
    Suppression,
)
from app.models.base import utcnow
from app.services.notifications import delivery, gateway

URGENT = {"priority": "high"}  # ignores quiet hours, so the tests do not depend on the clock


def send(member, channel="sms", message="Your repayment of KES 1,500.00 was received."):
    return gateway.create(member.id, message, channel, "Repayment received", URGENT)[0]


def sent_to_sandbox(sandbox, provider, row):
    return [
        m
        for m in sandbox.messages(provider)
        if row.message in str(m.get("body") or m.get("text") or "")
    ]


def reload(row):
    db.session.expire_all()
    return db.session.get(Notification, row.id)


def attempts(row):
    return [(a.provider, a.outcome) for a in db.session.scalars(
        select(NotificationAttempt).where(NotificationAttempt.notification_id == row.id).order_by(NotificationAttempt.id))]  # fmt: skip


def test_an_sms_is_sent_by_the_first_provider_and_its_receipt_applied(
    member, notify_live, run_jobs
):
    row = send(member)
    run_jobs()
    row = reload(row)
    assert (row.status, row.provider) == (NotificationStatus.SENT, "africastalking")
    assert row.provider_message_id
    assert [m["to"] for m in sent_to_sandbox(notify_live, "africastalking", row)] == [
        f"+{member.phone}"
    ]
    notify_live.flush()  # the sandbox posts AT's delivery report to our callback route
    run_jobs()  # which stored it for the job that applies reports
    row = reload(row)
    assert row.status == NotificationStatus.DELIVERED and row.delivered_at is not None


def test_failover_when_the_first_provider_answers_500(member, notify_live, run_jobs):
    notify_live.set_failure("africastalking", "500")
    row = send(member)
    run_jobs()
    row = reload(row)
    assert (row.status, row.provider) == (NotificationStatus.SENT, "twilio")
    assert attempts(row) == [("africastalking", "transient"), ("twilio", "accepted")]
    notify_live.flush()  # Twilio's signed status callbacks, verified by our route
    run_jobs()
    assert reload(row).status == NotificationStatus.DELIVERED


def test_a_permanent_recipient_failure_does_not_fail_over(notify_live, run_jobs):
    from tests import factories

    member = factories.member(phone="0799800001")  # the sandbox's always-invalid number
    row = send(member)
    run_jobs()
    row = reload(row)
    assert row.status == NotificationStatus.FAILED
    assert attempts(row) == [("africastalking", "permanent")]
    assert (
        db.session.scalar(select(Suppression.reason).where(Suppression.contact == member.phone))
        == "invalid"
    )


def test_every_provider_down_retries_later_then_fails(app, member, notify_live, run_jobs):
    for provider in ("africastalking", "twilio", "infobip"):
        notify_live.set_failure(provider, "500")
    row = send(member)
    run_jobs()
    row = reload(row)
    assert (row.status, row.retry_count) == (NotificationStatus.PENDING, 1)
    assert row.scheduled_for > utcnow()
    assert len(attempts(row)) == 3
    row.retry_count, row.scheduled_for = row.max_retries, utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert delivery.deliver(row.id) == NotificationStatus.FAILED
    assert "Every provider failed" in reload(row).skip_reason
    logged = db.session.scalars(
        select(IntegrationLogEntry)
        .where(IntegrationLogEntry.notification_id == row.id)
        .order_by(IntegrationLogEntry.id)
    ).all()
    assert [(e.event, e.level, e.activity) for e in logged] == [
        *[("notify.provider_failed", "warning", False)] * 3,
        ("notify.retrying", "warning", False),
        *[("notify.provider_failed", "warning", False)] * 3,
        ("notify.failed", "error", True),
    ]
    assert logged[0].error_kind == "africastalking: transient"


def test_a_failing_provider_is_skipped_while_its_circuit_is_open(
    app, member, notify_live, run_jobs, redis_conn
):
    app.config["NOTIFY_OVERRIDES"]["circuit_threshold"] = "2"
    run_jobs()  # the member's welcome message goes first, while every provider works
    notify_live.set_failure("africastalking", "500")
    first, second, third = (send(member, message=f"Message {n}") for n in range(3))
    run_jobs()
    assert attempts(reload(first))[0] == ("africastalking", "transient")
    assert attempts(reload(second))[0] == ("africastalking", "transient")
    assert attempts(reload(third)) == [("twilio", "accepted")]  # skipped, cooling off
    opened = db.session.scalars(
        select(IntegrationLogEntry).where(IntegrationLogEntry.event == "notify.circuit_opened")
    ).one()
    assert opened.activity and opened.error_kind == "africastalking: circuit open"


def test_a_notification_claimed_by_a_dead_worker_is_never_sent_twice(member, notify_live):
    row = send(member)
    row.status = NotificationStatus.SENDING  # as a worker killed mid-send leaves it
    row.updated_at = utcnow() - timedelta(minutes=11)
    db.session.commit()
    assert delivery.deliver(row.id) is None
    assert sent_to_sandbox(notify_live, None, row) == []
    assert delivery.abandon_stale_sending() == 1
    assert reload(row).status == NotificationStatus.FAILED


def test_an_email_is_sent_and_its_signed_events_applied(member, notify_live, run_jobs):
    row = send(member, "email")
    run_jobs()
    row = reload(row)
    assert (row.status, row.provider) == (NotificationStatus.SENT, "sendgrid")
    delivered = notify_live.flush()
    run_jobs()
    assert all(d["status_code"] == 200 for d in delivered), delivered
    assert reload(row).status == NotificationStatus.DELIVERED


def test_email_failover_to_mailgun_and_its_signed_webhook(member, notify_live, run_jobs):
    notify_live.set_failure("sendgrid", "500")
    row = send(member, "email")
    run_jobs()
    assert reload(row).provider == "mailgun"
    notify_live.flush()
    run_jobs()
    assert reload(row).status == NotificationStatus.DELIVERED


def test_a_webhook_failing_verification_is_refused_and_changes_nothing(
    client, member, notify_live, run_jobs
):
    row = send(member)
    run_jobs()
    forged = {
        "id": reload(row).provider_message_id,
        "status": "Success",
        "phoneNumber": f"+{member.phone}",
    }
    assert (
        client.post("/callbacks/notify/africastalking/wrong-secret/status", data=forged).status_code
        == 403
    )
    assert client.post("/callbacks/notify/twilio/status", data={"MessageSid": "SM1", "MessageStatus": "delivered"},
                       headers={"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"}).status_code == 403  # fmt: skip
    assert (
        client.post("/callbacks/notify/sendgrid/events", json=[{"event": "delivered"}]).status_code
        == 403
    )
    assert reload(row).status == NotificationStatus.SENT


def test_a_notification_whose_job_redis_lost_is_picked_up_by_the_sweep(member):
    row = send(member)
    assert row.id not in delivery.due_ids()  # its job is queued: not yet the sweep's
    row.created_at = utcnow() - timedelta(minutes=2)
    db.session.commit()
    assert row.id in delivery.due_ids()


def test_a_batch_sends_the_rest_when_one_raises_and_its_retry_sends_nothing_twice(
    notify_live, monkeypatch
):
    """A bulk run's batch job over the sandbox. One send is made to raise after its claim (the
    database cannot be made to fail for one row here): the others are sent, the job raises so
    that RQ retries it, and the retry sends nothing again."""
    from app.jobs import notifications as notification_jobs
    from app.services.notifications import bulk
    from tests import factories

    people = [factories.member(phone=f"07123450{n:02d}") for n in range(3)]
    items = [bulk.Outgoing(p.id, "sms", p.phone, f"Statement ready #{p.id}", f"b:{p.id}") for p in people]  # fmt: skip
    ids = bulk.store(items, "account_update", priority="high")
    original = delivery._try_providers

    def raising_for_the_second(row, settings, senders):
        if row.id == ids[1]:
            raise ConnectionError("database went away")
        return original(row, settings, senders)

    monkeypatch.setattr(delivery, "_try_providers", raising_for_the_second)
    with pytest.raises(delivery.BatchFailed, match=rf"1 of 3 raised: \[{ids[1]}\]"):
        notification_jobs.deliver_batch(ids)
    db.session.expire_all()
    statuses = [db.session.get(Notification, n).status for n in ids]
    assert statuses == [
        NotificationStatus.SENT,
        NotificationStatus.SENDING,
        NotificationStatus.SENT,
    ]
    assert len(notify_live.messages("africastalking")) == 2

    monkeypatch.setattr(delivery, "_try_providers", original)
    notification_jobs.deliver_batch(ids)  # RQ's retry: the two are done, the third in doubt
    assert len(notify_live.messages("africastalking")) == 2


def test_a_batch_commits_each_claim_before_its_send_with_the_previous_outcome(
    notify_live, monkeypatch
):
    """One commit per message: when the provider is called for a notification, another
    connection already sees it `sending` and the one before it `sent`."""
    from sqlalchemy import event

    from app.services.notifications import bulk
    from tests import factories

    people = [factories.member(phone=f"07123452{n:02d}") for n in range(3)]
    ids = bulk.store([bulk.Outgoing(p.id, "sms", p.phone, f"Hi #{p.id}", f"d:{p.id}") for p in people], "account_update", priority="high")  # fmt: skip
    table = Notification.__table__
    seen = []
    original = delivery._try_providers

    def committed_when_sent(row, settings, senders):
        with db.engine.connect() as other:  # what is committed, not this session's view
            statuses = dict(other.execute(select(table.c.id, table.c.status).where(table.c.id.in_(ids))).all())  # fmt: skip
        seen.append([statuses[n] for n in ids])
        return original(row, settings, senders)

    monkeypatch.setattr(delivery, "_try_providers", committed_when_sent)
    commits = []
    count = commits.append  # one bound method: the same object to listen with and remove
    event.listen(db.session, "after_commit", count)
    try:
        assert set(delivery.deliver_many(ids).values()) == {NotificationStatus.SENT}
    finally:
        event.remove(db.session, "after_commit", count)
    assert seen == [
        ["sending", "pending", "pending"],
        ["sent", "sending", "pending"],
        ["sent", "sent", "sending"],
    ]
    assert len(commits) == len(ids) + 2  # the first claim, one per message, waiting receipts


def test_a_batch_reads_each_breaker_once_and_records_a_success_once(
    notify_live, monkeypatch, redis_conn
):
    """A provider's breaker costs a Redis round trip: a batch of three reads it once and records
    one success (which clears the failures counted before), not one of each per message."""
    from app.services.notifications import bulk, circuit
    from tests import factories

    people = [factories.member(phone=f"07123451{n:02d}") for n in range(3)]
    ids = bulk.store([bulk.Outgoing(p.id, "sms", p.phone, f"Hi #{p.id}", f"c:{p.id}") for p in people], "account_update", priority="high")  # fmt: skip
    circuit.record_failure("africastalking", threshold=5, window=300, cooling_off=300)
    calls = []
    for name in ("is_open", "record_success"):
        original = getattr(circuit, name)
        monkeypatch.setattr(
            circuit, name, lambda *a, _f=original, _n=name: calls.append(_n) or _f(*a)
        )
    assert set(delivery.deliver_many(ids).values()) == {NotificationStatus.SENT}
    assert calls == ["is_open", "record_success"]
    assert not redis_conn.exists(f"{circuit.PREFIX}africastalking:failures")
