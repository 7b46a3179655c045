"""Africa's Talking SMS: send a message and read its delivery reports.

A plain client (DESIGN.md convention 7); wire formats from ../shared/reference/notify.md §3:
- send: `POST {base}/version1/messaging`, header `apiKey`, `Accept: application/json`, form
  fields username/to/message/from/bulkSMSMode=1 (as the official SDK sends them);
- a 2xx only says the request was read: each recipient's `statusCode` inside
  `SMSMessageData.Recipients` decides (§3.2), and an empty `Recipients` with a `Message` string
  is a request-level error (`InvalidSenderId`);
- AT takes no reference of ours and no per-message callback URL (delivery reports go to the URL
  set in the AT dashboard): the gateway keeps (Recipients[i].messageId -> our id), §8.2;
- delivery reports are form posts that AT does not sign: the route checks a secret path
  segment (secrets_check.check_path_secret), §3.4.
"""

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from decimal import Decimal

import requests

from app.integrations.notify import sms_common
from app.integrations.notify.base import (
    DeliveryReceipt,
    DeliveryStatus,
    Outcome,
    SendResult,
    SmsMessage,
)
from app.integrations.notify.session import ProviderSession

log = logging.getLogger(__name__)

NAME = "africastalking"
PRODUCTION_URL = "https://api.africastalking.com"
SANDBOX_URL = "https://api.sandbox.africastalking.com"  # chosen when the username is "sandbox"
SEND_PATH = "/version1/messaging"

ACCEPTED_CODES = {100, 101, 102}  # Processed, Sent, Queued
ACCEPTED_NAMES = {"processed", "sent", "queued", "success"}  # when a statusCode is missing
# §3.2 per-recipient statusCode (third-party table; 409 is disputed there, so it is left to
# the default) and §8.4 on who is at fault.
RECIPIENT_CODES = {
    403: "InvalidPhoneNumber",
    404: "UnsupportedNumberType",
    406: "UserInBlacklist",
}
ACCOUNT_CODES = {
    401: "RiskHold",
    402: "InvalidSenderId",
    405: "InsufficientBalance",
    407: "CouldNotRoute",  # this route at AT; another provider may reach the number
    502: "RejectedByGateway",
}
SERVER_CODES = {500: "InternalServerError", 501: "GatewayError"}
RECIPIENT_NAMES = {name.lower() for name in RECIPIENT_CODES.values()}

# §3.3 / §8.1: delivery report status -> normalised status.
STATUSES = {
    "sent": DeliveryStatus.SENT,
    "submitted": DeliveryStatus.SENT,
    "buffered": DeliveryStatus.SENT,
    # Not in AT's documented list; should it come, the operator has the message, not the phone.
    "deliveredtooperator": DeliveryStatus.SENT,
    "success": DeliveryStatus.DELIVERED,
    "rejected": DeliveryStatus.UNDELIVERED,
    "failed": DeliveryStatus.UNDELIVERED,
    "expired": DeliveryStatus.UNDELIVERED,
}
BLACKLISTED_REASON = "userinblacklist"  # the subscriber opted out of this sender
PERMANENT_REASONS = {"userdoesnotexist"}  # the number does not exist: suppress it
OUR_SIDE_REASONS = {"insufficientcredit", "invalidlinkid", "usernotsubscribedtoproduct"}


@dataclass(frozen=True, repr=False)
class AfricasTalkingConfig:
    """One AT application; `base_url` defaults to AT's live API, or its sandbox for the
    username `sandbox`, and points elsewhere (our sandbox app) when set."""

    username: str = ""
    api_key: str = ""
    sender_id: str = ""  # a short code or alphanumeric sender; AT's default when empty
    base_url: str = ""
    connect_timeout: float = 5.0
    read_timeout: float = 10.0

    def __post_init__(self) -> None:
        if min(self.connect_timeout, self.read_timeout) <= 0:
            raise ValueError("Timeouts must be positive.")

    @property
    def send_url(self) -> str:
        default = SANDBOX_URL if self.username == "sandbox" else PRODUCTION_URL
        return (self.base_url or default).rstrip("/") + SEND_PATH

    def __repr__(self) -> str:
        shown = []
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name == "api_key":
                value = sms_common.mask(value)
            shown.append(f"{item.name}={value!r}")
        return f"AfricasTalkingConfig({', '.join(shown)})"


