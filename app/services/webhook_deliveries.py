"""Webhook deliveries: one per (endpoint, event), with every attempt logged.

The message is the envelope `{"id", "type", "sequence", "timestamp", "data"}`: `id` is
`evt_<event id>` (also the `webhook-id` header, stable across retries, so receivers can dedupe),
`data` is the outbox event's payload unchanged (money as two-decimal strings such as "12000.00").

A failed attempt (no answer, or anything but 2xx) is retried after 5 s, 5 min, 30 min, 2 h, 5 h,
10 h and 10 h: 8 attempts in all. `attempt_count` counts the attempts of the current round (since
the delivery was created or last redelivered); the attempts themselves are numbered across rounds.
A 410 Gone disables the endpoint at once; so does failing without a success for
WEBHOOK_DISABLE_AFTER_FAILING_DAYS (the endpoint's `failing_since`).

Jobs claim an attempt with a conditional UPDATE that also moves `next_attempt_at` forward by a
lease, so two jobs for the same delivery never both send, and a worker that dies mid-attempt
leaves a delivery that the sweep finds due again once the lease has passed.
"""

import json
import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from app.extensions import db
from app.integrations.webhook_sender import SendResult
from app.models import (
    DeliveryStatus,
    EndpointStatus,
    Event,
    Integration,
    LogLevel,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from app.models import base as model_base
from app.services import audit, integration_log
from app.services import webhooks as endpoints
from app.services.actor import Actor
from app.services.errors import IllegalTransition, NotFound, ValidationFailed
from app.services.lookup import get_or_not_found
from app.services.notifications import alerts

log = logging.getLogger(__name__)

TEST_EVENT = "webhook.test"
OPEN = (DeliveryStatus.PENDING, DeliveryStatus.RETRYING)
# A scheduled job may run this early (RQ schedules to the whole second).
DUE_SLACK = timedelta(seconds=2)
LEASE_MARGIN = timedelta(seconds=60)
WEBHOOKS_ACTOR = Actor.system("webhooks")


def utcnow() -> datetime:
    return model_base.utcnow()  # looked up at call time, so tests can move the clock


def message_id(event_id: int) -> str:
    """The message id of an outbox event's webhooks (`webhook-id`), also used by the events feed."""
    return f"evt_{event_id}"


def iso(moment: datetime) -> str:
    return moment.isoformat()


def envelope(msg_id: str, event_type: str, sequence: int, timestamp: datetime, data) -> dict:
    """The message sent: Standard Webhooks' type/timestamp/data, with our id and sequence."""
    return {
        "id": msg_id,
        "type": event_type,
        "sequence": sequence,
        "timestamp": iso(timestamp),
        "data": data,
    }


def encode_body(message: dict) -> bytes:
    """The exact bytes sent and signed."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()


def retry_delay(attempts_made: int) -> timedelta | None:
    """The wait before the next attempt after `attempts_made` failed ones; None when exhausted."""
    delays = current_app.config["WEBHOOK_RETRY_DELAYS_SECONDS"]
    if 1 <= attempts_made <= len(delays):
        return timedelta(seconds=delays[attempts_made - 1])
    return None


def _subscribed(event_type: str) -> list[WebhookEndpoint]:
    active = db.session.scalars(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.status == EndpointStatus.ACTIVE)
        .order_by(WebhookEndpoint.id)
    )
    return [endpoint for endpoint in active if event_type in (endpoint.events or [])]


def _waiting(event_id: int) -> list[tuple[int, datetime]]:
    rows = db.session.execute(
        select(WebhookDelivery.id, WebhookDelivery.next_attempt_at).where(
            WebhookDelivery.event_id == event_id,
            WebhookDelivery.status == DeliveryStatus.PENDING,
            WebhookDelivery.attempt_count == 0,
        )
    )
    return [(row.id, row.next_attempt_at) for row in rows]


def fan_out(event_id: int, event_type: str, sequence: int, payload: dict):
    """One delivery of the event per active endpoint subscribed to its type; a delivery that
    exists already is kept, so a repeated call adds nothing. Returns (delivery id, due time) of
    the event's deliveries still waiting for their first attempt."""
    targets = _subscribed(event_type)
    if not targets:
        return []
    have = set(
        db.session.scalars(
            select(WebhookDelivery.endpoint_id).where(WebhookDelivery.event_id == event_id)
        )
    )
    missing = [endpoint for endpoint in targets if endpoint.id not in have]
    if missing:
        event = db.session.get(Event, event_id)
        message = envelope(
            message_id(event_id),
            event_type,
            sequence,
            event.created_at if event else utcnow(),
            payload,
        )
        now = utcnow()
        for endpoint in missing:
            db.session.add(
                WebhookDelivery(
                    endpoint_id=endpoint.id,
                    event_id=event_id,
                    event_type=event_type,
                    message_id=message["id"],
                    payload=message,
                    status=DeliveryStatus.PENDING,
                    attempt_count=0,
                    next_attempt_at=now,
                )
            )
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()  # a concurrent dispatch of the same event made them first
    return _waiting(event_id)


def send_test_event(endpoint_id: int, actor: Actor) -> WebhookDelivery:
    """A `webhook.test` delivery to the endpoint, due now (sequence 0: not an outbox event)."""
    endpoint = endpoints.get_endpoint(endpoint_id)
    if endpoint.status != EndpointStatus.ACTIVE:
        raise IllegalTransition("This endpoint is disabled; enable it before sending a test event.")
    now = utcnow()
    test_id = f"evt_test_{secrets.token_hex(12)}"
    data = {"endpoint_id": endpoint.id, "message": "A test event from Daystar Integrations."}
    delivery = WebhookDelivery(
        endpoint_id=endpoint.id,
        event_id=None,
        event_type=TEST_EVENT,
        message_id=test_id,
        payload=envelope(test_id, TEST_EVENT, 0, now, data),
        status=DeliveryStatus.PENDING,
        attempt_count=0,
        next_attempt_at=now,
    )
    db.session.add(delivery)
    db.session.flush()
    audit.record(
        actor,
        "webhook_endpoint.test_sent",
        "webhook_endpoint",
        endpoint.id,
        delivery_id=delivery.id,
    )
    db.session.commit()
    return delivery


@dataclass(frozen=True)
class Claim:
    """One attempt a job may make now: what to send, where, and with which secrets."""

    delivery_id: int
    endpoint_id: int
    number: int
    url: str
    message_id: str
    body: bytes
    claimed_at: datetime
    secrets: tuple[str, ...] = field(repr=False)


def claim_attempt(delivery_id: int) -> Claim | None:
    """The attempt to make now, counted and committed; None when the delivery is gone, finished,
    not yet due, or taken by another job. A delivery of a disabled endpoint fails instead."""
    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.status not in OPEN:
        return None
    endpoint = delivery.endpoint
    now = utcnow()
    if endpoint.status != EndpointStatus.ACTIVE:
        _finish(delivery, DeliveryStatus.FAILED, now, "The endpoint was disabled.")
        db.session.commit()
        return None
    lease = timedelta(seconds=current_app.config["WEBHOOK_TIMEOUT_SECONDS"]) + LEASE_MARGIN
    claimed = db.session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery.id,
            WebhookDelivery.status.in_(OPEN),
            WebhookDelivery.attempt_count == delivery.attempt_count,
            or_(
                WebhookDelivery.next_attempt_at.is_(None),
                WebhookDelivery.next_attempt_at <= now + DUE_SLACK,
            ),
        )
        .values(attempt_count=WebhookDelivery.attempt_count + 1, next_attempt_at=now + lease)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not claimed:
        db.session.rollback()
        return None
    number = 1 + db.session.scalar(
        select(func.coalesce(func.max(WebhookAttempt.number), 0)).where(
            WebhookAttempt.delivery_id == delivery.id
        )
    )
    claim = Claim(
        delivery_id=delivery.id,
        endpoint_id=endpoint.id,
        number=number,
        url=endpoint.url,
        message_id=delivery.message_id,
        body=encode_body(delivery.payload),
        claimed_at=now,
        secrets=tuple(endpoints.signing_secrets(endpoint, now)),
    )
    db.session.commit()
    return claim


