"""Webhook endpoints: registration, the URL safety check, secrets and their rotation.

The SACCO has one set of endpoints: any API key with `manage_webhooks` (and staff in the portal)
sees and manages every endpoint, whichever key registered it.

A secret is `whsec_` + base64 of 32 random bytes (Standard Webhooks). It is shown once, when the
endpoint is registered or its secret rotated, and stored only Fernet-encrypted. After a rotation
the previous secret keeps signing beside the new one for WEBHOOK_SECRET_OVERLAP_HOURS.

Deliveries and their attempts are in services.webhook_deliveries.
"""

import base64
import secrets
from datetime import timedelta
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import delete, select

from app.extensions import db
from app.integrations import webhook_sender
from app.models import DeliveryStatus, EndpointStatus, WebhookAttempt, WebhookDelivery
from app.models import WebhookEndpoint as Endpoint
from app.models.base import utcnow
from app.services import audit, crypto
from app.services.actor import Actor
from app.services.errors import IllegalTransition, ValidationFailed
from app.services.events import EVENT_TYPES
from app.services.lookup import get_or_not_found

SECRET_PREFIX = webhook_sender.SECRET_PREFIX
SECRET_BYTES = 32
MAX_URL_LENGTH = 2000
MAX_DESCRIPTION_LENGTH = 300


def generate_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def private_urls_allowed() -> bool:
    return bool(current_app.config["WEBHOOK_ALLOW_PRIVATE_URLS"])


def url_problem(url) -> str | None:
    """Why this URL cannot receive webhooks, or None. Unless WEBHOOK_ALLOW_PRIVATE_URLS is set it
    must be https and every address its host resolves to must be public."""
    if not isinstance(url, str) or not url.strip():
        return "Give the URL that receives the webhooks."
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        return f"The URL is longer than {MAX_URL_LENGTH} characters."
    if "\x00" in url or any(ch.isspace() for ch in url):
        return "This is not a valid URL."
    try:
        parts = urlsplit(url)
    except ValueError:
        return "This is not a valid URL."
    if parts.username is not None or parts.password is not None:
        return "Do not put credentials in the URL; the signature authenticates our requests."
    try:
        webhook_sender.check_destination(url, private_urls_allowed())
    except webhook_sender.UnsafeDestination as exc:
        return f"This URL is refused: {exc}."
    return None


def clean_events(events) -> list[str]:
    """The event names as a sorted list; ValidationFailed naming any unknown one."""
    if not isinstance(events, list | tuple) or not all(isinstance(e, str) for e in events):
        raise ValidationFailed({"events": "Give a list of event names."})
    chosen = {e.strip() for e in events if e.strip()}
    unknown = sorted(chosen - set(EVENT_TYPES))
    if unknown:
        raise ValidationFailed(
            {
                "events": f"Unknown event(s) {', '.join(unknown)}; choose from "
                f"{', '.join(EVENT_TYPES)}."
            }
        )
    if not chosen:
        raise ValidationFailed({"events": "Choose at least one event."})
    return sorted(chosen)


def _clean_endpoint(url, events, description) -> tuple[str, list[str], str]:
    errors = {}
    problem = url_problem(url)
    if problem:
        errors["url"] = problem
    try:
        events = clean_events(events)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    description = (description or "").strip() if isinstance(description, str | None) else None
    if description is None or len(description) > MAX_DESCRIPTION_LENGTH:
        errors["description"] = (
            f"Describe the endpoint in at most {MAX_DESCRIPTION_LENGTH} characters."
        )
    elif "\x00" in description:
        errors["description"] = "Text may not contain NUL characters."
    if errors:
        raise ValidationFailed(errors)
    return url.strip(), events, description


def register_endpoint(
    url, events, actor: Actor, description: str = "", api_key_id: int | None = None
) -> tuple[Endpoint, str]:
    """A new active endpoint and its secret, which is stored encrypted and never shown again."""
    url, events, description = _clean_endpoint(url, events, description)
    secret = generate_secret()
    endpoint = Endpoint(
        url=url,
        description=description,
        events=events,
        secret_encrypted=crypto.encrypt(secret),
        status=EndpointStatus.ACTIVE,
        api_key_id=api_key_id,
        created_by_id=actor.staff_id,
    )
    db.session.add(endpoint)
    db.session.flush()
    audit.record(
        actor, "webhook_endpoint.created", "webhook_endpoint", endpoint.id, url=url, events=events
    )
    db.session.commit()
    return endpoint, secret


