"""Twilio SendGrid email over its v3 Mail Send API, and its signed Event Webhook.

A plain client (DESIGN.md convention 7). Wire formats: ../shared/reference/notify.md §5.
- send: `POST {base}/v3/mail/send`, `Authorization: Bearer <key>`, JSON; 202 (200 in sandbox
  mode) with no body, the message id in the `X-Message-Id` header. Our notification id rides in
  the personalization's `custom_args`, which SendGrid copies into every event.
- errors `{"errors":[{"field","message"}]}`: 429/5xx transient; 401/403/404/406/413/451 ours to
  fix (provider fault), except 403 "temporary block" (transient); 400 is the recipient's only
  when the error names a recipient address field.
- webhook: ECDSA P-256 / SHA-256 over `timestamp + raw body`, verified with the account's public
  key (§5.4), plus a max-age window on the signed timestamp (SendGrid has none of its own).
"""

import base64
import binascii
import json
import re
import time
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any

import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from .base import (
    DeliveryReceipt,
    DeliveryStatus,
    EmailMessage,
    Outcome,
    SendResult,
    WebhookRejected,
)
from .email_common import (
    REFERENCE_KEY,
    exchange,
    generic_outcome,
    is_epoch_seconds,
    json_or_none,
    masked_repr,
    result_from_response,
    timestamp_to_datetime,
)
from .session import USER_AGENT, ProviderSession

PROVIDER = "sendgrid"
DEFAULT_BASE_URL = "https://api.sendgrid.com"
SEND_PATH = "/v3/mail/send"
SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
DEFAULT_MAX_AGE = 300  # seconds; notify.md §5.4 recommends about five minutes
# A 400 naming one of these fields is about the recipient, e.g. "personalizations.0.to.0.email".
RECIPIENT_FIELD = re.compile(r"^personalizations(\.\d+)?\.(to|cc|bcc)\b")


@dataclass(frozen=True, repr=False)
class SendGridConfig:
    api_key: str
    from_address: str  # "no-reply@example.org" or "Daystar SACCO <no-reply@example.org>"
    base_url: str = DEFAULT_BASE_URL
    sandbox_mode: bool = False  # mail_settings.sandbox_mode: validated, never delivered
    connect_timeout: float = 5.0
    read_timeout: float = 20.0

    def __post_init__(self) -> None:
        if not self.api_key:
            raise ValueError("SendGrid needs an API key.")
        if not parseaddr(self.from_address)[1]:
            raise ValueError("SendGrid needs a from address.")
        if min(self.connect_timeout, self.read_timeout) <= 0:
            raise ValueError("Timeouts must be positive.")

    @property
    def send_url(self) -> str:
        return self.base_url.rstrip("/") + SEND_PATH

    def __repr__(self) -> str:
        return masked_repr(self, {"api_key": 3})


def _address(value: str) -> dict[str, str]:
    name, email = parseaddr(value)
    return {"email": email, "name": name} if name else {"email": email}


class SendGridClient:
    """Sends one email per call; `send` never raises for SendGrid's answer or the network."""

    provider = PROVIDER

    def __init__(self, config: SendGridConfig, session: requests.Session | None = None):
        self.config = config
        self.session = session or ProviderSession()

    def request_body(self, message: EmailMessage) -> dict[str, Any]:
        """The exact Mail Send JSON for `message` (text/plain must precede text/html)."""
        content = [{"type": "text/plain", "value": message.text}]
        if message.html:
            content.append({"type": "text/html", "value": message.html})
        body: dict[str, Any] = {
            "personalizations": [
                {
                    "to": [_address(message.to)],
                    # SendGrid requires custom_args values to be strings (notify.md §5.1).
                    "custom_args": {REFERENCE_KEY: str(message.reference)},
                }
            ],
            "from": _address(message.from_address or self.config.from_address),
            "subject": message.subject,
            "content": content,
        }
        if self.config.sandbox_mode:
            body["mail_settings"] = {"sandbox_mode": {"enable": True}}
        return body

    def send(self, message: EmailMessage) -> SendResult:
        """Posts the message once; every answer and network failure becomes a `SendResult`."""
        answer = exchange(
            PROVIDER,
            lambda: self.session.post(
                self.config.send_url,
                json=self.request_body(message),
                headers={
                    "Authorization": f"Bearer {self.config.api_key}",
                    "Accept": "application/json",
                    "User-Agent": USER_AGENT,
                },
                timeout=(self.config.connect_timeout, self.config.read_timeout),
                allow_redirects=False,
            ),
            self.config.read_timeout,
        )
        if isinstance(answer, SendResult):
            return answer
        return classify_response(answer)


def _error_messages(body: Any) -> list[dict]:
    errors = body.get("errors") if isinstance(body, dict) else None
    return [error for error in errors or [] if isinstance(error, dict)]