@dataclass(frozen=True)
class Outcome:
    """What follows an attempt: when to try again (None: never), and whether the endpoint was
    disabled by it (staff must then be told)."""

    next_attempt_at: datetime | None = None
    endpoint_disabled: bool = False


def _finish(delivery: WebhookDelivery, status: str, now: datetime, error: str | None) -> None:
    delivery.status = status
    delivery.next_attempt_at = None
    delivery.completed_at = now
    delivery.last_error = error


def record_attempt(claim: Claim, result: SendResult) -> Outcome:
    """Log the attempt and move the delivery on: succeeded on 2xx (the endpoint is no longer
    failing), else retrying on the schedule or failed; a 410 or 5 days of failure disables the
    endpoint."""
    delivery = db.session.get(WebhookDelivery, claim.delivery_id)
    if delivery is None:  # the endpoint was deleted while the request was in flight
        return Outcome()
    now = utcnow()
    started = claim.claimed_at
    error = result.error or (None if result.succeeded else f"HTTP {result.status_code}")
    db.session.add(
        WebhookAttempt(
            delivery_id=delivery.id,
            number=claim.number,
            started_at=started,
            status_code=result.status_code,
            duration_ms=result.duration_ms,
            response_excerpt=result.response_excerpt,
            error=result.error,
        )
    )
    delivery.last_status_code = result.status_code
    endpoint = delivery.endpoint
    outcome = Outcome()
    if result.succeeded:
        _finish(delivery, DeliveryStatus.SUCCEEDED, now, None)
        endpoint.failing_since = None
    elif result.status_code == 410:
        _finish(delivery, DeliveryStatus.FAILED, now, error)
        endpoints.mark_disabled(
            endpoint,
            WEBHOOKS_ACTOR,
            "The endpoint answered 410 Gone: it asked not to be called again.",
        )
        outcome = Outcome(endpoint_disabled=True)
    else:
        endpoint.failing_since = endpoint.failing_since or started
        failing_for = now - endpoint.failing_since
        limit = timedelta(days=current_app.config["WEBHOOK_DISABLE_AFTER_FAILING_DAYS"])
        delay = retry_delay(delivery.attempt_count)
        if failing_for >= limit:
            _finish(delivery, DeliveryStatus.FAILED, now, error)
            endpoints.mark_disabled(
                endpoint,
                WEBHOOKS_ACTOR,
                f"Every delivery has failed for {failing_for.days} days (since "
                f"{iso(endpoint.failing_since)}).",
            )
            outcome = Outcome(endpoint_disabled=True)
        elif delay is None:
            _finish(delivery, DeliveryStatus.FAILED, now, error)
        else:
            delivery.status = DeliveryStatus.RETRYING
            delivery.next_attempt_at = now + delay
            delivery.last_error = error
            outcome = Outcome(next_attempt_at=delivery.next_attempt_at)
    if not result.succeeded:
        _log_failed_attempt(delivery, claim, error, outcome)
    db.session.commit()
    return outcome


