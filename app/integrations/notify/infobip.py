"""Infobip SMS (API v3): send a message and read its delivery reports.

A plain client (DESIGN.md convention 7); wire formats from ../shared/reference/notify.md §4:
- send: `POST {base}/sms/3/messages`, `Authorization: App <apiKey>`, JSON
  `{"messages":[{"sender", "destinations":[{"to", "messageId"}], "content":{"text"},
  "webhooks":{"delivery":{"url"}, "contentType", "callbackData"}}]}`; 200 with
  `messages[].messageId` and a `status` whose group says pending or refused (§4.2, §4.4);
- our reference is both the messageId (so receipts carry it) and the callbackData (§8.2);
- error bodies, legacy `requestError.serviceException` or v3 `ApiError`, are classed by HTTP
  status (§4.5);
- delivery reports are JSON `{"results": [...]}` (v2 or v3 fields, §4.6). Infobip does not sign
  per-message webhooks: the callback URL carries a secret path segment (§4.7).
Each account has its own base URL (§4.1), so there is no default: it must be configured.
"""

import json
import logging
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any

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

NAME = "infobip"
SEND_PATH = "/sms/3/messages"

# §4.4 status groups.
PENDING, UNDELIVERABLE, DELIVERED, EXPIRED, REJECTED = 1, 2, 3, 4, 5
GROUP_IDS = {
    "PENDING": PENDING,
    "ACCEPTED": PENDING,  # in the SDK's enum; a message taken for sending
    "UNDELIVERABLE": UNDELIVERABLE,
    "DELIVERED": DELIVERED,
    "EXPIRED": EXPIRED,
    "REJECTED": REJECTED,
}
DELIVERED_TO_HANDSET = 5  # the one final "delivered"; DELIVERED_TO_OPERATOR (2) is not
# Refusals at send time that concern the number itself (Infobip's status list, not in the
# reference: every other refusal is taken as our account's or sender's, and fails over).
RECIPIENT_REFUSALS = {
    "REJECTED_DESTINATION",
    "REJECTED_PREFIX_MISSING",
    "REJECTED_DND",
    "MISSING_TO",
}
OPERATOR_ERRORS = 3  # error group: a permanent operator error is not the recipient's doing


def _base_url(url: str) -> str:
    """`https://xxxx.api.infobip.com` from the base URL as Infobip's portal shows it (no scheme)."""
    url = url.strip().rstrip("/")
    return url if "://" in url else f"https://{url}"


@dataclass(frozen=True, repr=False)
class InfobipConfig:
    """One Infobip account: its own base URL (required), API key and sender."""

    base_url: str = ""
    api_key: str = ""
    sender: str = ""  # an alphanumeric sender id or a number; Infobip's default when empty
    connect_timeout: float = 5.0
    read_timeout: float = 10.0

    def __post_init__(self) -> None:
        if min(self.connect_timeout, self.read_timeout) <= 0:
            raise ValueError("Timeouts must be positive.")

    @property
    def send_url(self) -> str:
        return _base_url(self.base_url) + SEND_PATH

    def __repr__(self) -> str:
        shown = []
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name == "api_key":
                value = sms_common.mask(value)
            shown.append(f"{item.name}={value!r}")
        return f"InfobipConfig({', '.join(shown)})"


def request_body(message: SmsMessage, sender: str) -> dict:
    """The v3 send request for one message to one number (§4.2)."""
    entry: dict[str, Any] = {
        "destinations": [{"to": message.to.lstrip("+"), "messageId": message.reference}],
        "content": {"text": message.body},
    }
    if sender:
        entry = {"sender": sender, **entry}
    webhooks: dict[str, Any] = {"callbackData": message.reference}
    if message.status_callback_url:
        webhooks = {
            "delivery": {"url": message.status_callback_url},
            "contentType": "application/json",
            **webhooks,
        }
    entry["webhooks"] = webhooks
    return {"messages": [entry]}


class InfobipSms:
    """Sends SMS through one Infobip account; `send()` never raises for an answer or a network
    failure."""

    name = NAME

    def __init__(self, config: InfobipConfig, session: requests.Session | None = None):
        self.config = config
        self.session = session or ProviderSession()

    def __repr__(self) -> str:
        return f"InfobipSms({self.config!r})"

    def send(self, message: SmsMessage) -> SendResult:
        """The message handed to Infobip, classed by HTTP status and the message's status group:
        ACCEPTED (with the messageId, which is our reference), TRANSIENT, PROVIDER_FAULT or
        PERMANENT."""
        config = self.config
        if not (config.base_url and config.api_key):
            return SendResult(
                Outcome.PROVIDER_FAULT,
                NAME,
                detail="Infobip is not configured (base URL and API key).",
            )
        response = sms_common.post(
            self.session,
            NAME,
            config.send_url,
            (config.connect_timeout, config.read_timeout),
            json=request_body(message, config.sender),
            headers={"Authorization": f"App {config.api_key}", "Accept": "application/json"},
        )
        if isinstance(response, SendResult):
            return response
        return classify(response, message.reference)


def _group(status: Any) -> int | None:
    """The status group id of a status object, from `groupId` or `groupName`."""
    if not isinstance(status, dict):
        return None
    group = sms_common.int_or_none(status.get("groupId"))
    if group is None:
        group = GROUP_IDS.get(str(status.get("groupName") or "").upper())
    return group