def classify_response(response: requests.Response) -> SendResult:
    """SendGrid's answer to a Mail Send as one of the four outcomes (notify.md §5.1-5.2)."""
    status = response.status_code
    if status in (200, 202):
        return result_from_response(
            PROVIDER,
            response,
            Outcome.ACCEPTED,
            "Sandbox mode: validated, not sent." if status == 200 else "Accepted.",
            response.headers.get("X-Message-Id") or None,
        )
    errors = _error_messages(json_or_none(response))
    text = (
        "; ".join(
            f"{error.get('field')}: {error.get('message')}"
            if error.get("field")
            else str(error.get("message"))
            for error in errors
        )
        or f"HTTP {status}"
    )
    if status == 403 and "temporary block" in text.lower():
        outcome = Outcome.TRANSIENT  # "Too many bad requests. Temporary block" (§5.2)
    elif status == 400:
        about_recipient = any(RECIPIENT_FIELD.match(str(e.get("field") or "")) for e in errors)
        outcome = Outcome.PERMANENT if about_recipient else Outcome.PROVIDER_FAULT
    else:
        # 401/403/404 and the other 4xx (406 Accept, 413 too large, 451 data residency) are
        # for us to fix or another provider to carry; 429/5xx transient.
        outcome = generic_outcome(status) or Outcome.PROVIDER_FAULT
    return result_from_response(PROVIDER, response, outcome, text)


# --- webhook ----------------------------------------------------------------------------------


def verify_signature(
    public_key_base64: str,
    signature_b64: str,
    timestamp: str,
    raw_body: bytes,
    *,
    max_age: int = DEFAULT_MAX_AGE,
    now: float | None = None,
) -> None:
    """Returns only when `signature_b64` is SendGrid's ECDSA signature of `timestamp + raw_body`
    under the account's public key and the timestamp is within `max_age` seconds of now;
    raises WebhookRejected otherwise. `raw_body` must be the bytes as received."""
    if not (public_key_base64 and signature_b64 and timestamp) or not isinstance(raw_body, bytes):
        raise WebhookRejected("SendGrid signature, timestamp or body missing.")
    if not is_epoch_seconds(timestamp):
        raise WebhookRejected("SendGrid timestamp is not a number.")
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > max_age:
        raise WebhookRejected("SendGrid timestamp outside the accepted window.")
    try:
        key = load_der_public_key(base64.b64decode(public_key_base64, validate=True))
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WebhookRejected("SendGrid key or signature is not valid base64 DER.") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise WebhookRejected("The SendGrid verification key is not a P-256 public key.")
    try:
        key.verify(signature, timestamp.encode() + raw_body, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise WebhookRejected("SendGrid signature does not match.") from exc


# event -> (status, permanent); dropped and bounce are refined by their reason/type below.
EVENT_STATUS: dict[str, tuple[DeliveryStatus, bool]] = {
    "processed": (DeliveryStatus.QUEUED, False),
    "delivered": (DeliveryStatus.DELIVERED, False),
    "deferred": (DeliveryStatus.FAILED, False),  # soft: SendGrid keeps trying
    "bounce": (DeliveryStatus.BOUNCED, True),
    "dropped": (DeliveryStatus.UNDELIVERED, False),
    "spamreport": (DeliveryStatus.COMPLAINED, True),
    "unsubscribe": (DeliveryStatus.UNSUBSCRIBED, True),
    "group_unsubscribe": (DeliveryStatus.UNSUBSCRIBED, True),
}
# Drop reasons that say the address itself must not be mailed again (ANYMAIL's reject reasons).
PERMANENT_DROP_REASONS = (
    "bounced address",
    "unsubscribed address",
    "spam reporting address",
    "invalid",
)


def message_id_of(event: dict) -> str | None:
    """The X-Message-Id of the send: `sg_message_id` up to its `.filter`/`.recvd` suffix."""
    value = str(event.get("sg_message_id") or "")
    if not value:
        return None
    match = re.match(r"^(.+?)\.(filter|recvd)", value)
    if match:
        return match.group(1)
    smtp_id = str(event.get("smtp-id") or "").strip("<>").split("@", 1)[0]
    if smtp_id and value.startswith(smtp_id):
        return smtp_id
    return value.split(".", 1)[0]


def _receipt(event: dict) -> DeliveryReceipt | None:
    kind = event.get("event")
    if kind not in EVENT_STATUS:
        return None  # open, click, group_resubscribe: engagement, not delivery
    status, permanent = EVENT_STATUS[kind]
    reason = str(event.get("reason") or event.get("response") or "")
    if kind == "bounce" and event.get("type") in ("blocked", "expired"):
        # A block or an expiry is the message's fate, not proof the address is bad.
        status, permanent = DeliveryStatus.UNDELIVERED, False
    if kind == "dropped":
        permanent = reason.lower().startswith(PERMANENT_DROP_REASONS)
    reference = event.get(REFERENCE_KEY)
    return DeliveryReceipt(
        provider=PROVIDER,
        status=status,
        provider_message_id=message_id_of(event),
        reference=str(reference) if reference is not None else None,
        recipient=event.get("email"),
        occurred_at=timestamp_to_datetime(event.get("timestamp")),
        detail=reason,
        error_code=str(event["status"]) if event.get("status") else None,
        permanent=permanent,
        raw=event,
        event_id=event.get("sg_event_id"),
    )


def parse_receipts(body: bytes | str | list) -> list[DeliveryReceipt]:
    """The delivery events of an Event Webhook POST (a JSON array), normalised; engagement
    events (open, click) are left out. Raises ValueError for a body that is not an array."""
    events = json.loads(body) if isinstance(body, bytes | str) else body
    if not isinstance(events, list):
        raise ValueError("A SendGrid event webhook body is a JSON array.")
    receipts = (_receipt(event) for event in events if isinstance(event, dict))
    return [receipt for receipt in receipts if receipt is not None]
