"""The notification part of the JSON control API (`/sandbox/api/notify/...`), for tests and
demos: messages received, failure modes, credentials, webhook URLs, keys, settings, flush and
reset."""

from flask import Blueprint, current_app, jsonify, request

from sandbox.notify import sns
from sandbox.notify.common import sandbox_base_url, simulator
from sandbox.notify.core import ACCOUNT_WEBHOOKS, CHANNELS, NAMES, PROVIDERS
from sandbox.notify.outcomes import valid_url

control = Blueprint("notify_control", __name__, url_prefix="/sandbox/api/notify")


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message, self.status = message, status


@control.errorhandler(BadRequest)
def bad_request(exc: BadRequest):
    return jsonify({"error": exc.message}), exc.status


def json_body() -> dict:
    body = request.get_json(silent=True)
    if body is None and not request.get_data():
        return {}
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def known(provider: str) -> str:
    if provider not in PROVIDERS:
        raise BadRequest(f"unknown provider {provider!r}; known: {', '.join(PROVIDERS)}", 404)
    return provider


def keys_document() -> dict:
    """Everything a test needs to verify the sandbox's signatures."""
    sim = simulator()
    return {
        "twilio_auth_token": sim.credentials_of("twilio")["auth_token"],
        "sendgrid_public_key": sim.keys.sendgrid_public_key,
        "sendgrid_public_key_pem": sim.keys.sendgrid_public_key_pem,
        "mailgun_webhook_signing_key": sim.credentials_of("mailgun")["webhook_signing_key"],
        "sns_certificate_pem": sim.keys.sns_certificate_pem,
        "sns_certificate_url": sns.certificate_url(sandbox_base_url()),
        "sns_topic_arn": sns.topic_arn(),
    }


def provider_document(provider: str) -> dict:
    sim = simulator()
    failure = sim.failure(provider)
    return {
        "name": NAMES[provider],
        "channel": CHANNELS[provider],
        "base_url": sandbox_base_url(),
        "credentials": sim.credentials_of(provider),
        "webhook": sim.webhook(provider) if provider in ACCOUNT_WEBHOOKS else None,
        "failure": failure.to_dict() if failure else None,
        "messages": len(sim.messages_for(provider)),
    }


@control.get("/")
def overview():
    """Each provider's credentials, webhook URL and failure mode; settings; keys."""
    return jsonify(
        {
            "providers": {p: provider_document(p) for p in PROVIDERS},
            "settings": simulator().current_settings(),
            "keys": keys_document(),
        }
    )


@control.get("/messages")
def messages():
    """Every message received, oldest first; `?provider=twilio&to=+2547...`."""
    provider = request.args.get("provider") or None
    if provider:
        known(provider)
    items = simulator().messages_for(provider, request.args.get("to") or None)
    return jsonify([m.to_dict() for m in items])


@control.get("/messages/<key>")
def message(key: str):
    """One message by the sandbox's number or the provider's message id."""
    found = simulator().find(key)
    if found is None:
        raise BadRequest(f"no message {key}", 404)
    return jsonify(found.to_dict())


@control.get("/<provider>/messages")
def provider_messages(provider: str):
    return jsonify([m.to_dict() for m in simulator().messages_for(known(provider))])


@control.route("/<provider>/failure", methods=["GET", "POST"])
def failure(provider: str):
    """Reads, or sets (`{"mode": "500"|..|null, "times"?: N, "seconds"?: S}`), the failure
    mode of a provider."""
    known(provider)
    if request.method == "POST":
        body = json_body()
        unknown = set(body) - {"mode", "times", "seconds"}
        if unknown:
            raise BadRequest(f"unknown field(s): {', '.join(sorted(unknown))}")
        try:
            simulator().set_failure(
                provider, body.get("mode"), body.get("times"), body.get("seconds")
            )
        except (TypeError, ValueError) as exc:
            raise BadRequest(str(exc)) from None
    current = simulator().failure(provider)
    return jsonify(current.to_dict() if current else {"mode": None})


@control.route("/<provider>/credentials", methods=["GET", "POST"])
def credentials(provider: str):
    """Reads, or changes some of (POST a JSON object), a provider's credentials."""
    known(provider)
    if request.method == "POST":
        try:
            return jsonify(simulator().set_credentials(provider, json_body()))
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
    return jsonify(simulator().credentials_of(provider))


@control.route("/<provider>/webhook", methods=["GET", "POST"])
def webhook(provider: str):
    """The account-level callback URL (`{"url": "http://..."}`, null to clear) of Africa's
    Talking, Infobip, SendGrid, Mailgun and SES (the SNS subscription)."""
    known(provider)
    if provider not in ACCOUNT_WEBHOOKS:
        raise BadRequest(f"{provider} takes its callback URL in each request (StatusCallback)")
    if request.method == "POST":
        url = json_body().get("url")
        if url is not None and (not isinstance(url, str) or not valid_url(url)):
            raise BadRequest("url must be an absolute http(s) URL or null")
        simulator().set_webhook(provider, url)
    return jsonify({"url": simulator().webhook(provider)})


@control.route("/settings", methods=["GET", "POST"])
def settings():
    """Reads, or changes, `delay` (seconds, null = hold until flush), `duplicate_receipts`,
    `sns_url` and `sns_signature_version`."""
    if request.method == "POST":
        try:
            return jsonify(simulator().set_settings(json_body()))
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
    return jsonify(simulator().current_settings())


@control.get("/keys")
def keys():
    """Twilio auth token, SendGrid public key, Mailgun signing key, SNS certificate and URL."""
    return jsonify(keys_document())


@control.post("/ses/subscribe")
def ses_subscribe():
    """Posts a signed SNS SubscriptionConfirmation now to `{"url"}` (default: the SES webhook);
    the app confirms by visiting its SubscribeURL."""
    url = json_body().get("url") or simulator().webhook("ses")
    if not url or not valid_url(url):
        raise BadRequest('no SES webhook URL: give {"url"} or set /ses/webhook first')
    return jsonify(sns.send_subscription_confirmation(url))


@control.get("/ses/subscriptions")
def ses_subscriptions():
    """Visits to SubscribeURL and UnsubscribeURL, oldest first."""
    sim = simulator()
    with sim.lock:
        return jsonify(list(sim.sns_requests))


@control.post("/flush")
def flush():
    """Sends every pending receipt now (the shared flush: Daraja callbacks go too)."""
    delivered = current_app.extensions["sandbox_scheduler"].flush()
    return jsonify({"delivered": [d.to_dict() for d in delivered]})


@control.post("/reset")
def reset():
    """Forgets the notification providers' state only; pending receipts are cancelled."""
    simulator().reset()
    return jsonify({"reset": True})