def _error_text(body: Any) -> str:
    """The reason in a legacy `requestError.serviceException` or a v3 `ApiError` body."""
    if not isinstance(body, dict):
        return ""
    service = (body.get("requestError") or {}).get("serviceException")
    if isinstance(service, dict):
        text = f"{service.get('messageId') or ''} {service.get('text') or ''}".strip()
        problems = service.get("validationErrors")
        if isinstance(problems, dict) and problems:
            text += ": " + "; ".join(f"{k} {', '.join(map(str, v))}" for k, v in problems.items())
        return text
    return f"{body.get('errorCode') or ''} {body.get('description') or ''}".strip()


def classify(response: requests.Response, reference: str) -> SendResult:
    """Infobip's answer to a send, as an outcome (§4.2, §4.4, §4.5); the message id is the one
    we gave (our reference) when the answer does not repeat it."""
    status = response.status_code
    body = sms_common.json_body(response)
    if not 200 <= status < 300:
        reason = _error_text(body)
        detail = f"Infobip answered HTTP {status}" + (f": {reason}" if reason else ".")
        return sms_common.by_http_status(NAME, response, detail)
    messages = body.get("messages") if isinstance(body, dict) else None
    entry = messages[0] if isinstance(messages, list) and messages else None
    if not isinstance(entry, dict):
        return sms_common.answer(
            Outcome.TRANSIENT,
            NAME,
            response,
            f"Infobip answered HTTP {status} without a message; it may have been sent.",
            maybe_sent=True,
        )
    state = entry.get("status") if isinstance(entry.get("status"), dict) else {}
    name = str(state.get("name") or "")
    detail = f"Infobip status {name or 'unknown'}: {state.get('description') or ''}".strip()
    group = _group(state)
    if group in (PENDING, DELIVERED):
        details = entry.get("details") if isinstance(entry.get("details"), dict) else {}
        return sms_common.answer(
            Outcome.ACCEPTED,
            NAME,
            response,
            detail,
            provider_message_id=str(entry.get("messageId") or "") or reference,
            segments=sms_common.int_or_none(details.get("messageCount") or entry.get("smsCount")),
        )
    if group in (UNDELIVERABLE, EXPIRED, REJECTED):
        outcome = Outcome.PERMANENT if name in RECIPIENT_REFUSALS else Outcome.PROVIDER_FAULT
        return sms_common.answer(outcome, NAME, response, detail)
    return sms_common.answer(
        Outcome.TRANSIENT,
        NAME,
        response,
        f"Infobip answered an unknown message status ({detail}); it may have been sent.",
        maybe_sent=True,
    )


# --- delivery reports --------------------------------------------------------------------------


def _when(value: Any) -> datetime | None:
    """`2019-11-09T16:01:00.000+0000` or `2023-08-01T16:10:00+05:30` as an aware datetime."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return moment if moment.tzinfo else None


def _receipt(result: dict) -> DeliveryReceipt | None:
    message_id = str(result.get("messageId") or "").strip()
    state = result.get("status")
    if not message_id or not isinstance(state, dict):
        raise ValueError("Each Infobip delivery report needs messageId and status.")
    group = _group(state)
    name = str(state.get("name") or "")
    error = result.get("error") if isinstance(result.get("error"), dict) else {}
    error_name = str(error.get("name") or "") or None
    permanent = False
    if group == PENDING:
        status = DeliveryStatus.SENT
    elif group == DELIVERED:
        handset = sms_common.int_or_none(state.get("id")) == DELIVERED_TO_HANDSET
        status = (
            DeliveryStatus.DELIVERED
            if handset or name == "DELIVERED_TO_HANDSET"
            else DeliveryStatus.SENT
        )
    elif group in (UNDELIVERABLE, EXPIRED, REJECTED):
        # Infobip's own `permanent` says whether sending again would fail the same way (§4.4).
        final = error.get("permanent") is True
        status = DeliveryStatus.UNDELIVERED if final or group == EXPIRED else DeliveryStatus.FAILED
        permanent = final and sms_common.int_or_none(error.get("groupId")) != OPERATOR_ERRORS
    else:
        log.warning("infobip: unknown status %r for %s skipped", name, message_id)
        return None
    price = result.get("price") if isinstance(result.get("price"), dict) else {}
    cost = sms_common.decimal_or_none(price.get("pricePerMessage"))
    callback_data = str(result.get("callbackData") or "").strip()
    description = state.get("description") or name
    if error_name and error_name != "NO_ERROR":
        description = f"{description} ({error_name}: {error.get('description') or ''})".strip()
    return DeliveryReceipt(
        provider=NAME,
        status=status,
        provider_message_id=message_id,
        # We send our reference as both the messageId and the callbackData.
        reference=callback_data or message_id,
        recipient=str(result.get("to") or "").lstrip("+") or None,
        occurred_at=_when(result.get("doneAt")),
        detail=str(description),
        error_code=error_name if error_name != "NO_ERROR" else None,
        permanent=permanent,
        cost=cost,
        currency=(price.get("currency") or None) if cost is not None else None,
        raw=json.loads(json.dumps(result, default=str)),
        event_id=f"{message_id}:{state.get('id', name)}",
    )


def parse_receipts(body: bytes | str | dict) -> list[DeliveryReceipt]:
    """The receipts in one delivery-report post (`{"results": [...]}`, v2 or v3 fields), prices
    as Decimal. Unknown statuses are logged and skipped; ValueError when the body is not a
    delivery report."""
    if isinstance(body, bytes | str):
        try:
            body = json.loads(body, parse_float=Decimal)
        except ValueError:
            raise ValueError("An Infobip delivery report must be JSON.") from None
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list) or not all(isinstance(item, dict) for item in results):
        raise ValueError('An Infobip delivery report is {"results": [...]}.')
    return [receipt for item in results if (receipt := _receipt(item)) is not None]
