"""Twilio Programmable Messaging: send an SMS, read its status callbacks, verify their signature.

A plain client (DESIGN.md convention 7); wire formats from ../shared/reference/notify.md §2:
- send: `POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json`, HTTP Basic
  (AccountSid, AuthToken), form fields To/From/Body/StatusCallback; 201 with the Message JSON;
- our reference rides in the StatusCallback URL (`?ref=<id>`, the COURIER pattern of §2.4): the
  signature covers the full URL, so it cannot be tampered with;
- errors, legacy `{code, message, status}` or RFC 9457 `{type, title, status, code, detail}`,
  are classed by Twilio's code (§2.2 table), then by HTTP status;
- status callbacks are form posts signed with `X-Twilio-Signature` (§2.5, verify_signature).
"""

import base64
import hashlib
import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass, fields
from urllib.parse import parse_qs, parse_qsl, quote, urlencode, urlparse, urlsplit, urlunsplit

import requests

from app.integrations.notify import sms_common
from app.integrations.notify.base import (
    DeliveryReceipt,
    DeliveryStatus,
    Outcome,
    SendResult,
    SmsMessage,
    WebhookRejected,
)
from app.integrations.notify.session import ProviderSession

log = logging.getLogger(__name__)

NAME = "twilio"
PRODUCTION_URL = "https://api.twilio.com"
REFERENCE_PARAM = "ref"  # our notification id in the StatusCallback URL's query
SIGNATURE_HEADER = "X-Twilio-Signature"

# §2.2: who is at fault, by Twilio error code.
RATE_LIMITED = {20429, 63018}
RECIPIENT_CODES = {  # permanent for this recipient: do not fail over
    21211: "The 'To' number is not a valid phone number.",
    21610: "The recipient has unsubscribed (replied STOP).",
    21614: "The 'To' number is not a mobile number that can receive SMS.",
    21635: "The 'To' number is a landline.",
}
ACCOUNT_CODES = {  # this account or sender at Twilio: fail over and tell an administrator
    20003: "Twilio refused the account SID or auth token.",
    21606: "The 'From' number cannot send SMS.",
    21608: "The 'To' number is not verified for this (trial or unapproved) account.",
    # "maybe" in §2.2: Twilio cannot route to the number now; another provider may.
    21612: "Twilio cannot route an SMS to the 'To' number from this sender.",
}
UNSUBSCRIBED_CODE = "21610"

# §2.3 / §8.1: MessageStatus -> normalised status.
STATUSES = {
    "accepted": DeliveryStatus.QUEUED,
    "scheduled": DeliveryStatus.QUEUED,
    "queued": DeliveryStatus.QUEUED,
    "sending": DeliveryStatus.QUEUED,
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.DELIVERED,
    "failed": DeliveryStatus.UNDELIVERED,  # Twilio could not send it
    "undelivered": DeliveryStatus.UNDELIVERED,  # the carrier reported non-delivery
}
# Callback ErrorCodes that say the number itself cannot receive SMS: suppress it (§2.2).
PERMANENT_RECEIPT_CODES = {"21211", "21614", "21635", "30006"}
TEMPORARY_RECEIPT_CODES = {"30003"}  # unreachable handset (off, no signal): "can be transient"


@dataclass(frozen=True, repr=False)
class TwilioConfig:
    """One Twilio account and sender; `base_url` points elsewhere (the sandbox) when set."""

    account_sid: str = ""
    auth_token: str = ""
    from_number: str = ""  # an E.164 number or an alphanumeric sender id
    base_url: str = PRODUCTION_URL
    connect_timeout: float = 5.0
    read_timeout: float = 10.0

    def __post_init__(self) -> None:
        if min(self.connect_timeout, self.read_timeout) <= 0:
            raise ValueError("Timeouts must be positive.")

    @property
    def messages_url(self) -> str:
        base = (self.base_url or PRODUCTION_URL).rstrip("/")
        return f"{base}/2010-04-01/Accounts/{quote(self.account_sid, safe='')}/Messages.json"

    def __repr__(self) -> str:
        shown = []
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name == "auth_token":
                value = sms_common.mask(value)
            shown.append(f"{item.name}={value!r}")
        return f"TwilioConfig({', '.join(shown)})"


