"""Twilio Programmable Messaging on loopback (notify.md §2): `POST /2010-04-01/Accounts/<sid>/
Messages.json` with HTTP Basic `AccountSid:AuthToken` and a form body; 201 with the Message
resource; errors in Twilio's legacy JSON; status callbacks to `StatusCallback`, signed with
X-Twilio-Signature."""

import hmac
import secrets
import uuid
from decimal import Decimal
from email.utils import format_datetime
from urllib.parse import urlencode

from flask import Blueprint, request

from sandbox.notify import signing, text
from sandbox.notify.common import gate, json_response, simulator
from sandbox.notify.core import Message, Step, Webhook, utcnow
from sandbox.notify.outcomes import E164_RE, sms_outcome, valid_url

PROVIDER = "twilio"
API_VERSION = "2010-04-01"
PRICE_PER_SEGMENT = Decimal("-0.05000")  # USD, a round figure of the sandbox
# The number a Messaging Service sends from when the request names no From.
SERVICE_NUMBER = "+15005550006"

twilio = Blueprint("notify_twilio", __name__)


def error(status: int, code: int, message: str, headers: dict | None = None):
    """Twilio's legacy error body (twilio_error_response.json)."""
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return json_response(body, status, headers)


def server_error():
    return error(500, 20500, "Internal Server Error")


def rate_limited():
    return error(429, 20429, "Too Many Requests")


def authenticate(account_sid: str):
    """None when Basic auth carries the account's SID and token, else Twilio's answer."""
    creds = simulator().credentials_of(PROVIDER)
    auth = request.authorization
    if (
        auth is None
        or auth.type != "basic"
        or not hmac.compare_digest(auth.username or "", creds["account_sid"])
        or not hmac.compare_digest(auth.password or "", creds["auth_token"])
    ):
        body = {
            "code": 20003,
            "detail": "Your AccountSid or AuthToken was incorrect.",
            "message": "Authenticate",
            "more_info": "https://www.twilio.com/docs/errors/20003",
            "status": 401,
        }
        return json_response(body, 401, {"WWW-Authenticate": 'Basic realm="Twilio API"'})
    if account_sid != creds["account_sid"]:
        return error(404, 20404, f"The requested resource {request.path} was not found")
    return None


def rfc2822(value) -> str | None:
    return format_datetime(value) if value else None


def resource(message: Message) -> dict:
    """The Message resource (keys as in twilio_send_response.json)."""
    sid, account = message.id, message.extra["account_sid"]
    base = f"/{API_VERSION}/Accounts/{account}/Messages/{sid}"
    price = message.extra.get("price")
    return {
        "account_sid": account,
        "api_version": API_VERSION,
        "body": message.body,
        "date_created": rfc2822(message.created_at),
        "date_sent": rfc2822(message.extra.get("date_sent")),
        "date_updated": rfc2822(message.extra.get("date_updated") or message.created_at),
        "direction": "outbound-api",
        "error_code": message.extra.get("error_code"),
        "error_message": message.extra.get("error_message"),
        "from": message.sender or None,
        "messaging_service_sid": message.extra.get("messaging_service_sid"),
        "num_media": "0",
        "num_segments": str(message.segments),
        "price": str(price) if price is not None else None,
        "price_unit": "USD" if price is not None else None,
        "sid": sid,
        "status": message.status,
        "subresource_uris": {"media": f"{base}/Media.json"},
        "tags": {},
        "to": message.to,
        "uri": f"{base}.json",
    }


