"""The provider clients the gateway may use, built from the settings in force, and the message
each is given (our id as its reference; the delivery-report URL where the provider takes one)."""

import logging

import requests

from app.integrations.notify import africastalking, infobip, mailgun, sendgrid, ses, twilio
from app.integrations.notify.base import EmailMessage, SmsMessage
from app.models import Channel, Notification
from app.services.mpesa import config as mpesa_config
from app.services.notifications import circuit, config

log = logging.getLogger(__name__)

# name -> (config class, client class, the settings without which it is not configured)
CLIENTS = {
    "twilio": (twilio.TwilioConfig, twilio.TwilioSms, ("account_sid", "auth_token", "from_number")),
    "africastalking": (
        africastalking.AfricasTalkingConfig,
        africastalking.AfricasTalkingSms,
        ("username", "api_key"),
    ),
    "infobip": (infobip.InfobipConfig, infobip.InfobipSms, ("base_url", "api_key")),
    "sendgrid": (sendgrid.SendGridConfig, sendgrid.SendGridClient, ("api_key", "from_address")),
    "mailgun": (
        mailgun.MailgunConfig,
        mailgun.MailgunClient,
        ("api_key", "domain", "from_address"),
    ),
    "ses": (
        ses.SesConfig,
        ses.SesClient,
        ("access_key_id", "secret_access_key", "region", "from_address"),
    ),
}
# Settings of ours that are not the client's: webhook verification material.
NOT_CLIENT_FIELDS = {
    "callback_secret",
    "webhook_public_key",
    "webhook_signing_key",
    "sns_topic_arns",
}


# One HTTP session per provider and process, so that a worker sending one message after the
# other keeps its connection to the provider open (credentials go on each request, never on the
# session). A forked work horse starts with none and makes its own.
_sessions: dict[str, requests.Session] = {}


def client_for(name: str):
    """The provider's client, or None when it is not configured (or its settings are unusable,
    which is logged)."""
    if name not in CLIENTS:
        return None
    config_class, client_class, required = CLIENTS[name]
    values = {k: v for k, v in config.provider_values(name).items() if k not in NOT_CLIENT_FIELDS}
    if not all(values.get(field) for field in required):
        return None
    try:
        client = client_class(config_class(**values), session=_sessions.get(name))
    except (TypeError, ValueError) as exc:
        log.warning("%s settings cannot be used: %s", name, exc)
        return None
    _sessions.setdefault(name, client.session)
    return client


def callback_url(provider: str) -> str | None:
    """Where `provider` posts its delivery reports, on our public address (None while unset).
    Providers that do not sign get the secret path segment in it."""
    base = mpesa_config.current().public_base_url.rstrip("/")
    if not base:
        return None
    secret = config.provider_values(provider).get("callback_secret")
    tail = f"{secret}/status" if secret else "status"
    return f"{base}/callbacks/notify/{provider}/{tail}"


def message_for(row: Notification, status_callback_url: str | None):
    if row.channel == Channel.SMS:
        return SmsMessage(
            to=row.recipient_contact,
            body=row.message,
            reference=str(row.id),
            status_callback_url=status_callback_url,
        )
    return EmailMessage(
        to=row.recipient_contact,
        subject=row.subject or "",
        text=row.message,
        html=row.html_message,
        reference=str(row.id),
        status_callback_url=status_callback_url,
    )


class ForBatch:
    """What one batch of sends knows about the providers, each looked up once: the clients and
    delivery-report URLs (building them reads the settings, decrypting every secret) and the
    circuit breakers (a Redis round trip each): a provider's breaker is read at its first use in
    the batch and again after it fails; a success is recorded once while it keeps succeeding."""

    def __init__(self) -> None:
        self._clients: dict = {}
        self._urls: dict[str, str | None] = {}
        self._open: dict[str, bool] = {}
        self._closed: set[str] = set()  # providers whose success this batch has recorded

    def client(self, name: str):
        if name not in self._clients:
            self._clients[name] = client_for(name)
        return self._clients[name]

    def message(self, row: Notification, name: str):
        if name not in self._urls:
            self._urls[name] = callback_url(name)
        return message_for(row, self._urls[name])

    def cooling_off(self, name: str) -> bool:
        if name not in self._open:
            self._open[name] = circuit.is_open(name)
        return self._open[name]

    def succeeded(self, name: str) -> None:
        if name not in self._closed:
            circuit.record_success(name)
            self._closed.add(name)

    def failed(self, name: str, threshold: int, window: int, cooling_off: int) -> bool:
        """Count the failure; True when it opened the provider's circuit."""
        self._closed.discard(name)
        self._open.pop(name, None)  # read again at the next use
        return circuit.record_failure(name, threshold, window, cooling_off)
