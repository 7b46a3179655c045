"""Infobip SMS on loopback (notify.md §4): `POST /sms/3/messages` (v3) and
`POST /sms/2/text/advanced` (v2) with `Authorization: App <key>` and a JSON body; 200 with a
status per destination; delivery reports `{"results": [...]}` posted, unsigned, to the
message's webhook (v3 `webhooks.delivery.url`, v2 `notifyUrl`) or the account's URL."""

import hmac
import json
import re
import secrets
import uuid
from datetime import datetime
from decimal import Decimal

import simplejson
from flask import Blueprint, request

from sandbox.notify import text
from sandbox.notify.common import gate, json_response, simulator
from sandbox.notify.core import Message, Step, Webhook, utcnow
from sandbox.notify.outcomes import digits, sms_outcome

PROVIDER = "infobip"
PRICE_PER_MESSAGE = Decimal("0.80")  # KES per part, a round figure of the sandbox
MCC_MNC = "63902"  # Safaricom Kenya
DESTINATION_RE = re.compile(r"^\+?[1-9]\d{7,14}$")

STATUS = {  # notify.md §4.4 and the Infobip status table
    "MESSAGE_ACCEPTED": (1, "PENDING", 26, "Message sent to next instance"),
    "PENDING_ENROUTE": (1, "PENDING", 7, "Message sent to next instance"),
    "UNDELIVERABLE_NOT_DELIVERED": (2, "UNDELIVERABLE", 9, "Message sent not delivered"),
    "DELIVERED_TO_OPERATOR": (3, "DELIVERED", 2, "Message delivered to operator"),
    "DELIVERED_TO_HANDSET": (3, "DELIVERED", 5, "Message delivered to handset"),
    "EXPIRED_EXPIRED": (4, "EXPIRED", 15, "Message expired"),
    "REJECTED_DESTINATION": (5, "REJECTED", 52, "Invalid destination address."),
}
ERRORS = {
    "NO_ERROR": (0, "OK", 0, "No Error", False),
    "EC_UNKNOWN_SUBSCRIBER": (1, "HANDSET_ERRORS", 1, "Unknown Subscriber", True),
    "EC_ABSENT_SUBSCRIBER": (1, "HANDSET_ERRORS", 27, "Absent Subscriber", False),
}

infobip = Blueprint("notify_infobip", __name__)


def status(name: str) -> dict:
    group_id, group, status_id, description = STATUS[name]
    return {
        "groupId": group_id,
        "groupName": group,
        "id": status_id,
        "name": name,
        "description": description,
    }


def error_object(name: str) -> dict:
    group_id, group, error_id, description, permanent = ERRORS[name]
    return {
        "groupId": group_id,
        "groupName": group,
        "id": error_id,
        "name": name,
        "description": description,
        "permanent": permanent,
    }


# --- errors: the legacy requestError body on v2, the ApiError body on v3 (notify.md §4.5) -----
def api_error(version: int, status_code: int, message_id: str, text_: str, violations=None):
    if version == 2:
        exception = {"messageId": message_id, "text": text_}
        if violations:
            exception["validationErrors"] = violations
        return json_response({"requestError": {"serviceException": exception}}, status_code)
    body = {
        "errorCode": f"E{status_code}",
        "description": text_,
        "action": ACTIONS.get(status_code, "Check the request and try again."),
        "violations": [
            {"property": prop, "violation": v}
            for prop, items in (violations or {}).items()
            for v in items
        ],
        "resources": [{"name": "API documentation", "url": "https://www.infobip.com/docs/api"}],
    }
    return json_response(body, status_code)


ACTIONS = {
    400: "Check the syntax, violations and adjust the request.",
    401: "Check the API key or credentials in the Authorization header.",
    429: "Slow down: wait before sending more requests.",
    500: "Try again later; contact support if it persists.",
}


def version_of_path() -> int:
    return 3 if request.path.startswith("/sms/3/") else 2


def server_error():
    return api_error(
        version_of_path(), 500, "GENERAL_ERROR", "Something went wrong. Please contact support."
    )


def rate_limited():
    return api_error(version_of_path(), 429, "TOO_MANY_REQUESTS", "Too many requests")


