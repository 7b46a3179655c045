"""Webhook endpoints: the list, registration (the secret shown once), disable and enable, secret
rotation, deletion, test events, and each endpoint's deliveries with their attempts."""

from flask import flash, request

from app.auth import current_actor, requires
from app.blueprints.api_admin import bp
from app.blueprints.api_admin.common import Revealed, id_from, page_number, show_once
from app.blueprints.api_admin.forms import WebhookForm
from app.htmx import render_view
from app.jobs.webhooks import schedule_delivery
from app.models import DeliveryStatus
from app.services import webhook_deliveries as deliveries
from app.services import webhooks
from app.services.errors import ValidationFailed
from app.services.pagination import paginate

ENDPOINTS = "#webhooks"
ENDPOINTS_PER_PAGE = 50
DELIVERIES_PER_PAGE = 25


def _endpoints_view(partial: str = "api_admin/_webhooks.html", status: int = 200, /, **context):
    """The webhooks page (or `partial` of it) with one page of endpoints."""
    context.setdefault(
        "endpoints", paginate(webhooks.endpoints_query(), page_number(), ENDPOINTS_PER_PAGE)
    )
    return render_view("api_admin/webhooks.html", partial, status, tab="webhooks", **context)


def _endpoint_id() -> int:
    return id_from(request.form, "endpoint_id", "webhook endpoint")


@bp.get("/webhooks")
@requires("manage_api_keys")
def webhooks_index():
    """Every webhook endpoint with its events, status, failing-since time and creation date."""
    return _endpoints_view()


@bp.route("/webhooks/new", methods=["GET", "POST"])
@requires("manage_api_keys")
def new_webhook():
    """The register-endpoint form; a valid one registers it and shows its secret this once."""
    form = WebhookForm()
    if request.method == "GET":
        return _endpoints_view("api_admin/_webhook_form.html", webhook_form=form)
    try:
        endpoint, secret = webhooks.register_endpoint(
            form.url.data, form.events.data, current_actor(), form.description.data
        )
    except ValidationFailed as exc:
        form.show_errors(exc.errors)
        return _endpoints_view("api_admin/_webhook_form.html", 422, webhook_form=form)
    flash(f"Webhook endpoint {endpoint.url} registered.", "success")
    revealed = Revealed(
        title=f"The signing secret of {endpoint.url}",
        secret=secret,
        label="Webhook signing secret",
        note="The receiver verifies each delivery's webhook-signature header with it "
        "(Standard Webhooks).",
    )
    return show_once(_endpoints_view(revealed=revealed), ENDPOINTS)


@bp.post("/webhooks/disable")
@requires("manage_api_keys")
def disable_webhook():
    """Stop sending to the endpoint; its open deliveries fail (409 if already disabled)."""
    endpoint = webhooks.disable_endpoint(_endpoint_id(), current_actor())
    flash(f"Webhook endpoint {endpoint.url} disabled.", "success")
    return _endpoints_view()


@bp.post("/webhooks/enable")
@requires("manage_api_keys")
def enable_webhook():
    """Send events to the endpoint again, with a clean failure record (409 if already active)."""
    endpoint = webhooks.enable_endpoint(_endpoint_id(), current_actor())
    flash(f"Webhook endpoint {endpoint.url} enabled.", "success")
    return _endpoints_view()


@bp.post("/webhooks/rotate-secret")
@requires("manage_api_keys")
def rotate_webhook_secret():
    """A new signing secret, shown once; the old one keeps signing beside it for the overlap."""
    endpoint, secret = webhooks.rotate_secret(_endpoint_id(), current_actor())
    flash(f"The signing secret of {endpoint.url} was rotated.", "success")
    revealed = Revealed(
        title=f"The new signing secret of {endpoint.url}",
        secret=secret,
        label="Webhook signing secret",
        note="Deliveries carry a signature made with each secret until the old one expires.",
        grace_until=endpoint.previous_secret_until,
    )
    return show_once(_endpoints_view(revealed=revealed), ENDPOINTS)


@bp.post("/webhooks/delete")
@requires("manage_api_keys")
def delete_webhook():
    """Delete the endpoint with its deliveries and their attempts."""
    endpoint_id = _endpoint_id()
    url = webhooks.get_endpoint(endpoint_id).url
    webhooks.delete_endpoint(endpoint_id, current_actor())
    flash(f"Webhook endpoint {url} deleted.", "success")
    return _endpoints_view()


@bp.post("/webhooks/test")
@requires("manage_api_keys")
def test_webhook():
    """Queue a signed `webhook.test` delivery to the endpoint (409 if it is disabled)."""
    delivery = deliveries.send_test_event(_endpoint_id(), current_actor())
    schedule_delivery(delivery.id, delivery.next_attempt_at)
    flash(
        f"A test event was queued for {delivery.endpoint.url}; its delivery is listed under "
        "Deliveries.",
        "success",
    )
    return _endpoints_view()


def _deliveries_view(endpoint, status_filter: str | None, status: int = 200, /, **context):
    """One page of the endpoint's deliveries, newest first, optionally of one status."""
    query = deliveries.deliveries_query(endpoint.id, status_filter)
    return render_view(
        "api_admin/deliveries.html",
        "api_admin/_deliveries.html",
        status,
        tab="webhooks",
        endpoint=endpoint,
        status_filter=status_filter,
        statuses=list(DeliveryStatus),
        results=paginate(query, page_number(), DELIVERIES_PER_PAGE),
        **context,
    )


@bp.get("/webhooks/deliveries")
@requires("manage_api_keys")
def webhook_deliveries():
    """An endpoint's deliveries: status, attempts, last status code and next attempt."""
    endpoint = webhooks.get_endpoint(id_from(request.args, "endpoint_id", "webhook endpoint"))
    return _deliveries_view(endpoint, request.args.get("status") or None)


@bp.get("/webhooks/attempts")
@requires("manage_api_keys")
def delivery_attempts():
    """A delivery's message and every attempt: status, duration, the first 1 KB of the answer."""
    delivery = deliveries.get_delivery(id_from(request.args, "delivery_id", "webhook delivery"))
    return render_view(
        "api_admin/delivery.html", "api_admin/_attempts.html", tab="webhooks", delivery=delivery
    )


@bp.post("/webhooks/redeliver")
@requires("manage_api_keys")
def redeliver():
    """Start a new round of attempts for a finished delivery, now (409 while it is open or its
    endpoint is disabled)."""
    delivery_id = id_from(request.form, "delivery_id", "webhook delivery")
    delivery = deliveries.redeliver(delivery_id, current_actor())
    schedule_delivery(delivery.id, delivery.next_attempt_at)
    flash(f"Delivery {delivery.id} ({delivery.event_type}) queued again.", "success")
    return _deliveries_view(delivery.endpoint, None)
