"""Amazon SES email over the SESv2 SendEmail JSON API, signed with AWS Signature Version 4 by
hand, and the SES notifications that arrive through SNS (verified in sns.py).

A plain client (DESIGN.md convention 7). Wire formats: ../shared/reference/notify.md §7.
- send: `POST {base}/v2/email/outbound-emails` on `https://email.{region}.amazonaws.com`, JSON
  `{"FromEmailAddress", "Destination", "Content": {"Simple": ...}, "EmailTags"}`; 200
  `{"MessageId": "..."}`. Our notification id rides as the message tag `notify_id`, which
  configuration-set events return in `mail.tags`.
- signing (§7.2): SigV4 with service `ses` (the SESv2 model's signingName), signed headers
  content-type, host, x-amz-date (and x-amz-security-token for temporary credentials), checked
  against AWS's published signature test suite in the tests.
- errors (REST-JSON: code in `x-amzn-ErrorType` or the body's `__type`/`code`, text in
  `message`): MessageRejected -> permanent (except "not verified", an identity of ours);
  AccountSuspended, SendingPaused, MailFromDomainNotVerified, NotFound, credential errors ->
  provider fault; TooManyRequests, Throttling, LimitExceeded, 5xx -> transient.
"""

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from .base import DeliveryReceipt, DeliveryStatus, EmailMessage, Outcome, SendResult
from .email_common import (
    REFERENCE_KEY,
    exchange,
    generic_outcome,
    json_or_none,
    masked_repr,
    result_from_response,
    timestamp_to_datetime,
)
from .session import USER_AGENT, ProviderSession

log = logging.getLogger(__name__)

PROVIDER = "ses"
SEND_PATH = "/v2/email/outbound-emails"
SERVICE = "ses"
ALGORITHM = "AWS4-HMAC-SHA256"
# Message tag names and values: ASCII letters, digits, underscores and dashes, at most 256.
TAG_VALUE = re.compile(r"^[A-Za-z0-9_\-]{1,256}$")

TRANSIENT_CODES = {
    "TooManyRequestsException",
    "ThrottlingException",
    "Throttling",
    "LimitExceededException",  # sending quota or rate: later, or another provider now
    "InternalServiceErrorException",
    "ServiceUnavailable",
    "ConcurrentModificationException",
}
PROVIDER_FAULT_CODES = {
    "AccountSuspendedException",
    "SendingPausedException",
    "MailFromDomainNotVerifiedException",
    "NotFoundException",  # configuration set
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "IncompleteSignatureException",
    "MissingAuthenticationTokenException",
    "InvalidClientTokenId",
    "ExpiredTokenException",
    "AccessDeniedException",
}


@dataclass(frozen=True, repr=False)
class SesConfig:
    access_key_id: str
    secret_access_key: str
    region: str
    from_address: str
    session_token: str | None = None  # temporary credentials only
    configuration_set: str | None = None  # needed for event publishing (and tags in events)
    base_url: str | None = None  # overrides https://email.{region}.amazonaws.com (the sandbox)
    connect_timeout: float = 5.0
    read_timeout: float = 20.0

    def __post_init__(self) -> None:
        if not (self.access_key_id and self.secret_access_key):
            raise ValueError("SES needs an access key id and a secret access key.")
        if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", self.region or ""):
            raise ValueError("The SES region looks like eu-west-1.")
        if not self.from_address:
            raise ValueError("SES needs a from address.")
        if min(self.connect_timeout, self.read_timeout) <= 0:
            raise ValueError("Timeouts must be positive.")

    @property
    def send_url(self) -> str:
        base = self.base_url or f"https://email.{self.region}.amazonaws.com"
        return base.rstrip("/") + SEND_PATH

    def __repr__(self) -> str:
        return masked_repr(self, {"secret_access_key": 0, "session_token": 0, "access_key_id": 4})


# --- Signature Version 4 ----------------------------------------------------------------------


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """kSigning = HMAC chain over date, region, service and "aws4_request" (notify.md §7.2)."""
    key = _hmac(f"AWS4{secret}".encode(), date)
    key = _hmac(key, region)
    key = _hmac(key, service)
    return _hmac(key, "aws4_request")


