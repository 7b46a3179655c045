"""Webhook delivery end to end: outbox event -> dispatch -> fan-out -> signed POST to a real
receiver on 127.0.0.1, verified with the `standardwebhooks` library; retries on RQ's scheduled
registry, 410 and 5-day disabling, redelivery, rotation, and the send-time URL check."""

import base64
import logging
import secrets
from datetime import timedelta

import pytest
from rq.job import Job
from sqlalchemy import select, update
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from app.extensions import db
from app.jobs import get_queue
from app.jobs.events import dispatch_event
from app.jobs.webhooks import (
    QUEUE,
    deliver_webhook,
    delivery_job_id,
    schedule_delivery,
    sweep_webhook_deliveries,
)
from app.models import (
    AuditLog,
    DeliveryStatus,
    EndpointStatus,
    Event,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from app.models.base import utcnow
from app.services import webhook_deliveries as deliveries
from app.services import webhooks
from tests import factories
from tests.factories import SYSTEM
from tests.webhook_receiver import Receiver

RETRY_WAITS = [
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
]


@pytest.fixture
def receiver():
    with Receiver() as server:
        yield server


def register(receiver, events=("member.created",)):
    return webhooks.register_endpoint(receiver.url, list(events), SYSTEM)


def verified(received, secret: str) -> dict:
    """The message, as a receiver using the standardwebhooks library accepts it."""
    return Webhook(secret).verify(received.body, received.headers)


def only_delivery() -> WebhookDelivery:
    db.session.expire_all()
    return db.session.scalars(select(WebhookDelivery)).one()


def test_a_new_member_reaches_the_receiver_signed_and_verifiable(receiver, run_jobs):
    endpoint, secret = register(receiver, events=["member.created", "loan.created"])
    member = factories.member()
    run_jobs()  # dispatch (high) -> fan-out -> deliver (default)

    assert len(receiver.received) == 1
    received = receiver.received[0]
    assert received.method == "POST" and received.path == "/hooks/ledger"
    message = verified(received, secret)
    event = db.session.scalars(select(Event)).one()
    assert list(message) == ["id", "type", "sequence", "timestamp", "data"]
    assert message["id"] == f"evt_{event.id}" == received.headers["Webhook-Id"]
    assert message["type"] == "member.created"
    assert message["sequence"] == event.sequence
    assert message["timestamp"] == event.created_at.isoformat()
    assert message["data"]["member_number"] == member.member_number
    assert message["data"]["id"] == member.id
    assert received.headers["Content-Type"] == "application/json"
    assert abs(int(received.headers["Webhook-Timestamp"]) - utcnow().timestamp()) < 60

    delivery = only_delivery()
    assert delivery.status == DeliveryStatus.SUCCEEDED and delivery.completed_at is not None
    [attempt] = delivery.attempts
    assert (attempt.number, attempt.status_code, attempt.error) == (1, 204, None)
    assert attempt.duration_ms >= 0
    assert db.session.get(WebhookEndpoint, endpoint.id).failing_since is None


def test_money_in_the_data_is_the_outbox_two_decimal_string(receiver, run_jobs, member, product):
    _, secret = register(receiver, events=["loan.created"])
    factories.pending_loan(member, product)
    run_jobs()
    [received] = receiver.received
    data = verified(received, secret)["data"]
    assert data["amount"] == "12000.00"
    assert b'"amount":"12000.00"' in received.body


def test_a_test_event_is_delivered_now(receiver, run_jobs):
    endpoint, secret = register(receiver)
    delivery = deliveries.send_test_event(endpoint.id, SYSTEM)
    schedule_delivery(delivery.id, delivery.next_attempt_at)
    run_jobs()
    message = verified(receiver.received[0], secret)
    assert message["type"] == "webhook.test" and message["sequence"] == 0
    assert message["data"]["endpoint_id"] == endpoint.id
    assert only_delivery().status == DeliveryStatus.SUCCEEDED


def test_a_retried_dispatch_sends_nothing_twice(receiver, run_jobs):
    register(receiver)
    factories.member()
    run_jobs()
    event = db.session.scalars(select(Event)).one()
    db.session.execute(update(Event).values(dispatched_at=None))  # as if dispatch crashed late
    db.session.commit()
    dispatch_event(event.id)
    run_jobs()
    assert db.session.query(WebhookDelivery).count() == 1
    assert len(receiver.received) == 1


class Clock:
    """The webhook services' clock, moved by the test instead of by sleeping."""

    def __init__(self, monkeypatch):
        self.now = utcnow()
        monkeypatch.setattr(deliveries, "utcnow", lambda: self.now)


def fire_scheduled(job_id: str) -> None:
    """What RQ's scheduler does when the time comes: move the job to its queue."""
    queue = get_queue(QUEUE)
    job = Job.fetch(job_id, connection=queue.connection)
    queue.scheduled_job_registry.remove(job)
    queue.enqueue_job(job)


def test_failures_are_retried_on_the_schedule_then_the_delivery_fails(
    receiver, run_jobs, monkeypatch
):
    clock = Clock(monkeypatch)
    receiver.status = 500
    receiver.response_body = b"x" * 3000
    endpoint, _ = register(receiver)
    factories.member()
    run_jobs()
    registry = get_queue(QUEUE).scheduled_job_registry

    for number, wait in enumerate(RETRY_WAITS, start=1):
        delivery = only_delivery()
        assert delivery.status == DeliveryStatus.RETRYING
        assert delivery.attempt_count == number
        assert delivery.next_attempt_at == clock.now + wait
        assert delivery.last_status_code == 500 and delivery.last_error == "HTTP 500"
        job_id = delivery_job_id(delivery.id, delivery.next_attempt_at)
        assert registry.get_job_ids() == [job_id]
        assert registry.get_scheduled_time(job_id).timestamp() == int(
            delivery.next_attempt_at.timestamp()
        )
        clock.now = delivery.next_attempt_at
        fire_scheduled(job_id)
        run_jobs()

    delivery = only_delivery()
    assert delivery.status == DeliveryStatus.FAILED and delivery.next_attempt_at is None
    assert registry.get_job_ids() == []
    assert len(receiver.received) == 8
    assert len({r.headers["Webhook-Id"] for r in receiver.received}) == 1  # stable across retries
    assert [a.number for a in delivery.attempts] == list(range(1, 9))
    assert all(len(a.response_excerpt) == 1024 for a in delivery.attempts)
    endpoint = db.session.get(WebhookEndpoint, endpoint.id)
    assert endpoint.status == EndpointStatus.ACTIVE  # about 27.6 hours of failure, not 5 days
    assert endpoint.failing_since is not None


def test_an_early_or_duplicate_job_does_not_send(receiver, run_jobs, monkeypatch):
    Clock(monkeypatch)
    receiver.status = 503
    register(receiver)
    factories.member()
    run_jobs()
    delivery = only_delivery()
    deliver_webhook(delivery.id)  # the retry is due in 5 s, not now
    assert len(receiver.received) == 1
    assert only_delivery().attempt_count == 1


def test_a_success_after_failures_clears_failing_since(receiver, run_jobs, monkeypatch):
    clock = Clock(monkeypatch)
    receiver.status = 500
    endpoint, _ = register(receiver)
    factories.member()
    run_jobs()
    assert db.session.get(WebhookEndpoint, endpoint.id).failing_since is not None
    receiver.status = 200
    delivery = only_delivery()
    clock.now = delivery.next_attempt_at
    fire_scheduled(delivery_job_id(delivery.id, delivery.next_attempt_at))
    run_jobs()
    assert only_delivery().status == DeliveryStatus.SUCCEEDED
    db.session.expire_all()
    assert db.session.get(WebhookEndpoint, endpoint.id).failing_since is None


def staff_audit() -> list[AuditLog]:
    return list(
        db.session.scalars(
            select(AuditLog).where(AuditLog.target_type == "webhook_endpoint").order_by(AuditLog.id)
        )
    )


class Captured(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture
def warnings_logged():
    handler = Captured()
    logger = logging.getLogger(deliveries.__name__)
    logger.addHandler(handler)
    yield handler.messages
    logger.removeHandler(handler)


def test_410_gone_disables_the_endpoint_at_once(receiver, run_jobs, warnings_logged):
    receiver.status = 410
    endpoint, _ = register(receiver)
    other = deliveries.send_test_event(endpoint.id, SYSTEM)  # never scheduled: still pending
    factories.member()
    run_jobs()
    db.session.expire_all()
    endpoint = db.session.get(WebhookEndpoint, endpoint.id)
    assert endpoint.status == EndpointStatus.DISABLED
    assert "410" in endpoint.disabled_reason
    assert len(receiver.received) == 1
    assert get_queue(QUEUE).scheduled_job_registry.get_job_ids() == []
    assert db.session.get(WebhookDelivery, other.id).status == DeliveryStatus.FAILED
    actions = [entry.action for entry in staff_audit()]
    assert actions[-2:] == ["webhook_endpoint.disabled", "webhook_endpoint.staff_notified"]
    assert any("WEBHOOK ENDPOINT DISABLED" in m for m in warnings_logged)
    factories.member()  # a disabled endpoint gets no new deliveries
    run_jobs()
    assert db.session.query(WebhookDelivery).count() == 2


def test_five_days_of_failure_disable_the_endpoint_and_tell_staff(
    receiver, run_jobs, warnings_logged
):
    receiver.status = 502
    endpoint, _ = register(receiver)
    db.session.execute(
        update(WebhookEndpoint).values(failing_since=utcnow() - timedelta(days=5, minutes=1))
    )
    db.session.commit()
    factories.member()
    run_jobs()
    db.session.expire_all()
    endpoint = db.session.get(WebhookEndpoint, endpoint.id)
    assert endpoint.status == EndpointStatus.DISABLED
    assert "5 days" in endpoint.disabled_reason
    assert only_delivery().status == DeliveryStatus.FAILED
    assert get_queue(QUEUE).scheduled_job_registry.get_job_ids() == []
    disabled, notified = staff_audit()[-2:]
    assert disabled.action == "webhook_endpoint.disabled" and "5 days" in disabled.details["reason"]
    assert notified.action == "webhook_endpoint.staff_notified"
    assert notified.actor_label == "webhooks"
    [warning] = [m for m in warnings_logged if "WEBHOOK ENDPOINT DISABLED" in m]
    assert f"endpoint {endpoint.id}" in warning and "127.0.0.1" in warning


def test_four_days_of_failure_only_retry(receiver, run_jobs):
    receiver.status = 500
    endpoint, _ = register(receiver)
    db.session.execute(
        update(WebhookEndpoint).values(failing_since=utcnow() - timedelta(days=4, hours=23))
    )
    db.session.commit()
    factories.member()
    run_jobs()
    db.session.expire_all()
    assert db.session.get(WebhookEndpoint, endpoint.id).status == EndpointStatus.ACTIVE
    assert only_delivery().status == DeliveryStatus.RETRYING


def test_a_failed_delivery_can_be_redelivered(receiver, run_jobs, app, monkeypatch):
    monkeypatch.setitem(app.config, "WEBHOOK_RETRY_DELAYS_SECONDS", ())  # one attempt only
    receiver.status = 500
    _, secret = register(receiver)
    factories.member()
    run_jobs()
    delivery = only_delivery()
    assert delivery.status == DeliveryStatus.FAILED

    receiver.status = 200
    delivery = deliveries.redeliver(delivery.id, SYSTEM)
    schedule_delivery(delivery.id, delivery.next_attempt_at)
    run_jobs()
    delivery = only_delivery()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert [(a.number, a.status_code) for a in delivery.attempts] == [(1, 500), (2, 200)]
    first, second = receiver.received
    assert first.headers["Webhook-Id"] == second.headers["Webhook-Id"]
    assert verified(second, secret)["id"] == delivery.message_id
    audit = db.session.scalars(
        select(AuditLog).where(AuditLog.action == "webhook_delivery.redelivered")
    ).one()
    assert audit.target_id == delivery.id


def test_after_rotation_both_secrets_verify_and_others_do_not(receiver, run_jobs):
    endpoint, old = register(receiver)
    _, new = webhooks.rotate_secret(endpoint.id, SYSTEM)
    delivery = deliveries.send_test_event(endpoint.id, SYSTEM)
    schedule_delivery(delivery.id, delivery.next_attempt_at)
    run_jobs()
    [received] = receiver.received
    signatures = received.headers["Webhook-Signature"].split(" ")
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
    assert verified(received, new)["type"] == "webhook.test"
    assert verified(received, old)["type"] == "webhook.test"
    stranger = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    with pytest.raises(WebhookVerificationError):
        verified(received, stranger)


def test_after_the_overlap_only_the_new_secret_signs(receiver, run_jobs):
    endpoint, old = register(receiver)
    _, new = webhooks.rotate_secret(endpoint.id, SYSTEM)
    db.session.execute(
        update(WebhookEndpoint).values(previous_secret_until=utcnow() - timedelta(seconds=1))
    )
    db.session.commit()
    delivery = deliveries.send_test_event(endpoint.id, SYSTEM)
    schedule_delivery(delivery.id, delivery.next_attempt_at)
    run_jobs()
    [received] = receiver.received
    assert len(received.headers["Webhook-Signature"].split(" ")) == 1
    assert verified(received, new)
    with pytest.raises(WebhookVerificationError):
        verified(received, old)


def test_the_url_is_checked_again_when_sending(receiver, run_jobs, app, monkeypatch):
    register(receiver)  # accepted while private URLs were allowed
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOW_PRIVATE_URLS", False)
    factories.member()
    run_jobs()
    assert receiver.received == []
    delivery = only_delivery()
    [attempt] = delivery.attempts
    assert attempt.status_code is None and attempt.error.startswith("refused:")
    assert delivery.status == DeliveryStatus.RETRYING


def test_no_answer_is_a_failed_attempt_with_the_error(run_jobs):
    with Receiver() as gone:
        url = gone.url
    webhooks.register_endpoint(url, ["member.created"], SYSTEM)  # nothing listens there now
    factories.member()
    run_jobs()
    [attempt] = db.session.scalars(select(WebhookAttempt)).all()
    assert attempt.status_code is None and "ConnectionError" in attempt.error
    assert only_delivery().status == DeliveryStatus.RETRYING


def test_a_redirect_is_a_failure_and_is_not_followed(receiver, run_jobs):
    receiver.status = 307
    register(receiver)
    factories.member()
    run_jobs()
    assert len(receiver.received) == 1
    assert only_delivery().last_error == "HTTP 307"


def test_deliveries_of_a_disabled_endpoint_fail_without_sending(receiver, run_jobs):
    endpoint, _ = register(receiver)
    delivery = deliveries.send_test_event(endpoint.id, SYSTEM)
    db.session.execute(update(WebhookEndpoint).values(status=EndpointStatus.DISABLED))
    db.session.commit()
    deliver_webhook(delivery.id)
    assert receiver.received == []
    assert only_delivery().status == DeliveryStatus.FAILED


def test_the_sweep_queues_overdue_deliveries_whose_job_was_lost(receiver, run_jobs):
    _, secret = register(receiver)
    factories.member()
    run_jobs()
    receiver.received.clear()
    # Redelivered, but its job was never queued (Redis lost it), and now it is overdue:
    deliveries.redeliver(only_delivery().id, SYSTEM)
    db.session.execute(
        update(WebhookDelivery).values(next_attempt_at=utcnow() - timedelta(minutes=2))
    )
    db.session.commit()
    assert sweep_webhook_deliveries() == 1
    assert sweep_webhook_deliveries() == 1  # the same job id: queued once
    assert get_queue(QUEUE).count == 1
    run_jobs()
    assert len(receiver.received) == 1 and verified(receiver.received[0], secret)
    assert sweep_webhook_deliveries() == 0