def authorised() -> bool:
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    expected = simulator().credentials_of(PROVIDER)["api_key"]
    return scheme == "App" and hmac.compare_digest(key.strip(), expected)


@infobip.post("/sms/3/messages")
def send_v3():
    """v3: `messages[].sender, destinations[].to/messageId, content.text, webhooks`."""
    return send(3)


@infobip.post("/sms/2/text/advanced")
def send_v2():
    """v2: `messages[].from, destinations[].to/messageId, text, notifyUrl`."""
    return send(2)


def send(version: int):
    answer, mode = gate(PROVIDER, server_error, rate_limited)
    if answer is not None:
        return answer
    if not authorised():
        return api_error(version, 401, "UNAUTHORIZED", "Invalid login details")
    try:
        body = json.loads(request.get_data() or b"null")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return api_error(
            version, 400, "BAD_REQUEST", "Bad Request", {"body": ["must be a JSON object"]}
        )
    violations = validate(body, version)
    if violations:
        return api_error(version, 400, "BAD_REQUEST", "Bad Request", violations)
    options = body.get("options") or {}
    bulk_id = str((options.get("schedule") or {}).get("bulkId") or body.get("bulkId") or "")
    bulk_id = bulk_id or str(secrets.randbelow(10**19 - 10**18) + 10**18)
    entries = []
    for message in body["messages"]:
        for destination in message["destinations"]:
            entries.append(accept(version, body, message, destination, bulk_id, mode))
    return json_response({"bulkId": bulk_id, "messages": entries})


def message_text(message: dict, version: int):
    if version == 3:
        return (message.get("content") or {}).get("text")
    return message.get("text")


def validate(body: dict, version: int) -> dict:
    """Infobip's validationErrors: property path → problems (infobip_error_response.json)."""
    problems: dict[str, list[str]] = {}
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return {"messages": ["must not be empty"]}
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            problems[f"messages[{i}]"] = ["must be an object"]
            continue
        destinations = message.get("destinations")
        if not isinstance(destinations, list) or not destinations:
            problems[f"messages[{i}].destinations"] = ["must not be empty"]
        elif not all(isinstance(d, dict) and str(d.get("to") or "").strip() for d in destinations):
            problems[f"messages[{i}].destinations[].to"] = ["must not be blank"]
        text_ = message_text(message, version)
        if not isinstance(text_, str) or not text_:
            field = "content.text" if version == 3 else "text"
            problems[f"messages[{i}].{field}"] = ["must not be blank"]
    return problems


def accept(version: int, body: dict, message: dict, destination: dict, bulk_id: str, mode) -> dict:
    """One destination's entry in the answer; accepted ones get delivery reports."""
    to = str(destination["to"]).strip()
    text_ = message_text(message, version)
    message_id = str(destination.get("messageId") or "") or new_message_id()
    segments = text.segments(text_)
    outcome = sms_outcome(to, mode)
    accepted = bool(DESTINATION_RE.match(to)) and outcome != "invalid"
    status_name = "MESSAGE_ACCEPTED" if accepted else "REJECTED_DESTINATION"
    if accepted:
        # Infobip has no opt-out status in the reference: an opted-out number is undeliverable.
        outcome = "undelivered" if outcome == "opted_out" else outcome
        webhooks = message.get("webhooks") or {}
        delivery = webhooks.get("delivery") or {}
        platform = (message.get("options") or {}).get("platform") or {}
        sent = simulator().add(
            provider=PROVIDER,
            id=message_id,
            to=digits(to),
            sender=str(message.get("sender" if version == 3 else "from") or "InfoSMS"),
            body=text_,
            status=status_name,
            outcome=outcome,
            callback_url=(delivery.get("url") if version == 3 else message.get("notifyUrl")),
            metadata={
                k: v
                for k, v in {
                    "messageId": destination.get("messageId"),
                    "callbackData": webhooks.get("callbackData")
                    if version == 3
                    else message.get("callbackData"),
                }.items()
                if v
            },
            request=body,
            encoding=text.encoding(text_),
            segments=segments,
            extra={
                "version": version,
                "bulk_id": bulk_id,
                "intermediate": bool(
                    delivery.get("intermediateReport")
                    if version == 3
                    else message.get("intermediateReport")
                ),
                "entity_id": platform.get("entityId") if version == 3 else message.get("entityId"),
                "application_id": platform.get("applicationId")
                if version == 3
                else message.get("applicationId"),
            },
        )
        sent.extra["callback_data"] = sent.metadata.get("callbackData")
        simulator().start_receipts(sent, steps(outcome, sent.extra["intermediate"]), report)
    if version == 3:
        return {
            "messageId": message_id,
            "status": status(status_name),
            "destination": to,
            "details": {"messageCount": segments},
        }
    entry = {"to": to, "status": status(status_name), "messageId": message_id}
    if body.get("includeSmsCountInResponse"):
        entry["smsCount"] = segments
    return entry