def callback_url(url: str, reference: str) -> str:
    """`url` with our reference as its `ref` query parameter (replacing any already there)."""
    parts = urlsplit(url)
    kept = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != REFERENCE_PARAM
    ]
    query = [*kept, (REFERENCE_PARAM, reference)]
    return urlunsplit(parts._replace(query=urlencode(query)))


class TwilioSms:
    """Sends SMS through one Twilio account; `send()` never raises for an answer or a network
    failure."""

    name = NAME

    def __init__(self, config: TwilioConfig, session: requests.Session | None = None):
        self.config = config
        self.session = session or ProviderSession()

    def __repr__(self) -> str:
        return f"TwilioSms({self.config!r})"

    def send(self, message: SmsMessage) -> SendResult:
        """The message handed to Twilio, classed as ACCEPTED (with the SM... sid), TRANSIENT,
        PROVIDER_FAULT or PERMANENT."""
        config = self.config
        if not (config.account_sid and config.auth_token and config.from_number):
            return SendResult(
                Outcome.PROVIDER_FAULT,
                NAME,
                detail="Twilio is not configured (account SID, auth token and sender).",
            )
        form = {
            "To": "+" + message.to.lstrip("+"),
            "From": config.from_number,
            "Body": message.body,
        }
        if message.status_callback_url:
            form["StatusCallback"] = callback_url(message.status_callback_url, message.reference)
        response = sms_common.post(
            self.session,
            NAME,
            config.messages_url,
            (config.connect_timeout, config.read_timeout),
            data=form,
            auth=(config.account_sid, config.auth_token),
            headers={"Accept": "application/json"},
        )
        if isinstance(response, SendResult):
            return response
        return classify(response)


def classify(response: requests.Response) -> SendResult:
    """Twilio's answer to a send, as an outcome (§2.1, §2.2)."""
    body = sms_common.json_body(response)
    body = body if isinstance(body, dict) else {}
    status = response.status_code
    if 200 <= status < 300:
        sid = body.get("sid")
        if not sid:
            return sms_common.answer(
                Outcome.TRANSIENT,
                NAME,
                response,
                f"Twilio answered HTTP {status} without a message sid; it may have been sent.",
                maybe_sent=True,
            )
        price = sms_common.decimal_or_none(body.get("price"))  # negative, or null until sent
        return sms_common.answer(
            Outcome.ACCEPTED,
            NAME,
            response,
            f"Twilio accepted the message ({body.get('status') or 'queued'}).",
            provider_message_id=str(sid),
            segments=sms_common.int_or_none(body.get("num_segments")),
            cost=abs(price) if price is not None else None,
            currency=(body.get("price_unit") or None) if price is not None else None,
        )
    code = sms_common.int_or_none(body.get("code"))
    text = str(body.get("message") or body.get("detail") or body.get("title") or "").strip()
    detail = f"Twilio error {code}: {text}" if code else f"Twilio answered HTTP {status}."
    if code in RECIPIENT_CODES:
        return sms_common.answer(
            Outcome.PERMANENT, NAME, response, f"{RECIPIENT_CODES[code]} ({detail})"
        )
    if code in RATE_LIMITED:
        return sms_common.answer(Outcome.TRANSIENT, NAME, response, detail)
    if code in ACCOUNT_CODES or status in (401, 403):
        explanation = ACCOUNT_CODES.get(code, "Twilio refused our credentials.")
        return sms_common.answer(
            Outcome.PROVIDER_FAULT, NAME, response, f"{explanation} ({detail})"
        )
    return sms_common.by_http_status(NAME, response, detail)


# --- delivery receipts -------------------------------------------------------------------------


