"""Webhook endpoints of the accounting API: register, list, show, delete, rotate the secret, send a
test event, and list and redeliver deliveries. All need the `manage_webhooks` permission.

The SACCO has one set of endpoints: any key with `manage_webhooks` sees and manages all of them,
whichever key registered them.
"""

from flask import g
from marshmallow import Schema, ValidationError, fields
from marshmallow.validate import Length, OneOf

from app.blueprints.api import bp
from app.blueprints.api.auth import api_actor, require_permission
from app.blueprints.api.openapi import operation
from app.blueprints.api.paging import paged
from app.blueprints.api.schemas import PagedQuery, list_schema
from app.jobs.webhooks import schedule_delivery
from app.models import (
    ApiPermission,
    DeliveryStatus,
    EndpointStatus,
    WebhookDelivery,
    WebhookEndpoint,
)
from app.services import webhook_deliveries as deliveries
from app.services import webhooks
from app.services.events import EVENT_TYPES

MANAGE = ApiPermission.MANAGE_WEBHOOKS.value
# Plain <int:...>: with bounds in the converter, werkzeug answers an out-of-range id on a path that
# has several rules (GET and DELETE here) with 405 instead of 404. The services refuse ids beyond
# the column's range with NotFound (404) before any SQL.
ENDPOINT = "/webhooks/<int:webhook_id>"
TAG = "Webhooks"

SIGNING = (
    "Deliveries follow Standard Webhooks: a POST of the JSON envelope "
    '`{"id", "type", "sequence", "timestamp", "data"}` (`data` is the event\'s record; money in '
    "it is a two-decimal string) with the headers `webhook-id` (the envelope's id, stable across "
    "retries: dedupe on it), `webhook-timestamp` (unix seconds of the attempt) and "
    "`webhook-signature` (`v1,` + base64 HMAC-SHA256 of `id.timestamp.body`, keyed with the "
    "base64-decoded part of the secret after `whsec_`; during a secret rotation two signatures, "
    "space-separated). Answer 2xx within 15 seconds; anything else is retried after 5 s, 5 min, "
    "30 min, 2 h, 5 h, 10 h and 10 h. 410 Gone disables the endpoint at once, and so do 5 days "
    "without a successful delivery. The URL must be https and resolve to public addresses. Any "
    "key with `manage_webhooks` manages every endpoint of the SACCO."
)


def _known_events(names) -> None:
    unknown = sorted({n for n in names if n not in EVENT_TYPES})
    if unknown:
        raise ValidationError(
            f"Unknown event(s) {', '.join(unknown)}; choose from {', '.join(EVENT_TYPES)}."
        )
    if not names:
        raise ValidationError("Choose at least one event.")


class WebhookCreate(Schema):
    url = fields.String(
        required=True,
        validate=Length(1, webhooks.MAX_URL_LENGTH),
        metadata={"description": "https URL that receives the events.", "format": "uri"},
    )
    events = fields.List(
        fields.String(metadata={"enum": list(EVENT_TYPES)}),
        required=True,
        validate=_known_events,
        metadata={"description": "The event types to receive."},
    )
    description = fields.String(
        load_default="", validate=Length(max=webhooks.MAX_DESCRIPTION_LENGTH)
    )


class WebhookRecord(Schema):
    id = fields.Integer(required=True)
    url = fields.String(required=True)
    description = fields.String(required=True)
    events = fields.List(fields.String(), required=True)
    status = fields.String(required=True, validate=OneOf([s.value for s in EndpointStatus]))
    disabled_at = fields.DateTime(required=True, allow_none=True)
    disabled_reason = fields.String(required=True, allow_none=True)
    failing_since = fields.DateTime(
        required=True,
        allow_none=True,
        metadata={"description": "First failed attempt since the last success."},
    )
    previous_secret_expires_at = fields.DateTime(
        required=True,
        allow_none=True,
        attribute="previous_secret_until",
        metadata={"description": "Until then the previous secret also signs (after a rotation)."},
    )
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


class WebhookWithSecret(WebhookRecord):
    secret = fields.String(
        required=True,
        metadata={
            "description": "whsec_<base64>: the signing secret. Shown only in this answer; store it."
        },
    )


class AttemptRecord(Schema):
    number = fields.Integer(required=True)
    started_at = fields.DateTime(required=True)
    status_code = fields.Integer(required=True, allow_none=True)
    duration_ms = fields.Integer(required=True)
    response_excerpt = fields.String(
        required=True, metadata={"description": "The first 1 KB of the response body."}
    )
    error = fields.String(required=True, allow_none=True)


class DeliveryRecord(Schema):
    id = fields.Integer(required=True)
    endpoint_id = fields.Integer(required=True)
    event_id = fields.Integer(
        required=True, allow_none=True, metadata={"description": "null for a test event."}
    )
    event_type = fields.String(required=True)
    message_id = fields.String(required=True, metadata={"description": "The webhook-id header."})
    status = fields.String(required=True, validate=OneOf([s.value for s in DeliveryStatus]))
    attempt_count = fields.Integer(
        required=True, metadata={"description": "Attempts since created or last redelivered."}
    )
    next_attempt_at = fields.DateTime(required=True, allow_none=True)
    last_status_code = fields.Integer(required=True, allow_none=True)
    last_error = fields.String(required=True, allow_none=True)
    completed_at = fields.DateTime(required=True, allow_none=True)
    created_at = fields.DateTime(required=True)
    attempts = fields.List(fields.Nested(AttemptRecord), required=True)