def _log_failed_attempt(delivery: WebhookDelivery, claim: Claim, error: str, outcome) -> None:
    """A failed attempt in the integration log: a warning while it will be retried, an error
    when the delivery has failed for good."""
    final = delivery.status == DeliveryStatus.FAILED
    host = urlsplit(claim.url).hostname
    integration_log.record(
        Integration.WEBHOOKS,
        "webhook.delivery_failed" if final else "webhook.attempt_failed",
        f"Delivery {delivery.id} of {delivery.event_type} to {host}, attempt {claim.number}: "
        f"{error}" + ("; no more attempts." if final else "; it will be retried."),
        LogLevel.ERROR if final else LogLevel.WARNING,
        context={
            "endpoint_id": claim.endpoint_id,
            "status_code": delivery.last_status_code,
            "next_attempt_at": outcome.next_attempt_at,
        },
        error_kind=f"HTTP {delivery.last_status_code}"
        if delivery.last_status_code
        else (error or "").split(":")[0],
        webhook_delivery_id=delivery.id,
    )


def notify_staff_endpoint_disabled(endpoint_id: int) -> None:
    """Tell staff that an endpoint was disabled automatically: an audit entry, a log warning and
    an alert to the administrators (email and SMS, after the commit)."""
    endpoint = db.session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        return
    host = urlsplit(endpoint.url).hostname
    log.warning(
        "WEBHOOK ENDPOINT DISABLED: endpoint %s (%s) will receive no events until staff enable "
        "it. Reason: %s",
        endpoint.id,
        host,
        endpoint.disabled_reason,
    )
    audit.record(
        WEBHOOKS_ACTOR,
        "webhook_endpoint.staff_notified",
        "webhook_endpoint",
        endpoint.id,
        reason=endpoint.disabled_reason,
        channels=["audit_log", "log", "admin_alert"],
    )
    alerts.raise_alert(
        "webhook_endpoint_disabled",
        f"Webhook endpoint {endpoint.id} ({host}) was disabled and receives no events until "
        f"staff enable it. {endpoint.disabled_reason}",
        {"endpoint": endpoint.id, "host": host},
    )
    db.session.commit()