def get_endpoint(endpoint_id: int) -> Endpoint:
    return get_or_not_found(Endpoint, endpoint_id, f"There is no webhook endpoint {endpoint_id}.")


def endpoints_query():
    """Every endpoint, oldest first (a stable order for paging)."""
    return select(Endpoint).order_by(Endpoint.id)


def rotate_secret(endpoint_id: int, actor: Actor) -> tuple[Endpoint, str]:
    """A new secret for the endpoint (returned once); the current one keeps signing beside it for
    the overlap. A secret older than that is dropped."""
    endpoint = get_endpoint(endpoint_id)
    secret = generate_secret()
    until = utcnow() + timedelta(hours=current_app.config["WEBHOOK_SECRET_OVERLAP_HOURS"])
    endpoint.previous_secret_encrypted = endpoint.secret_encrypted
    endpoint.previous_secret_until = until
    endpoint.secret_encrypted = crypto.encrypt(secret)
    audit.record(
        actor,
        "webhook_endpoint.secret_rotated",
        "webhook_endpoint",
        endpoint.id,
        previous_secret_until=until.isoformat(),
    )
    db.session.commit()
    return endpoint, secret


def signing_secrets(endpoint: Endpoint, now=None) -> list[str]:
    """The secrets that sign now: the current one, then the previous one during its overlap."""
    now = now or utcnow()
    found = [crypto.decrypt(endpoint.secret_encrypted)]
    if endpoint.previous_secret_encrypted and (endpoint.previous_secret_until or now) > now:
        found.append(crypto.decrypt(endpoint.previous_secret_encrypted))
    return found


def delete_endpoint(endpoint_id: int, actor: Actor) -> None:
    """The endpoint is gone with its deliveries and their attempts; queued jobs find nothing."""
    endpoint = get_endpoint(endpoint_id)
    deliveries = select(WebhookDelivery.id).where(WebhookDelivery.endpoint_id == endpoint.id)
    db.session.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(deliveries)))
    db.session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id))
    audit.record(
        actor, "webhook_endpoint.deleted", "webhook_endpoint", endpoint.id, url=endpoint.url
    )
    db.session.delete(endpoint)
    db.session.commit()


def mark_disabled(endpoint: Endpoint, actor: Actor, reason: str) -> None:
    """Disable the endpoint and fail its open deliveries, in the caller's transaction."""
    endpoint.status = EndpointStatus.DISABLED
    endpoint.disabled_at = utcnow()
    endpoint.disabled_reason = reason[:300]
    for delivery in endpoint.deliveries.filter(
        WebhookDelivery.status.in_((DeliveryStatus.PENDING, DeliveryStatus.RETRYING))
    ):
        delivery.status = DeliveryStatus.FAILED
        delivery.next_attempt_at = None
        delivery.completed_at = endpoint.disabled_at
        delivery.last_error = "The endpoint was disabled."
    audit.record(actor, "webhook_endpoint.disabled", "webhook_endpoint", endpoint.id, reason=reason)


def disable_endpoint(
    endpoint_id: int, actor: Actor, reason: str = "Disabled by staff."
) -> Endpoint:
    """The endpoint receives nothing until enabled again; its open deliveries fail."""
    endpoint = get_endpoint(endpoint_id)
    if endpoint.status == EndpointStatus.DISABLED:
        raise IllegalTransition("This endpoint is already disabled.")
    mark_disabled(endpoint, actor, reason)
    db.session.commit()
    return endpoint


def enable_endpoint(endpoint_id: int, actor: Actor) -> Endpoint:
    """The endpoint receives events again, with a clean failure record (deliveries failed while it
    was disabled can be redelivered one by one)."""
    endpoint = get_endpoint(endpoint_id)
    if endpoint.status == EndpointStatus.ACTIVE:
        raise IllegalTransition("This endpoint is already active.")
    endpoint.status = EndpointStatus.ACTIVE
    endpoint.disabled_at = endpoint.disabled_reason = endpoint.failing_since = None
    audit.record(actor, "webhook_endpoint.enabled", "webhook_endpoint", endpoint.id)
    db.session.commit()
    return endpoint
