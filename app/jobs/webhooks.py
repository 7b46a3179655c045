"""Webhook jobs: fan an outbox event out to the subscribed endpoints, deliver one message (one
attempt per job run; the next attempt is scheduled with RQ's scheduler), and sweep for overdue
deliveries whose job was lost."""

import logging
from datetime import UTC, datetime

from flask import current_app
from redis.exceptions import RedisError
from rq.exceptions import DuplicateJobError

from app.integrations import webhook_sender
from app.jobs import DEFAULT_RETRY, DEFAULT_TIMEOUT, get_queue
from app.services import webhook_deliveries as deliveries

log = logging.getLogger(__name__)

QUEUE = "default"


def delivery_job_id(delivery_id: int, due: datetime) -> str:
    """One job id per (delivery, due time): a retried fan-out or a sweep finds the same job."""
    return f"webhook-delivery-{delivery_id}-{due.astimezone(UTC):%Y%m%dT%H%M%S%fZ}"


def schedule_delivery(delivery_id: int, due: datetime | None) -> None:
    """Queue the delivery's next attempt, now or at `due` (RQ's scheduler). A Redis outage is
    logged, not raised: the sweep enqueues the delivery once it is overdue."""
    due = due or datetime.now(UTC)
    options = {
        "job_id": delivery_job_id(delivery_id, due),
        "unique": True,
        "retry": DEFAULT_RETRY,
        "job_timeout": DEFAULT_TIMEOUT,
        "failure_ttl": 30 * 86400,
    }
    queue = get_queue(QUEUE)
    try:
        if due <= datetime.now(UTC):
            queue.enqueue(deliver_webhook, delivery_id, **options)
        else:
            queue.enqueue_at(due, deliver_webhook, delivery_id, **options)
    except DuplicateJobError:
        pass
    except RedisError as exc:
        log.warning("could not schedule webhook delivery %s: %s", delivery_id, exc)


def fan_out_event(event_id: int, event_type: str, sequence: int, payload: dict) -> None:
    """Create the event's deliveries (once, however often called) and queue each first attempt."""
    for delivery_id, due in deliveries.fan_out(event_id, event_type, sequence, payload):
        schedule_delivery(delivery_id, due)


def deliver_webhook(delivery_id: int) -> None:
    """Make the delivery's due attempt, log it, and schedule the next one if it failed; does
    nothing for a delivery that is finished, not yet due, or being attempted by another job."""
    claim = deliveries.claim_attempt(delivery_id)
    if claim is None:
        return
    config = current_app.config
    result = webhook_sender.send(
        claim.url,
        claim.message_id,
        claim.body,
        claim.secrets,
        timeout=config["WEBHOOK_TIMEOUT_SECONDS"],
        allow_private=config["WEBHOOK_ALLOW_PRIVATE_URLS"],
    )
    outcome = deliveries.record_attempt(claim, result)
    if outcome.next_attempt_at is not None:
        schedule_delivery(delivery_id, outcome.next_attempt_at)
    if outcome.endpoint_disabled:
        deliveries.notify_staff_endpoint_disabled(claim.endpoint_id)


def sweep_webhook_deliveries() -> int:
    """Queue every open delivery whose attempt is more than a minute overdue; returns how many."""
    overdue = deliveries.overdue()
    for delivery_id, due in overdue:
        schedule_delivery(delivery_id, due)
    return len(overdue)