def get_delivery(delivery_id: int, endpoint_id: int | None = None) -> WebhookDelivery:
    message = f"There is no webhook delivery {delivery_id}."
    delivery = get_or_not_found(WebhookDelivery, delivery_id, message)
    if endpoint_id is not None and delivery.endpoint_id != endpoint_id:
        raise NotFound(message)
    return delivery


def redeliver(delivery_id: int, actor: Actor) -> WebhookDelivery:
    """A finished delivery (failed, or succeeded and to be replayed) starts a new round of
    attempts, due now, with the same message id; refused while it is still being attempted or
    its endpoint is disabled."""
    delivery = get_delivery(delivery_id)
    if delivery.status in OPEN:
        raise IllegalTransition("This delivery is still being attempted.")
    if delivery.endpoint.status != EndpointStatus.ACTIVE:
        raise IllegalTransition("The endpoint is disabled; enable it before redelivering.")
    delivery.status = DeliveryStatus.PENDING
    delivery.attempt_count = 0
    delivery.next_attempt_at = utcnow()
    delivery.completed_at = None
    delivery.last_error = None
    audit.record(
        actor,
        "webhook_delivery.redelivered",
        "webhook_delivery",
        delivery.id,
        endpoint_id=delivery.endpoint_id,
        message_id=delivery.message_id,
    )
    db.session.commit()
    return delivery


def deliveries_query(endpoint_id: int, status: str | None = None):
    """The endpoint's deliveries, newest first, each with its attempts loaded in one query."""
    if status is not None and status not in set(DeliveryStatus):
        raise ValidationFailed(
            {"status": f"Unknown status {status}; choose from {', '.join(DeliveryStatus)}."}
        )
    query = (
        select(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint_id)
        .options(selectinload(WebhookDelivery.attempts))
        .order_by(WebhookDelivery.id.desc())
    )
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    return query


def overdue(late_by: timedelta = timedelta(seconds=60), limit: int = 1000):
    """(id, due time) of open deliveries whose attempt is overdue by `late_by`: their job was lost
    (Redis down when it was scheduled) or their worker died mid-attempt."""
    rows = db.session.execute(
        select(WebhookDelivery.id, WebhookDelivery.next_attempt_at)
        .where(
            WebhookDelivery.status.in_(OPEN),
            WebhookDelivery.next_attempt_at <= utcnow() - late_by,
        )
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(limit)
    )
    return [(row.id, row.next_attempt_at) for row in rows]
