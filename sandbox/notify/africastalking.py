"""Africa's Talking bulk SMS on loopback (notify.md §3): `POST /version1/messaging` with the
`apiKey` header and a form body (`username`, `to`, `message`, `from`); HTTP 201 with a status per
recipient; delivery reports posted as forms, unsigned, to the account's callback URL."""

import hmac
import secrets
from decimal import Decimal
from urllib.parse import urlencode

from flask import Blueprint, request

from sandbox.notify import text
from sandbox.notify.common import gate, json_response, simulator, text_response
from sandbox.notify.core import Message, Step, Webhook
from sandbox.notify.outcomes import E164_RE, sms_outcome

PROVIDER = "africastalking"
COST_PER_SEGMENT = Decimal("0.8000")  # KES, as in the samples
REFUSED_SENDER = "BADSENDER"  # always an invalid sender id
NETWORK_CODE = "63902"  # Safaricom Kenya

africastalking = Blueprint("notify_africastalking", __name__)


def unauthorised():
    """at_send_error_401.txt, with the header AT sends."""
    return text_response(
        "The supplied authentication is invalid",
        401,
        {"WWW-Authenticate": 'Basic realm="api"'},
    )


def server_error():
    return text_response("Internal Server Error", 500)


def rate_limited():
    return text_response("Too Many Requests", 429)


def missing(name: str):
    return text_response(f"Request is missing required form field '{name}'", 400)


def kes(amount: Decimal) -> str:
    return f"KES {amount:.4f}"


def sender_allowed(sender: str) -> bool:
    allowed = simulator().config["SANDBOX_AT_SENDER_IDS"]
    return sender != REFUSED_SENDER and (not sender or not allowed or sender in allowed)


@africastalking.post("/version1/messaging")
def send():
    """Checks the key and fields, then answers 201 with each recipient's status."""
    answer, mode = gate(PROVIDER, server_error, rate_limited)
    if answer is not None:
        return answer
    creds = simulator().credentials_of(PROVIDER)
    if not hmac.compare_digest(request.headers.get("apiKey", ""), creds["api_key"]):
        return unauthorised()
    form = request.form
    for name in ("username", "to", "message"):
        if not form.get(name, "").strip():
            return missing(name)
    if form["username"].strip() != creds["username"]:
        return unauthorised()
    sender = form.get("from", "").strip()
    if not sender_allowed(sender):
        return json_response(
            {"SMSMessageData": {"Message": "InvalidSenderId", "Recipients": []}}, 201
        )
    body = form["message"]
    numbers = [n.strip() for n in form["to"].split(",") if n.strip()]
    recipients, sent, total = [], 0, Decimal("0")
    for number in numbers:
        recipient = accept(number, body, sender, mode, form.get("enqueue") == "1", form)
        recipients.append(recipient)
        if recipient["status"] == "Success":
            sent += 1
            total += Decimal(recipient["cost"].split()[1])
    summary = f"Sent to {sent}/{len(numbers)} Total Cost: {kes(total) if sent else '0'}"
    return json_response({"SMSMessageData": {"Message": summary, "Recipients": recipients}}, 201)


def accept(number: str, body: str, sender: str, mode, enqueue: bool, form) -> dict:
    """One recipient's entry in the answer; accepted ones are kept and get delivery reports."""
    outcome = sms_outcome(number, mode)
    if not E164_RE.match(number) or outcome == "invalid":
        return refused(number, 403, "InvalidPhoneNumber")
    if outcome == "opted_out":
        return refused(number, 406, "UserInBlacklist")
    segments = text.segments(body)
    message = simulator().add(
        provider=PROVIDER,
        id="ATXid_" + secrets.token_hex(16),
        to=number,
        sender=sender or "AFRICASTKNG",
        body=body,
        status="Success",
        outcome=outcome,
        request=form.to_dict(flat=True),
        encoding=text.encoding(body),
        segments=segments,
    )
    simulator().start_receipts(message, steps(outcome), delivery_report)
    return {
        "statusCode": 102 if enqueue else 101,
        "number": number,
        "status": "Success",
        "cost": kes(COST_PER_SEGMENT * segments),
        "messageId": message.id,
    }


def refused(number: str, code: int, status: str) -> dict:
    return {
        "statusCode": code,
        "number": number,
        "status": status,
        "cost": "0",
        "messageId": "None",
    }


def steps(outcome: str) -> list[Step]:
    """Sent (intermediate), then Success, Failed, Expired or Buffered (notify.md §3.3)."""
    sent = Step("Sent", "sent by Africa's Talking to the network")
    return {
        "delivered": [sent, Step("Success", "delivered to the handset")],
        "undelivered": [sent, Step("Failed", "", {"failureReason": "UserDoesNotExist"})],
        "expired": [sent, Step("Expired", "the message expired before delivery")],
        "no_final": [sent, Step("Buffered", "queued by the network; no final report follows")],
    }[outcome]


def delivery_report(message: Message, step: Step) -> Webhook | None:
    """The form AT posts to the dashboard's delivery-report URL (at_delivery_report.txt)."""
    url = simulator().webhook(PROVIDER)
    if not url:
        return None
    fields = [
        ("id", message.id),
        ("status", step.status),
        ("phoneNumber", message.to),
        ("networkCode", NETWORK_CODE),
    ]
    if step.fields.get("failureReason"):
        fields.append(("failureReason", step.fields["failureReason"]))
    fields.append(("retryCount", "0"))
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    return Webhook(url, dict(fields), urlencode(fields).encode(), headers)