class AfricasTalkingSms:
    """Sends SMS through one Africa's Talking application; `send()` never raises for an answer
    or a network failure."""

    name = NAME

    def __init__(self, config: AfricasTalkingConfig, session: requests.Session | None = None):
        self.config = config
        self.session = session or ProviderSession()

    def __repr__(self) -> str:
        return f"AfricasTalkingSms({self.config!r})"

    def send(self, message: SmsMessage) -> SendResult:
        """The message handed to AT, classed by the recipient's statusCode: ACCEPTED (with the
        ATXid_... messageId), TRANSIENT, PROVIDER_FAULT or PERMANENT."""
        config = self.config
        if not (config.username and config.api_key):
            return SendResult(
                Outcome.PROVIDER_FAULT,
                NAME,
                detail="Africa's Talking is not configured (username and API key).",
            )
        to = "+" + message.to.lstrip("+")
        form = {"username": config.username, "to": to, "message": message.body, "bulkSMSMode": "1"}
        if config.sender_id:
            form["from"] = config.sender_id
        response = sms_common.post(
            self.session,
            NAME,
            config.send_url,
            (config.connect_timeout, config.read_timeout),
            data=form,
            headers={"apiKey": config.api_key, "Accept": "application/json"},
        )
        if isinstance(response, SendResult):
            return response
        return classify(response, to)


def _money(text) -> tuple[Decimal | None, str | None]:
    """("KES 0.8000") -> (Decimal("0.8000"), "KES"); (None, None) when there is no price."""
    match = re.fullmatch(r"\s*([A-Z]{3})\s+(-?[0-9]+(?:\.[0-9]+)?)\s*", str(text or ""))
    if not match:
        return None, None
    return Decimal(match.group(2)), match.group(1)


def _recipient(recipients: list, to: str) -> dict | None:
    """Our recipient's entry (we send to one number), matched by number, else the first."""
    entries = [entry for entry in recipients if isinstance(entry, dict)]
    digits = to.lstrip("+")
    for entry in entries:
        if str(entry.get("number") or "").lstrip("+") == digits:
            return entry
    return entries[0] if entries else None


