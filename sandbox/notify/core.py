"""What the notification simulator remembers and how it sends receipts: every message received
(per provider), the failure mode of each provider, the credentials and account-level webhook URLs
in force, and the chain of delivery receipts each message gets, posted through the shared
scheduler after the configured delay or on flush()."""

import itertools
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from sandbox.delivery import DeliveryLog, post_raw
from sandbox.notify import keys
from sandbox.notify.outcomes import FAILURE_MODES
from sandbox.scheduler import Scheduler
from sandbox.settings import parse_delay

CHANNELS = {
    "twilio": "sms",
    "africastalking": "sms",
    "infobip": "sms",
    "sendgrid": "email",
    "mailgun": "email",
    "ses": "email",
}
PROVIDERS = tuple(CHANNELS)
# Providers whose receipts go to a URL set on the account, not named in each request.
ACCOUNT_WEBHOOKS = ("africastalking", "infobip", "sendgrid", "mailgun", "ses")
NAMES = {
    "twilio": "Twilio",
    "africastalking": "Africa's Talking",
    "infobip": "Infobip",
    "sendgrid": "SendGrid",
    "mailgun": "Mailgun",
    "ses": "Amazon SES",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Receipt:
    """One delivery-status event of a message, and what became of its webhook post."""

    status: str  # the provider's own word: sent, Success, DELIVERED_TO_HANDSET, bounce...
    detail: str = ""
    at: str = ""
    url: str | None = None
    delivery_id: int | None = None
    status_code: int | None = None
    error: str = ""
    note: str = ""  # e.g. "not posted: no callback URL"


@dataclass
class Message:
    """One message to one recipient, as the provider accepted (or refused) it."""

    n: int  # the sandbox's serial number (inbox links)
    provider: str
    channel: str
    id: str  # the provider's message id (several recipients may share it: Mailgun, SendGrid)
    to: str
    sender: str = ""
    body: str = ""  # SMS text, or the email's plain text
    subject: str = ""
    html: str | None = None
    status: str = ""  # the provider's latest word
    outcome: str = "delivered"  # what the sandbox will make happen (outcomes.py)
    callback_url: str | None = None
    metadata: dict = field(default_factory=dict)  # the app's ids: custom args, tags, variables
    request: dict = field(default_factory=dict)  # the request fields, for inspection
    encoding: str = ""
    segments: int | None = None
    created_at: datetime = field(default_factory=utcnow)
    receipts: list[Receipt] = field(default_factory=list)
    extra: dict = field(default_factory=dict)  # provider-specific facts for the receipts

    def to_dict(self) -> dict:
        data = asdict(self)
        data["created_at"] = self.created_at.isoformat(timespec="milliseconds")
        return data


@dataclass
class Step:
    """One receipt to send: the provider's status word and what its builder needs."""

    status: str
    detail: str = ""
    fields: dict = field(default_factory=dict)


@dataclass
class Webhook:
    """A receipt as it goes on the wire: exact bytes and headers (signed by the builder)."""

    url: str
    body: object  # the document, for the delivery log (dict, list or str)
    raw: bytes
    headers: dict
    kind: str = "receipt"


Builder = Callable[[Message, Step], Webhook | None]


@dataclass
class Failure:
    mode: str
    times: int | None = None  # requests still to fail; None: until switched off
    seconds: float | None = None  # `slow` only: how long to hold the request

    def to_dict(self) -> dict:
        return asdict(self)


def default_credentials(config: dict) -> dict:
    return {
        "twilio": {
            "account_sid": config["SANDBOX_TWILIO_ACCOUNT_SID"],
            "auth_token": config["SANDBOX_TWILIO_AUTH_TOKEN"],
        },
        "africastalking": {
            "username": config["SANDBOX_AT_USERNAME"],
            "api_key": config["SANDBOX_AT_API_KEY"],
        },
        "infobip": {"api_key": config["SANDBOX_INFOBIP_API_KEY"]},
        "sendgrid": {"api_key": config["SANDBOX_SENDGRID_API_KEY"]},
        "mailgun": {
            "api_key": config["SANDBOX_MAILGUN_API_KEY"],
            "domain": config["SANDBOX_MAILGUN_DOMAINS"][0],
            "domains": list(config["SANDBOX_MAILGUN_DOMAINS"]),
            "webhook_signing_key": config["SANDBOX_MAILGUN_WEBHOOK_SIGNING_KEY"],
        },
        "ses": {
            "access_key_id": config["SANDBOX_SES_ACCESS_KEY_ID"],
            "secret_access_key": config["SANDBOX_SES_SECRET_ACCESS_KEY"],
            "region": config["SANDBOX_SES_REGION"],
        },
    }


def default_webhooks(config: dict) -> dict:
    return {
        "africastalking": config["SANDBOX_AT_CALLBACK_URL"],
        "infobip": config["SANDBOX_INFOBIP_CALLBACK_URL"],
        "sendgrid": config["SANDBOX_SENDGRID_CALLBACK_URL"],
        "mailgun": config["SANDBOX_MAILGUN_CALLBACK_URL"],
        "ses": config["SANDBOX_SES_CALLBACK_URL"],
    }


class NotifySimulator:
    def __init__(self, app, scheduler: Scheduler, deliveries: DeliveryLog):
        self.app = app  # receipt builders run in its context, also on the scheduler's thread
        self.config = app.config
        self.scheduler = scheduler
        self.deliveries = deliveries
        self.keys = keys.load(self.config)
        self.lock = threading.RLock()
        self.generation = 0
        self._wake = threading.Event()
        self.reset()

    # --- control ----------------------------------------------------------------------------
    def reset(self) -> None:
        """Forgets every message, failure mode, credential and webhook change; receipts still
        pending are cancelled and requests held by `slow` are answered at once."""
        with self.lock:
            self.generation += 1
            self.messages: list[Message] = []
            self._by_key: dict[str, Message] = {}  # serial number and provider id -> message
            self._serial = itertools.count(1)
            self.failures: dict[str, Failure] = {}
            self.credentials = default_credentials(self.config)
            self.webhooks = default_webhooks(self.config)
            self.settings = {
                "delay": self.config["SANDBOX_CALLBACK_DELAY"],
                "duplicate_receipts": False,
                "sns_url": self.config["SANDBOX_SES_SNS_URL"],
                "sns_signature_version": self.config["SANDBOX_SES_SNS_SIGNATURE_VERSION"],
            }
            self.sns_requests: list[dict] = []  # SubscribeURL / UnsubscribeURL visits
            self.sns_tokens: dict[str, str] = {}  # confirmation token -> endpoint
            wake, self._wake = self._wake, threading.Event()
        wake.set()

    def set_settings(self, changes: dict) -> dict:
        """Validates and applies `delay`, `duplicate_receipts`, `sns_url`,
        `sns_signature_version` all at once (ValueError names a bad one)."""
        updated = self.current_settings()
        for key, value in changes.items():
            if key not in updated:
                raise ValueError(f"unknown setting {key!r}")
            if key == "delay":
                value = parse_delay(value)
            elif key == "duplicate_receipts" and not isinstance(value, bool):
                raise ValueError("duplicate_receipts must be true or false")
            elif key == "sns_url":
                value = (str(value).strip().rstrip("/") or None) if value is not None else None
                if value and not value.startswith(("http://", "https://")):
                    raise ValueError("sns_url must be an http(s) URL")
            elif key == "sns_signature_version" and str(value) not in ("1", "2"):
                raise ValueError("sns_signature_version must be 1 or 2")
            updated[key] = str(value) if key == "sns_signature_version" else value
        with self.lock:
            self.settings = updated
        return dict(updated)

    def current_settings(self) -> dict:
        with self.lock:
            return dict(self.settings)

    def set_credentials(self, provider: str, changes: dict) -> dict:
        """Changes some of a provider's credentials (to test a rotated or wrong key)."""
        with self.lock:
            current = dict(self.credentials[provider])
            for key, value in changes.items():
                if key not in current:
                    raise ValueError(f"{provider} has no credential {key!r}")
                if key == "domains":
                    if not isinstance(value, list) or not value:
                        raise ValueError("domains must be a non-empty list")
                    current["domains"] = [str(v) for v in value]
                    current["domain"] = current["domains"][0]
                elif not isinstance(value, str) or not value:
                    raise ValueError(f"{key} must be a non-empty string")
                else:
                    current[key] = value
            if provider == "mailgun" and current["domain"] not in current["domains"]:
                current["domains"] = [current["domain"], *current["domains"]]
            self.credentials[provider] = current
            return dict(current)

    def credentials_of(self, provider: str) -> dict:
        with self.lock:
            return dict(self.credentials[provider])

    def set_webhook(self, provider: str, url: str | None) -> None:
        if provider not in ACCOUNT_WEBHOOKS:
            raise ValueError(f"{provider} takes its callback URL in each request")
        with self.lock:
            self.webhooks[provider] = url or None

    def webhook(self, provider: str) -> str | None:
        with self.lock:
            return self.webhooks.get(provider)

    def set_failure(self, provider: str, mode: str | None, times=None, seconds=None) -> dict:
        """Switches a failure mode on (or off with None/"none") for the provider's next `times`
        requests (all of them when None); `seconds` is how long `slow` holds a request."""
        if mode in (None, "", "none", "off"):
            with self.lock:
                self.failures.pop(provider, None)
            return {"mode": None}
        if mode not in FAILURE_MODES:
            raise ValueError(f"mode must be one of {', '.join(FAILURE_MODES)} or none")
        if times is not None and (isinstance(times, bool) or int(times) < 1):
            raise ValueError("times must be a whole number, at least 1")
        if seconds is not None and float(seconds) < 0:
            raise ValueError("seconds cannot be negative")
        failure = Failure(
            mode,
            int(times) if times is not None else None,
            float(seconds) if seconds is not None else None,
        )
        with self.lock:
            self.failures[provider] = failure
        return failure.to_dict()

    def failure(self, provider: str) -> Failure | None:
        with self.lock:
            return self.failures.get(provider)

    def begin_request(self, provider: str) -> Failure | None:
        """The failure mode that applies to this send request (counting it against `times`)."""
        with self.lock:
            failure = self.failures.get(provider)
            if failure is None:
                return None
            if failure.times is not None:
                failure.times -= 1
                if failure.times <= 0:
                    self.failures.pop(provider)
            return Failure(failure.mode, None, failure.seconds)

    def hold(self, seconds: float | None) -> None:
        """Holds a request (the `slow` mode); a reset releases it at once."""
        with self.lock:
            wake = self._wake
        wake.wait(self.config["SANDBOX_NOTIFY_SLOW_SECONDS"] if seconds is None else seconds)

    # --- messages ---------------------------------------------------------------------------
    def add(self, **fields) -> Message:
        with self.lock:
            channel = CHANNELS[fields["provider"]]
            message = Message(n=next(self._serial), channel=channel, **fields)
            self.messages.append(message)
            self._by_key[str(message.n)] = message
            self._by_key.setdefault(message.id, message)  # shared ids: the first recipient
            return message

    def messages_for(self, provider: str | None = None, to: str | None = None) -> list[Message]:
        with self.lock:
            return [
                m
                for m in self.messages
                if (provider is None or m.provider == provider) and (to is None or m.to == to)
            ]

    def find(self, key: str) -> Message | None:
        """A message by the sandbox's serial number or the provider's message id."""
        with self.lock:
            return self._by_key.get(key)

    # --- receipts ---------------------------------------------------------------------------
    def start_receipts(self, message: Message, steps: list[Step], build: Builder) -> None:
        """Sends the message's receipts one after the other, each after the delay (or on
        flush); a reset cancels those not yet sent."""
        if steps:
            self._later(self._receipt_job(message, steps, 0, build, self.generation))

    def _later(self, job) -> None:
        self.scheduler.schedule(job, self.current_settings()["delay"])

    def _receipt_job(self, message: Message, steps: list[Step], index: int, build, generation):
        def job() -> list:
            if generation != self.generation:
                return []
            step = steps[index]
            receipt = Receipt(step.status, step.detail, utcnow().isoformat(timespec="seconds"))
            with self.lock:
                message.status = step.status
                message.receipts.append(receipt)
            with self.app.app_context():
                webhook = build(message, step)
            sent = []
            if webhook is None:
                receipt.note = "not posted: no callback URL"
            else:
                sent = self._post(message, step, webhook, receipt)
            if index + 1 < len(steps):
                self._later(self._receipt_job(message, steps, index + 1, build, generation))
            return sent

        return job

    def _post(self, message: Message, step: Step, webhook: Webhook, receipt: Receipt) -> list:
        copies = 2 if self.current_settings()["duplicate_receipts"] else 1
        sent = []
        for copy in range(1, copies + 1):
            delivery = self.deliveries.new(
                provider=message.provider,
                kind=webhook.kind,
                url=webhook.url,
                body=webhook.body,
                reference=message.id,
                copy=copy,
                headers=dict(webhook.headers),
                raw=webhook.raw.decode(),
                meta={"status": step.status, "message": message.n, "to": message.to},
            )
            sent.append(post_raw(delivery, webhook.raw, self.config["SANDBOX_CALLBACK_TIMEOUT"]))
        last = sent[-1]
        receipt.url, receipt.delivery_id = last.url, last.id
        receipt.status_code, receipt.error = last.status_code, last.error
        return sent

    def post_now(self, provider: str, webhook: Webhook, reference: str = "") -> dict:
        """Posts one webhook at once (an SNS subscription confirmation) and returns its record."""
        delivery = self.deliveries.new(
            provider=provider,
            kind=webhook.kind,
            url=webhook.url,
            body=webhook.body,
            reference=reference,
            headers=dict(webhook.headers),
            raw=webhook.raw.decode(),
        )
        return post_raw(delivery, webhook.raw, self.config["SANDBOX_CALLBACK_TIMEOUT"]).to_dict()