class DeliveryQueued(Schema):
    delivery_id = fields.Integer(required=True, attribute="id")
    message_id = fields.String(required=True)
    status = fields.String(required=True)


class DeliveryQuery(PagedQuery):
    status = fields.String(validate=OneOf([s.value for s in DeliveryStatus]))


WebhookList = list_schema("webhooks", WebhookRecord)
DeliveryList = list_schema("deliveries", DeliveryRecord)


class _Shown:
    """An endpoint with its new secret, for the one answer that shows it."""

    def __init__(self, endpoint, secret: str):
        self._endpoint = endpoint
        self.secret = secret

    def __getattr__(self, name):
        return getattr(self._endpoint, name)


@bp.post("/webhooks")
@require_permission(MANAGE)
@operation(
    tag=TAG,
    summary="Register a webhook endpoint",
    description=SIGNING,
    body=WebhookCreate,
    responses={201: WebhookWithSecret},
)
def create_webhook(body):
    """A new active endpoint; its secret is in this answer and never again."""
    endpoint, secret = webhooks.register_endpoint(
        body["url"], body["events"], api_actor(), body["description"], api_key_id=g.api_key.id
    )
    return _Shown(endpoint, secret), 201


@bp.get("/webhooks")
@require_permission(MANAGE)
@operation(
    tag=TAG,
    summary="List webhook endpoints",
    query=PagedQuery,
    responses={200: WebhookList},
    link_header=True,
)
def list_webhooks(query):
    """Every endpoint of the SACCO, oldest first, paged."""
    return paged("webhooks", webhooks.endpoints_query(), WebhookEndpoint.id, query)


@bp.get(ENDPOINT)
@require_permission(MANAGE)
@operation(tag=TAG, summary="Show a webhook endpoint", responses={200: WebhookRecord})
def get_webhook(webhook_id):
    """The endpoint, without its secret."""
    return webhooks.get_endpoint(webhook_id)


@bp.delete(ENDPOINT)
@require_permission(MANAGE)
@operation(tag=TAG, summary="Delete a webhook endpoint", responses={204: None})
def delete_webhook(webhook_id):
    """The endpoint and its delivery log are gone; nothing more is sent to it."""
    webhooks.delete_endpoint(webhook_id, api_actor())
    return None, 204


@bp.post(f"{ENDPOINT}/rotate-secret")
@require_permission(MANAGE)
@operation(
    tag=TAG,
    summary="Rotate a webhook endpoint's secret",
    description="A new secret, shown only in this answer. For 24 hours the previous secret keeps "
    "signing beside it (two signatures in `webhook-signature`), so the receiver can switch over.",
    responses={200: WebhookWithSecret},
)
def rotate_webhook_secret(webhook_id):
    """A new secret for the endpoint, shown once; the old one signs too during the overlap."""
    endpoint, secret = webhooks.rotate_secret(webhook_id, api_actor())
    return _Shown(endpoint, secret)


@bp.post(f"{ENDPOINT}/test")
@require_permission(MANAGE)
@operation(
    tag=TAG,
    summary="Send a test event",
    description="Queues a `webhook.test` event (sequence 0: not part of the event feed) to the "
    "endpoint now; its attempts appear in the deliveries.",
    responses={202: DeliveryQueued},
    errors=(409,),
)
def test_webhook(webhook_id):
    """A `webhook.test` delivery is queued for the endpoint at once (409 if it is disabled)."""
    delivery = deliveries.send_test_event(webhook_id, api_actor())
    schedule_delivery(delivery.id, delivery.next_attempt_at)
    return delivery, 202


@bp.get(f"{ENDPOINT}/deliveries")
@require_permission(MANAGE)
@operation(
    tag=TAG,
    summary="List a webhook endpoint's deliveries",
    description="Newest first, each with its attempts (status, duration, first 1 KB of the "
    "response).",
    query=DeliveryQuery,
    responses={200: DeliveryList},
    link_header=True,
)
def list_webhook_deliveries(webhook_id, query):
    """The endpoint's deliveries with their attempts, newest first, paged."""
    webhooks.get_endpoint(webhook_id)
    selection = deliveries.deliveries_query(webhook_id, query.get("status"))
    return paged(
        "deliveries",
        selection,
        WebhookDelivery.id,
        query,
        descending=True,
        bound_to={"webhook_id": webhook_id},  # another endpoint's cursor is refused
    )


@bp.post(f"{ENDPOINT}/deliveries/<int:delivery_id>/redeliver")
@require_permission(MANAGE)
@operation(
    tag=TAG,
    summary="Redeliver a message",
    description="A finished delivery (failed, or succeeded and to be replayed) starts a new round "
    "of attempts now, with the same `webhook-id`.",
    responses={202: DeliveryQueued},
    errors=(409,),
)
def redeliver_webhook(webhook_id, delivery_id):
    """The delivery is queued again at once (409 while it is still being attempted)."""
    deliveries.get_delivery(delivery_id, endpoint_id=webhook_id)
    delivery = deliveries.redeliver(delivery_id, api_actor())
    schedule_delivery(delivery.id, delivery.next_attempt_at)
    return delivery, 202