def classify(response: requests.Response, to: str) -> SendResult:
    """AT's answer to a send, as an outcome: the HTTP status for whole-request failures, then the
    recipient's statusCode (§3.2)."""
    status = response.status_code
    if status == 401:  # bad API key, or (users report) a `from` that is not a valid sender id
        return sms_common.answer(
            Outcome.PROVIDER_FAULT,
            NAME,
            response,
            f"Africa's Talking refused our credentials or sender id: {response.text.strip()[:200]}",
        )
    if not 200 <= status < 300:
        return sms_common.by_http_status(
            NAME, response, f"Africa's Talking answered HTTP {status}."
        )
    body = sms_common.json_body(response)
    data = body.get("SMSMessageData") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        return sms_common.answer(
            Outcome.TRANSIENT,
            NAME,
            response,
            f"Africa's Talking answered HTTP {status} without SMSMessageData; "
            "the message may have been sent.",
            maybe_sent=True,
        )
    summary = str(data.get("Message") or "").strip()
    recipients = data.get("Recipients")
    entry = _recipient(recipients if isinstance(recipients, list) else [], to)
    if entry is None:  # a request-level error such as InvalidSenderId
        outcome = (
            Outcome.PERMANENT
            if summary.replace(" ", "").lower() in RECIPIENT_NAMES
            else Outcome.PROVIDER_FAULT
        )
        return sms_common.answer(
            outcome,
            NAME,
            response,
            f"Africa's Talking refused the request: {summary or 'no reason'}.",
        )
    code = sms_common.int_or_none(entry.get("statusCode"))
    name = str(entry.get("status") or "").strip()
    detail = f"Africa's Talking status {' '.join(str(p) for p in (code, name) if p)}."
    if code in ACCEPTED_CODES or (code is None and name.lower() in ACCEPTED_NAMES):
        cost, currency = _money(entry.get("cost"))
        parts = re.search(r"Message parts:\s*(\d+)", summary)
        return sms_common.answer(
            Outcome.ACCEPTED,
            NAME,
            response,
            detail,
            provider_message_id=str(entry.get("messageId") or "") or None,
            cost=cost,
            currency=currency,
            segments=int(parts.group(1)) if parts else None,
        )
    if code in RECIPIENT_CODES or (code is None and name.lower() in RECIPIENT_NAMES):
        return sms_common.answer(Outcome.PERMANENT, NAME, response, detail)
    if code in SERVER_CODES:
        return sms_common.answer(Outcome.TRANSIENT, NAME, response, detail)
    # ACCOUNT_CODES, and any code we do not know: not known to be the recipient's fault.
    return sms_common.answer(Outcome.PROVIDER_FAULT, NAME, response, detail)


# --- delivery reports --------------------------------------------------------------------------


def parse_receipts(form: Mapping[str, str]) -> list[DeliveryReceipt]:
    """The receipt in one delivery report (form fields as posted: id, status, phoneNumber,
    networkCode, failureReason, retryCount). An unknown status is logged and skipped;
    ValueError when the form is not a delivery report."""
    message_id = (form.get("id") or "").strip()
    raw_status = (form.get("status") or "").strip()
    if not message_id or not raw_status:
        raise ValueError("An Africa's Talking delivery report needs id and status.")
    status = STATUSES.get(raw_status.lower())
    if status is None:
        log.warning("africastalking: unknown status %r for %s skipped", raw_status, message_id)
        return []
    reason = (form.get("failureReason") or "").strip() or None
    permanent = False
    if status == DeliveryStatus.UNDELIVERED and reason:
        key = reason.lower()
        if key == BLACKLISTED_REASON:
            status, permanent = DeliveryStatus.UNSUBSCRIBED, True
        elif key in PERMANENT_REASONS:
            permanent = True
        elif key in OUR_SIDE_REASONS:  # our account or request, not the recipient
            status = DeliveryStatus.FAILED
    return [
        DeliveryReceipt(
            provider=NAME,
            status=status,
            provider_message_id=message_id,
            recipient=(form.get("phoneNumber") or "").strip().lstrip("+") or None,
            detail=f"{raw_status} ({reason})" if reason else raw_status,
            error_code=reason,
            permanent=permanent,
            raw=dict(form.items()),
            event_id=f"{message_id}:{raw_status}",
        )
    ]


def parse_opt_out(form: Mapping[str, str]) -> DeliveryReceipt:
    """A Bulk SMS Opt-Out notification (senderId, phoneNumber; §3.3) as an UNSUBSCRIBED receipt
    for that number, to feed the suppression list; ValueError without a phone number."""
    phone = (form.get("phoneNumber") or "").strip().lstrip("+")
    if not phone:
        raise ValueError("An Africa's Talking opt-out notification needs phoneNumber.")
    sender = (form.get("senderId") or "").strip()
    return DeliveryReceipt(
        provider=NAME,
        status=DeliveryStatus.UNSUBSCRIBED,
        provider_message_id=None,
        recipient=phone,
        detail=f"Opted out of {sender or 'our sender'}.",
        permanent=True,
        raw=dict(form.items()),
        event_id=f"opt-out:{phone}:{sender}",
    )
