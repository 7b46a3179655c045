"""Pages a person uses: the inbox (every SMS per phone, like a phone's inbox; every email, like
a mail client, with each message's receipts) and the providers page (credentials, webhook URLs,
failure modes). Plain server-rendered HTML with POST forms; no JavaScript."""

import json

from flask import Blueprint, abort, redirect, render_template, request, url_for

from sandbox.notify.common import sandbox_base_url, simulator
from sandbox.notify.control import keys_document
from sandbox.notify.core import ACCOUNT_WEBHOOKS, NAMES, PROVIDERS
from sandbox.notify.outcomes import (
    EMAIL_DOMAIN,
    EMAIL_RESERVED,
    FAILURE_MODES,
    SMS_RESERVED,
    digits,
    valid_url,
)

pages = Blueprint("notify_pages", __name__, url_prefix="/sandbox")

# The inbox shows mail bodies sent by the app: nothing in it may run scripts (the HTML itself
# is shown in a sandboxed iframe, which inherits this policy too).
CSP = "default-src 'self'; script-src 'none'; object-src 'none'; img-src 'self' data:; style-src 'self' 'unsafe-inline'"


@pages.after_request
def no_scripts(response):
    if request.endpoint and request.endpoint.startswith("notify_pages.inbox"):
        response.headers["Content-Security-Policy"] = CSP
    return response


@pages.get("/inbox")
def inbox():
    """SMS grouped by phone number (newest first) and emails like a mail client's list;
    `?provider=`, `?phone=`, `?email=` narrow it. Reloads every 5 seconds."""
    provider = request.args.get("provider", "").strip()
    phone = digits(request.args.get("phone", ""))
    email = request.args.get("email", "").strip().lower()
    messages = [
        m for m in reversed(simulator().messages_for()) if not provider or m.provider == provider
    ]
    phones: dict[str, list] = {}
    for m in messages:
        if m.channel == "sms" and (not phone or digits(m.to) == phone):
            phones.setdefault(digits(m.to), []).append(m)
    emails = [m for m in messages if m.channel == "email" and (not email or m.to.lower() == email)]
    return render_template(
        "notify/inbox.html",
        phones=phones,
        emails=emails,
        provider=provider,
        phone=phone,
        email=email,
        providers=PROVIDERS,
        names=NAMES,
    )


@pages.get("/inbox/<int:n>")
def inbox_message(n: int):
    """One message: headers, text, the HTML rendered in a sandboxed iframe, metadata, receipts
    and the request as received."""
    message = simulator().find(str(n))
    if message is None:
        abort(404)
    # Plain JSON text, escaped by the template like any other text (tojson's \u003c is unreadable).
    request_text = json.dumps(message.request, indent=2, ensure_ascii=False, default=str)
    return render_template("notify/message.html", m=message, names=NAMES, request_text=request_text)


@pages.get("/notify")
def providers_page():
    """Credentials, webhook URLs and failure modes of the six providers; reserved recipients."""
    sim = simulator()
    return render_template(
        "notify/providers.html",
        providers=PROVIDERS,
        names=NAMES,
        account_webhooks=ACCOUNT_WEBHOOKS,
        credentials={p: sim.credentials_of(p) for p in PROVIDERS},
        webhooks={p: sim.webhook(p) for p in ACCOUNT_WEBHOOKS},
        failures={p: sim.failure(p) for p in PROVIDERS},
        counts={p: len(sim.messages_for(p)) for p in PROVIDERS},
        modes=FAILURE_MODES,
        settings=sim.current_settings(),
        keys=keys_document(),
        base_url=sandbox_base_url(),
        sms_reserved=SMS_RESERVED,
        email_reserved=EMAIL_RESERVED,
        email_domain=EMAIL_DOMAIN,
        message=request.args.get("message", ""),
    )


def known(provider: str) -> str:
    if provider not in PROVIDERS:
        abort(404)
    return provider


@pages.post("/notify/<provider>/failure")
def set_failure(provider: str):
    """The failure-mode form of one provider."""
    form = request.form
    try:
        simulator().set_failure(
            known(provider),
            form.get("mode") or None,
            form.get("times") or None,
            form.get("seconds") or None,
        )
        message = f"{NAMES[provider]}: failure mode {form.get('mode') or 'none'}"
    except (TypeError, ValueError) as exc:
        message = f"{NAMES[provider]}: {exc}"
    return redirect(url_for(".providers_page", message=message))


@pages.post("/notify/<provider>/webhook")
def set_webhook(provider: str):
    """The callback-URL form of a provider with an account-level webhook."""
    url = request.form.get("url", "").strip()
    if known(provider) not in ACCOUNT_WEBHOOKS or (url and not valid_url(url)):
        return redirect(url_for(".providers_page", message=f"{NAMES[provider]}: invalid URL"))
    simulator().set_webhook(provider, url or None)
    return redirect(url_for(".providers_page", message=f"{NAMES[provider]}: webhook saved"))


@pages.post("/notify/settings")
def set_settings():
    """The receipt delay and duplicate switch."""
    try:
        simulator().set_settings(
            {
                "delay": request.form.get("delay", ""),
                "duplicate_receipts": "duplicate_receipts" in request.form,
            }
        )
        message = "settings saved"
    except ValueError as exc:
        message = str(exc)
    return redirect(url_for(".providers_page", message=message))


def index_context() -> dict:
    """What the sandbox index page shows about the notification providers."""
    sim = simulator()
    return {
        "notify_names": NAMES,
        "notify_counts": {p: len(sim.messages_for(p)) for p in PROVIDERS},
        "notify_failures": {p: sim.failure(p) for p in PROVIDERS},
    }
