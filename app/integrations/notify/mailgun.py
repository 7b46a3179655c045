"""Mailgun email over its Messages API, and its signed webhooks.

A plain client (DESIGN.md convention 7). Wire formats: ../shared/reference/notify.md §6.
- send: `POST {base}/v3/{domain}/messages` (US `api.mailgun.net`, EU `api.eu.mailgun.net`),
  HTTP Basic `api:<key>`, multipart/form-data; 200 `{"message": "Queued. Thank you.", "id":
  "<...>"}`. Our notification id rides as the custom variable `v:notify_id`, which events
  return in `user-variables`. Message ids are kept without their angle brackets, in the send
  result and in receipts alike.
- errors `{"message": "..."}`: 429/5xx transient; 401/402/403/404 (wrong key, plan, region or
  domain)/413 ours (provider fault); 400 is the recipient's when it says the address is invalid,
  ours otherwise (missing field, sandbox domain "not allowed to send").
- webhook: hex HMAC-SHA256 of `timestamp + token` under the webhook signing key (not the API key),
  a time window, and one-time tokens (§6.4): the signature does not cover `event-data`, so a
  replayed token is the attack to stop.
"""

import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass
from typing import Any

import requests
from redis import Redis

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
    UsedTokens,
    constant_time_equal,
    exchange,
    generic_outcome,
    is_epoch_seconds,
    json_or_none,
    masked_repr,
    result_from_response,
    timestamp_to_datetime,
    used_tokens_from,
)
from .session import USER_AGENT, ProviderSession

PROVIDER = "mailgun"
REGIONS = {"us": "https://api.mailgun.net", "eu": "https://api.eu.mailgun.net"}
DEFAULT_MAX_AGE = 300  # seconds (MG-PY's max_age_seconds, notify.md §6.4)
# 400 answers about the address itself ("to parameter is not a valid address", ...).
INVALID_RECIPIENT = re.compile(r"(not a valid (e-?mail )?address|invalid (e-?mail )?address)", re.I)


@dataclass(frozen=True, repr=False)
class MailgunConfig:
    api_key: str
    domain: str
    from_address: str
    region: str = "us"
    base_url: str | None = None  # overrides the region's URL (the local sandbox)
    test_mode: bool = False  # o:testmode=yes: accepted, never delivered
    connect_timeout: float = 5.0
    read_timeout: float = 20.0

    def __post_init__(self) -> None:
        if not (self.api_key and self.domain and self.from_address):
            raise ValueError("Mailgun needs an API key, a sending domain and a from address.")
        if self.region not in REGIONS:
            raise ValueError("The Mailgun region must be us or eu.")
        if min(self.connect_timeout, self.read_timeout) <= 0:
            raise ValueError("Timeouts must be positive.")

    @property
    def send_url(self) -> str:
        base = (self.base_url or REGIONS[self.region]).rstrip("/")
        return f"{base}/v3/{self.domain}/messages"

    def __repr__(self) -> str:
        return masked_repr(self, {"api_key": 3})


def strip_brackets(message_id: str | None) -> str | None:
    return message_id.strip().strip("<>") if message_id else None


class MailgunClient:
    """Sends one email per call; `send` never raises for Mailgun's answer or the network."""

    provider = PROVIDER

    def __init__(self, config: MailgunConfig, session: requests.Session | None = None):
        self.config = config
        self.session = session or ProviderSession()

    def form_fields(self, message: EmailMessage) -> list[tuple[str, str]]:
        """The exact form fields of the Messages API call for `message`."""
        form = [
            ("from", message.from_address or self.config.from_address),
            ("to", message.to),
            ("subject", message.subject),
            ("text", message.text),
        ]
        if message.html:
            form.append(("html", message.html))
        form.append((f"v:{REFERENCE_KEY}", str(message.reference)))
        if self.config.test_mode:
            form.append(("o:testmode", "yes"))
        return form

    def send(self, message: EmailMessage) -> SendResult:
        """Posts the message once; every answer and network failure becomes a `SendResult`."""
        # (None, value) parts make requests send multipart/form-data without file names, the
        # encoding Mailgun documents (notify.md §6.1).
        parts = [(name, (None, value)) for name, value in self.form_fields(message)]
        answer = exchange(
            PROVIDER,
            lambda: self.session.post(
                self.config.send_url,
                files=parts,
                auth=("api", self.config.api_key),
                headers={"Accept": "application/json", "User-Agent": USER_AGENT},
                timeout=(self.config.connect_timeout, self.config.read_timeout),
                allow_redirects=False,
            ),
            self.config.read_timeout,
        )
        if isinstance(answer, SendResult):
            return answer
        return classify_response(answer)


def classify_response(response: requests.Response) -> SendResult:
    """Mailgun's answer to a send as one of the four outcomes (notify.md §6.1-6.2)."""
    status = response.status_code
    body = json_or_none(response)
    text = str(body.get("message") or "") if isinstance(body, dict) else ""
    if status == 200:
        message_id = body.get("id") if isinstance(body, dict) else None
        if message_id and text.startswith("Queued"):
            return result_from_response(
                PROVIDER, response, Outcome.ACCEPTED, text, strip_brackets(str(message_id))
            )
        # "Mailgun Magnificent API" and other 200s without an id: the URL is wrong (§6.1).
        return result_from_response(
            PROVIDER,
            response,
            Outcome.PROVIDER_FAULT,
            "Mailgun answered 200 without queueing the message; check the base URL.",
        )
    detail = text or (response.text or "").strip()[:200] or f"HTTP {status}"
    if status == 400:
        outcome = Outcome.PERMANENT if INVALID_RECIPIENT.search(detail) else Outcome.PROVIDER_FAULT
    elif status == 404:
        detail += " (a wrong region, US or EU, also answers 404)"
        outcome = Outcome.PROVIDER_FAULT
    else:
        outcome = generic_outcome(status) or Outcome.PROVIDER_FAULT
    return result_from_response(PROVIDER, response, outcome, detail)