@twilio.post(f"/{API_VERSION}/Accounts/<account_sid>/Messages.json")
def create_message(account_sid: str):
    """Sends an SMS: the checks Twilio makes, in its order, then 201 with the resource."""
    answer, mode = gate(PROVIDER, server_error, rate_limited)
    if answer is not None:
        return answer
    refused = authenticate(account_sid)
    if refused is not None:
        return refused
    form = request.form
    to = form.get("To", "").strip()
    sender = form.get("From", "").strip()
    service = form.get("MessagingServiceSid", "").strip()
    body = form.get("Body", "")
    callback = form.get("StatusCallback", "").strip()
    if not to:
        return error(400, 21604, "A 'To' phone number is required.")
    if not sender and not service:
        return error(400, 21603, "A 'From' phone number is required.")
    if not body and not form.get("MediaUrl"):
        return error(400, 21602, "Message body is required.")
    if len(body) > 1600:
        return error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
    if callback and not valid_url(callback):
        return error(400, 21609, f"The StatusCallback URL {callback} is not a valid URL.")
    outcome = sms_outcome(to, mode)
    if not E164_RE.match(to) or outcome == "invalid":
        return error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
    if outcome == "opted_out":
        return error(400, 21610, "Attempt to send to unsubscribed recipient")
    message = simulator().add(
        provider=PROVIDER,
        id="SM" + secrets.token_hex(16),
        to=to,
        sender=sender or SERVICE_NUMBER,
        body=body,
        status="accepted" if service else "queued",
        outcome=outcome,
        callback_url=callback or None,
        metadata={"StatusCallback": callback} if callback else {},
        request=form.to_dict(flat=True),
        encoding=text.encoding(body),
        segments=text.segments(body),
        extra={"account_sid": account_sid, "messaging_service_sid": service or None},
    )
    answer = resource(message)
    if service and not sender:
        answer["from"] = None  # chosen from the service's pool when it is sent
    simulator().start_receipts(message, steps(outcome), status_callback)
    return json_response(answer, 201)


@twilio.get(f"/{API_VERSION}/Accounts/<account_sid>/Messages/<sid>.json")
def fetch_message(account_sid: str, sid: str):
    """The Message resource as it stands now (status, price, error code)."""
    refused = authenticate(account_sid)
    if refused is not None:
        return refused
    message = simulator().find(sid)
    if message is None or message.provider != PROVIDER:
        return error(404, 20404, f"The requested resource {request.path} was not found")
    return json_response(resource(message))


def steps(outcome: str) -> list[Step]:
    """queued → sent → delivered (no callback for the initial status, notify.md §2.1)."""
    sent = Step("sent", "handed to the carrier")
    return {
        "delivered": [sent, Step("delivered", "delivered to the handset")],
        "undelivered": [
            sent,
            Step("undelivered", "landline or unreachable carrier", {"error_code": 30006}),
        ],
        "expired": [sent, Step("undelivered", "unreachable handset", {"error_code": 30003})],
        "no_final": [sent],
    }[outcome]


def status_callback(message: Message, step: Step) -> Webhook | None:
    """Updates the resource, then builds the form POST to StatusCallback with its signature."""
    now = utcnow()
    message.extra["date_updated"] = now
    error_code = step.fields.get("error_code")
    if step.status == "sent":
        message.extra["date_sent"] = now
        message.extra["price"] = PRICE_PER_SEGMENT * message.segments
    if error_code:
        message.extra["error_code"] = error_code
        message.extra["error_message"] = step.detail
    if not message.callback_url:
        return None
    params = [
        ("SmsSid", message.id),
        ("SmsStatus", step.status),
        ("MessageStatus", step.status),
        ("To", message.to),
    ]
    if message.extra.get("messaging_service_sid"):
        params.append(("MessagingServiceSid", message.extra["messaging_service_sid"]))
    params += [
        ("MessageSid", message.id),
        ("AccountSid", message.extra["account_sid"]),
        ("From", message.sender),
        ("ApiVersion", API_VERSION),
    ]
    if error_code:
        params.append(("ErrorCode", str(error_code)))
    if step.status in ("delivered", "undelivered"):
        params.append(("RawDlrDoneDate", now.strftime("%y%m%d%H%M")))
    token = simulator().credentials_of(PROVIDER)["auth_token"]
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": signing.twilio_signature(token, message.callback_url, params),
        "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
        "User-Agent": "TwilioProxy/1.1",
    }
    raw = urlencode(params)
    return Webhook(message.callback_url, dict(params), raw.encode(), headers)