def _canonical_query(query: str) -> str:
    pairs = []
    for part in filter(None, query.split("&")):
        name, _, value = part.partition("=")
        pairs.append((quote(name, safe="-_.~"), quote(value, safe="-_.~")))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def sigv4_headers(
    method: str,
    url: str,
    body: bytes,
    *,
    access_key_id: str,
    secret_access_key: str,
    region: str,
    service: str,
    now: datetime,
    headers: Mapping[str, str] | None = None,
    session_token: str | None = None,
) -> dict[str, str]:
    """`headers` plus Host, X-Amz-Date (and X-Amz-Security-Token) and the Authorization that
    signs all of them and the body with AWS Signature Version 4."""
    parts = urlsplit(url)
    amz_date = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    signed = {name.lower(): " ".join(str(value).split()) for name, value in (headers or {}).items()}
    signed["host"] = parts.netloc
    signed["x-amz-date"] = amz_date
    if session_token:
        signed["x-amz-security-token"] = session_token
    names = sorted(signed)
    canonical_request = "\n".join(
        [
            method.upper(),
            quote(parts.path or "/", safe="/-_.~"),
            _canonical_query(parts.query),
            "".join(f"{name}:{signed[name]}\n" for name in names),
            ";".join(names),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        [ALGORITHM, amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = signing_key(secret_access_key, amz_date[:8], region, service)
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    result = {**(headers or {}), "Host": parts.netloc, "X-Amz-Date": amz_date}
    if session_token:
        result["X-Amz-Security-Token"] = session_token
    result["Authorization"] = (
        f"{ALGORITHM} Credential={access_key_id}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return result


# --- sending ----------------------------------------------------------------------------------


def _content(data: str) -> dict[str, str]:
    return {"Data": data, "Charset": "UTF-8"}


class SesClient:
    """Sends one email per call; `send` never raises for SES's answer or the network."""

    provider = PROVIDER

    def __init__(self, config: SesConfig, session: requests.Session | None = None, clock=None):
        self.config = config
        self.session = session or ProviderSession()
        self.clock = clock or (lambda: datetime.now(UTC))

    def request_body(self, message: EmailMessage) -> dict[str, Any]:
        """The exact SESv2 SendEmail JSON for `message`."""
        body_parts = {"Text": _content(message.text)}
        if message.html:
            body_parts["Html"] = _content(message.html)
        body: dict[str, Any] = {
            "FromEmailAddress": message.from_address or self.config.from_address,
            "Destination": {"ToAddresses": [message.to]},
            "Content": {"Simple": {"Subject": _content(message.subject), "Body": body_parts}},
        }
        reference = str(message.reference)
        if TAG_VALUE.match(reference):
            body["EmailTags"] = [{"Name": REFERENCE_KEY, "Value": reference}]
        else:
            # SES refuses the whole message for a bad tag; receipts still match by MessageId.
            log.warning("ses: reference %r cannot be a message tag; sent without it", reference)
        if self.config.configuration_set:
            body["ConfigurationSetName"] = self.config.configuration_set
        return body

    def signed_request(self, message: EmailMessage) -> tuple[bytes, dict[str, str]]:
        """The body bytes and the SigV4-signed headers of the SendEmail request."""
        payload = json.dumps(self.request_body(message), separators=(",", ":")).encode()
        headers = sigv4_headers(
            "POST",
            self.config.send_url,
            payload,
            access_key_id=self.config.access_key_id,
            secret_access_key=self.config.secret_access_key,
            region=self.config.region,
            service=SERVICE,
            now=self.clock(),
            headers={"Content-Type": "application/json"},
            session_token=self.config.session_token,
        )
        return payload, {**headers, "Accept": "application/json", "User-Agent": USER_AGENT}

    def send(self, message: EmailMessage) -> SendResult:
        """Posts the message once; every answer and network failure becomes a `SendResult`."""
        payload, headers = self.signed_request(message)
        answer = exchange(
            PROVIDER,
            lambda: self.session.post(
                self.config.send_url,
                data=payload,
                headers=headers,
                timeout=(self.config.connect_timeout, self.config.read_timeout),
                allow_redirects=False,
            ),
            self.config.read_timeout,
        )
        if isinstance(answer, SendResult):
            return answer
        return classify_response(answer)


def error_code_of(response: requests.Response, body: Any) -> str:
    """The AWS error code: `x-amzn-ErrorType` ("Code:http://..."), else `__type`/`code` in the
    body ("namespace#Code"), as botocore's REST-JSON parser reads it."""
    raw = response.headers.get("x-amzn-ErrorType") or ""
    if not raw and isinstance(body, dict):
        raw = str(body.get("__type") or body.get("code") or body.get("Code") or "")
    return raw.split(":", 1)[0].rsplit("#", 1)[-1].strip()


def classify_response(response: requests.Response) -> SendResult:
    """SES's answer to SendEmail as one of the four outcomes (notify.md §7.1, §8.4)."""
    status = response.status_code
    body = json_or_none(response)
    if status == 200:
        message_id = body.get("MessageId") if isinstance(body, dict) else None
        if message_id:
            return result_from_response(
                PROVIDER, response, Outcome.ACCEPTED, "Accepted.", str(message_id)
            )
        return result_from_response(
            PROVIDER,
            response,
            Outcome.PROVIDER_FAULT,
            "SES answered 200 without a MessageId; check the base URL.",
        )
    code = error_code_of(response, body)
    text = ""
    if isinstance(body, dict):
        text = str(body.get("message") or body.get("Message") or "")
    detail = f"{code}: {text}" if code and text else code or text or f"HTTP {status}"
    if code == "MessageRejected":
        # "Email address is not verified" names an identity of ours (or the sandbox account):
        # configuration, not the recipient.
        not_verified = "not verified" in text.lower()
        outcome = Outcome.PROVIDER_FAULT if not_verified else Outcome.PERMANENT
    elif code in TRANSIENT_CODES:
        outcome = Outcome.TRANSIENT
    elif code in PROVIDER_FAULT_CODES:
        outcome = Outcome.PROVIDER_FAULT
    elif code == "BadRequestException" and re.search(r"address|@domain", text, re.I):
        outcome = Outcome.PERMANENT  # an address SES cannot parse
    else:
        outcome = generic_outcome(status) or Outcome.PROVIDER_FAULT
    return result_from_response(PROVIDER, response, outcome, detail)


# --- notifications ----------------------------------------------------------------------------


def _tag(mail: dict, name: str) -> str | None:
    values = (mail.get("tags") or {}).get(name)
    if isinstance(values, list) and values:
        return str(values[0])
    return str(values) if isinstance(values, str) else None


def _emails(entries: list) -> list[str]:
    return [
        entry.get("emailAddress") if isinstance(entry, dict) else str(entry)
        for entry in entries or []
    ]


def _event_receipts(event: dict) -> list[tuple[DeliveryStatus, bool, str, dict, str]]:
    """(status, permanent, recipient, detail fields, time) per recipient of one SES event."""
    kind = event.get("eventType") or event.get("notificationType")
    mail = event.get("mail") or {}
    everyone = [str(address) for address in mail.get("destination") or []]
    if kind == "Delivery":
        delivery = event.get("delivery") or {}
        return [
            (DeliveryStatus.DELIVERED, False, address, delivery, delivery.get("timestamp"))
            for address in delivery.get("recipients") or everyone
        ]
    if kind == "Bounce":
        bounce = event.get("bounce") or {}
        hard = bounce.get("bounceType") == "Permanent"
        # Transient and Undetermined bounces are soft: never suppress on them (§7.3).
        status = DeliveryStatus.BOUNCED if hard else DeliveryStatus.FAILED
        return [
            (status, hard, entry.get("emailAddress"), {**bounce, **entry}, bounce.get("timestamp"))
            for entry in bounce.get("bouncedRecipients") or []
            if isinstance(entry, dict)
        ]
    if kind == "Complaint":
        complaint = event.get("complaint") or {}
        return [
            (DeliveryStatus.COMPLAINED, True, address, complaint, complaint.get("timestamp"))
            for address in _emails(complaint.get("complainedRecipients"))
        ]
    if kind == "Subscription":  # list-management unsubscribe (event publishing)
        return [(DeliveryStatus.UNSUBSCRIBED, True, a, {}, mail.get("timestamp")) for a in everyone]
    if kind in ("Reject", "Rendering Failure"):
        # SES refused this message (virus, bad template data): not the recipient's doing.
        details = event.get("reject") or event.get("failure") or {}
        return [(DeliveryStatus.UNDELIVERED, False, a, details, None) for a in everyone]
    if kind == "DeliveryDelay":
        delay = event.get("deliveryDelay") or {}
        return [
            (DeliveryStatus.FAILED, False, entry.get("emailAddress"), {**delay, **entry}, None)
            for entry in delay.get("delayedRecipients") or []
            if isinstance(entry, dict)
        ]
    if kind == "Send":
        return [(DeliveryStatus.QUEUED, False, a, {}, mail.get("timestamp")) for a in everyone]
    return []  # Open, Click and anything new: not a delivery state


def _detail(fields_: dict) -> tuple[str, str | None]:
    text = (
        fields_.get("diagnosticCode")
        or fields_.get("smtpResponse")
        or fields_.get("complaintFeedbackType")
        or fields_.get("reason")
        or fields_.get("errorMessage")
        or fields_.get("delayType")
        or fields_.get("bounceSubType")
        or ""
    )
    return str(text), (str(fields_["status"]) if fields_.get("status") else None)


def parse_receipts(message: dict | str | bytes) -> list[DeliveryReceipt]:
    """Receipts, one per recipient, from a verified SNS envelope whose `Message` is an SES
    notification, or from the SES notification itself. Engagement events and SES's "Successfully
    validated SNS topic" string give none. Raises ValueError for a body that is not JSON."""
    outer: Any = json.loads(message) if isinstance(message, bytes | str) else message
    if not isinstance(outer, dict):
        raise ValueError("An SES notification is a JSON object.")
    envelope_id = None
    event: Any = outer
    if "Type" in outer and "Message" in outer:  # an SNS envelope
        envelope_id = outer.get("MessageId")
        try:
            event = json.loads(outer["Message"])
        except (TypeError, ValueError):
            return []  # the plain-text topic validation message
    if not isinstance(event, dict):
        return []
    mail = event.get("mail") or {}
    reference = _tag(mail, REFERENCE_KEY)
    receipts = []
    for status, permanent, recipient, details, when in _event_receipts(event):
        detail, error_code = _detail(details)
        base_id = envelope_id or details.get("feedbackId")
        receipts.append(
            DeliveryReceipt(
                provider=PROVIDER,
                status=status,
                provider_message_id=mail.get("messageId"),
                reference=reference,
                recipient=recipient,
                occurred_at=timestamp_to_datetime(when or mail.get("timestamp")),
                detail=detail,
                error_code=error_code,
                permanent=permanent,
                raw=event,
                event_id=f"{base_id}:{recipient}" if base_id else None,
            )
        )
    return receipts