# --- webhook ----------------------------------------------------------------------------------


def verify_signature(
    signing_key: str,
    timestamp: str,
    token: str,
    signature: str,
    *,
    used_tokens: UsedTokens | Redis,
    max_age: int = DEFAULT_MAX_AGE,
    now: float | None = None,
) -> None:
    """Returns only when `signature` is the hex HMAC-SHA256 of `timestamp + token` under the
    webhook signing key, the timestamp is within `max_age` seconds of now and the token has not
    been seen before (it is then remembered); raises WebhookRejected otherwise."""
    values = (signing_key, timestamp, token, signature)
    if not all(isinstance(value, str) and value for value in values):
        raise WebhookRejected("Mailgun signature, timestamp or token missing.")
    if not is_epoch_seconds(timestamp):
        raise WebhookRejected("Mailgun timestamp is not a number.")
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > max_age:
        raise WebhookRejected("Mailgun timestamp outside the accepted window.")
    # The raw timestamp string is hashed, not an integer made from it (MG-PY, §6.4).
    expected = hmac.new(
        signing_key.encode(), (timestamp + token).encode(), hashlib.sha256
    ).hexdigest()
    if not constant_time_equal(expected, signature.lower()):
        raise WebhookRejected("Mailgun signature does not match.")
    # Checked after the signature, so that forged requests cannot fill the cache. A token must
    # be remembered as long as its timestamp could pass the window.
    if not used_tokens_from(used_tokens).remember(token, 2 * max_age):
        raise WebhookRejected("Mailgun webhook token already used (a replay).")


def verify_webhook(
    signing_key: str,
    payload: dict,
    *,
    used_tokens: UsedTokens | Redis,
    max_age: int = DEFAULT_MAX_AGE,
    now: float | None = None,
) -> dict:
    """Verifies a JSON webhook body `{"signature": {...}, "event-data": {...}}` and returns its
    event-data; raises WebhookRejected when the signature block fails or event-data is absent."""
    block = payload.get("signature") if isinstance(payload, dict) else None
    if not isinstance(block, dict):
        raise WebhookRejected("Mailgun webhook without a signature block.")
    verify_signature(
        signing_key,
        str(block.get("timestamp") or ""),
        str(block.get("token") or ""),
        str(block.get("signature") or ""),
        used_tokens=used_tokens,
        max_age=max_age,
        now=now,
    )
    event = payload.get("event-data")
    if not isinstance(event, dict):
        raise WebhookRejected("Mailgun webhook without event-data.")
    return event


# Permanent failures that mean "do not mail this address again": a hard bounce, or an address
# Mailgun already suppresses. Others ("old": gave up retrying, "espblock", ...) fail the message
# but do not condemn the address.
SUPPRESSING_REASONS = {"suppress-bounce", "suppress-unsubscribe", "suppress-complaint"}
EVENT_STATUS: dict[str, tuple[DeliveryStatus, bool]] = {
    "accepted": (DeliveryStatus.QUEUED, False),
    "delivered": (DeliveryStatus.DELIVERED, False),
    "rejected": (DeliveryStatus.UNDELIVERED, False),
    "complained": (DeliveryStatus.COMPLAINED, True),
    "unsubscribed": (DeliveryStatus.UNSUBSCRIBED, True),
}


def _failed_status(event: dict) -> tuple[DeliveryStatus, bool]:
    if event.get("severity") != "permanent":
        return DeliveryStatus.FAILED, False  # temporary: Mailgun retries (a soft bounce)
    reason = event.get("reason")
    if reason == "bounce":
        return DeliveryStatus.BOUNCED, True
    return DeliveryStatus.UNDELIVERED, reason in SUPPRESSING_REASONS


def parse_receipts(body: bytes | str | dict) -> list[DeliveryReceipt]:
    """The delivery event of a webhook body (`{"signature", "event-data"}`) or of a bare
    event-data object, normalised; engagement events (opened, clicked, stored) give none.
    Raises ValueError for a body that is not a JSON object."""
    payload: Any = json.loads(body) if isinstance(body, bytes | str) else body
    if not isinstance(payload, dict):
        raise ValueError("A Mailgun webhook body is a JSON object.")
    event = payload.get("event-data", payload)
    if not isinstance(event, dict):
        raise ValueError("Mailgun event-data is not an object.")
    kind = event.get("event")
    if kind == "failed":
        status, permanent = _failed_status(event)
    elif kind in EVENT_STATUS:
        status, permanent = EVENT_STATUS[kind]
    else:
        return []
    delivery = event.get("delivery-status") or {}
    headers = (event.get("message") or {}).get("headers") or {}
    variables = event.get("user-variables") or {}
    reference = variables.get(REFERENCE_KEY) if isinstance(variables, dict) else None
    signature = payload.get("signature") if isinstance(payload.get("signature"), dict) else {}
    detail = " ".join(
        str(part) for part in (delivery.get("message"), delivery.get("description")) if part
    ) or str(event.get("reason") or "")
    return [
        DeliveryReceipt(
            provider=PROVIDER,
            status=status,
            provider_message_id=strip_brackets(headers.get("message-id")),
            reference=str(reference) if reference is not None else None,
            recipient=event.get("recipient"),
            occurred_at=timestamp_to_datetime(event.get("timestamp")),
            detail=detail,
            error_code=str(delivery["code"]) if delivery.get("code") is not None else None,
            permanent=permanent,
            raw=payload,
            # The token is unique per webhook; the event id only "within a day" (§6.3, §8.3).
            event_id=signature.get("token") or event.get("id"),
        )
    ]