def new_message_id() -> str:
    """Shaped like Infobip's (infobip_send_response_v3.json)."""
    u = uuid.uuid4().hex
    return f"{u[:12]}-{u[12:16]}-{int(u[16:21], 16) % 100000:05d}-{u[21:25]}-{u[25:32]}"


def steps(outcome: str, intermediate: bool) -> list[Step]:
    """Only the final report unless `intermediateReport` was asked for (then PENDING_ENROUTE
    first). DELIVERED_TO_OPERATOR is what a network without handset reports gives."""
    final = {
        "delivered": [Step("DELIVERED_TO_HANDSET", "", {"error": "NO_ERROR"})],
        "undelivered": [
            Step("UNDELIVERABLE_NOT_DELIVERED", "", {"error": "EC_UNKNOWN_SUBSCRIBER"})
        ],
        "expired": [Step("EXPIRED_EXPIRED", "", {"error": "EC_ABSENT_SUBSCRIBER"})],
        "no_final": [Step("DELIVERED_TO_OPERATOR", "", {"error": "NO_ERROR"})],
    }[outcome]
    if intermediate:
        return [Step("PENDING_ENROUTE", "", {"error": "NO_ERROR"}), *final]
    return final


def v2_time(value: datetime) -> str:
    """`2019-11-09T16:00:00.000+0000` (infobip_delivery_report.json)."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def report(message: Message, step: Step) -> Webhook | None:
    """`{"results": [one report]}` in the v2 or v3 shape of the send that made the message."""
    url = message.callback_url or simulator().webhook(PROVIDER)
    if not url:
        return None
    now, extra = utcnow(), message.extra
    price = {"pricePerMessage": PRICE_PER_MESSAGE, "currency": "KES"}
    if extra["version"] == 2:
        result = {
            "bulkId": extra["bulk_id"],
            "messageId": message.id,
            "to": message.to,
            "from": message.sender,
            "sentAt": v2_time(message.created_at),
            "doneAt": v2_time(now),
            "smsCount": message.segments,
            "mccMnc": MCC_MNC,
        }
        if extra.get("callback_data"):
            result["callbackData"] = extra["callback_data"]
        result |= {"price": price, "status": status(step.status)}
        result["error"] = error_object(step.fields["error"])
        if extra.get("entity_id"):
            result["entityId"] = extra["entity_id"]
        if extra.get("application_id"):
            result["applicationId"] = extra["application_id"]
    else:
        result = {
            "bulkId": extra["bulk_id"],
            "price": price,
            "status": status(step.status),
            "error": error_object(step.fields["error"]),
            "messageId": message.id,
            "to": message.to,
            "sender": message.sender,
            "sentAt": message.created_at.isoformat(timespec="seconds"),
            "doneAt": now.isoformat(timespec="seconds"),
            "messageCount": message.segments,
        }
        if extra.get("callback_data"):
            result["callbackData"] = extra["callback_data"]
        platform = {
            k: v
            for k, v in (
                ("entityId", extra.get("entity_id")),
                ("applicationId", extra.get("application_id")),
            )
            if v
        }
        if platform:
            result["platform"] = platform
    body = {"results": [result]}
    # Prices go out as JSON numbers written from Decimal, never through float.
    raw = simplejson.dumps(body, use_decimal=True).encode()
    return Webhook(url, body, raw, {"Content-Type": "application/json"})