def parse_receipts(
    form: Mapping[str, str], query: Mapping[str, str] | None = None
) -> list[DeliveryReceipt]:
    """The receipt in one status callback (form fields as posted; `query` is the callback URL's
    query, which carries our reference). A status Twilio may add later is logged and skipped;
    ValueError when the form is not a status callback."""
    sid = form.get("MessageSid") or form.get("SmsSid")
    raw_status = form.get("MessageStatus") or form.get("SmsStatus")
    if not sid or not raw_status:
        raise ValueError("A Twilio status callback needs MessageSid and MessageStatus.")
    status = STATUSES.get(raw_status.strip().lower())
    if status is None:
        log.warning("twilio: unknown MessageStatus %r for %s skipped", raw_status, sid)
        return []
    error_code = (form.get("ErrorCode") or "").strip() or None
    permanent = False
    if status == DeliveryStatus.UNDELIVERED:
        if error_code == UNSUBSCRIBED_CODE:
            status, permanent = DeliveryStatus.UNSUBSCRIBED, True
        elif error_code in PERMANENT_RECEIPT_CODES:
            permanent = True
        elif error_code in TEMPORARY_RECEIPT_CODES:
            status = DeliveryStatus.FAILED
    detail = f"{raw_status} (error {error_code})" if error_code else raw_status
    reference = (query or {}).get(REFERENCE_PARAM) or None
    recipient = (form.get("To") or "").lstrip("+") or None
    return [
        DeliveryReceipt(
            provider=NAME,
            status=status,
            provider_message_id=sid,
            reference=reference,
            recipient=recipient,
            detail=detail,
            error_code=error_code,
            permanent=permanent,
            raw=dict(form.items()),
            event_id=":".join(part for part in (sid, raw_status, error_code) if part),
        )
    ]


# --- webhook signature (§2.5) ------------------------------------------------------------------


def _values(params, name: str) -> list[str]:
    if hasattr(params, "getlist"):  # Werkzeug's MultiDict (Flask's request.form)
        return list(params.getlist(name))
    value = params[name]
    return [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]


def compute_signature(url: str, params, auth_token: str) -> str:
    """base64(HMAC-SHA1(auth token, url + name + value for each name and each distinct value,
    both sorted)): what Twilio puts in X-Twilio-Signature."""
    signed = url
    for name in sorted(set(params or {})):
        for value in sorted(set(_values(params, name))):
            signed += name + value
    digest = hmac.new(auth_token.encode("utf-8"), signed.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def _without_port(url) -> str:
    if not url.port:
        return url.geturl()
    return url._replace(netloc=url.netloc.split(":")[0]).geturl()


def _with_port(url) -> str:
    if url.port:
        return url.geturl()
    port = 443 if url.scheme == "https" else 80
    return url._replace(netloc=f"{url.netloc}:{port}").geturl()


def verify_signature(
    url: str,
    form_params,
    signature_header: str | None,
    auth_token: str,
    raw_body: bytes | None = None,
) -> None:
    """Returns when `signature_header` is Twilio's signature of the full public `url` and the
    posted form fields under `auth_token`, with or without the default port in the URL (as
    Twilio's own validator allows); raises WebhookRejected otherwise. A URL carrying
    `bodySHA256` (a JSON webhook) also needs `raw_body` to hash to it, and signs no fields."""
    if not auth_token:
        raise WebhookRejected("No Twilio auth token is configured.")
    if not signature_header:
        raise WebhookRejected(f"The {SIGNATURE_HEADER} header is missing.")
    parsed = urlparse(url)
    params = form_params or {}
    body_hash = parse_qs(parsed.query).get("bodySHA256")
    if body_hash:
        actual = hashlib.sha256(raw_body).hexdigest() if raw_body is not None else ""
        if not hmac.compare_digest(actual.encode(), body_hash[0].encode()):
            raise WebhookRejected("The body does not match bodySHA256.")
        params = {}
    given = signature_header.strip().encode("utf-8")
    matches = [
        hmac.compare_digest(compute_signature(candidate, params, auth_token).encode(), given)
        for candidate in (_without_port(parsed), _with_port(parsed))
    ]
    if not any(matches):
        raise WebhookRejected("The Twilio signature does not match.")


def signed_url(public_base_url: str, path: str, query_string: str | bytes = "") -> str:
    """The URL Twilio requested, as it signed it: our public base URL (we sit behind a proxy,
    §2.5) + the path + `?query` only when there is one (Flask's `full_path` always adds `?`)."""
    if isinstance(query_string, bytes):
        query_string = query_string.decode("latin-1")
    url = public_base_url.rstrip("/") + path
    return f"{url}?{query_string}" if query_string else url
