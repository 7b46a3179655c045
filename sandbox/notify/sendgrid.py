"""SendGrid v3 Mail Send on loopback (notify.md §5): `POST /v3/mail/send` with
`Authorization: Bearer <key>` and a JSON body; 202 with no body and an `X-Message-Id` header;
errors as `{"errors": [...]}`; Event Webhook posts (JSON arrays) to the account's URL, signed
with the sandbox's ECDSA P-256 key (X-Twilio-Email-Event-Webhook-Signature / -Timestamp)."""

import hmac
import json
import secrets
import time

from flask import Blueprint, Response, request

from sandbox.notify import signing
from sandbox.notify.common import gate, json_response, simulator
from sandbox.notify.core import Message, Step, Webhook
from sandbox.notify.outcomes import email_outcome, valid_email

PROVIDER = "sendgrid"
HELP = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html"

sendgrid = Blueprint("notify_sendgrid", __name__)


def problem(message: str, field: str | None = None, help_: str | None = None) -> dict:
    return {"message": message, "field": field, "help": help_}


def errors(status: int, items: list[dict], headers: dict | None = None):
    return json_response({"errors": items}, status, headers)


def server_error():
    return errors(500, [problem("An internal server error occurred.")])


def rate_limited():
    reset = str(int(time.time()) + 60)
    headers = {"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}
    return errors(429, [problem("too many requests")], headers)


def json_type(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    return {int: "integer", float: "number", list: "array", dict: "object"}.get(
        type(value), "null" if value is None else "string"
    )


@sendgrid.post("/v3/mail/send")
def mail_send():
    """Checks the key and the body, then answers 202 and starts the events."""
    answer, mode = gate(PROVIDER, server_error, rate_limited)
    if answer is not None:
        return answer
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme != "Bearer" or not key.strip():
        return errors(401, [problem("authorization required")])
    if not hmac.compare_digest(key.strip(), simulator().credentials_of(PROVIDER)["api_key"]):
        return errors(
            401, [problem("The provided authorization grant is invalid, expired, or revoked")]
        )
    try:
        body = json.loads(request.get_data() or b"null")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return errors(400, [problem("Bad Request")])
    problems = validate(body, mode)
    if problems:
        return errors(400, problems)
    sandbox_mode = ((body.get("mail_settings") or {}).get("sandbox_mode") or {}).get("enable")
    message_id = secrets.token_urlsafe(16)
    for recipient in recipients(body):
        accept(body, message_id, recipient, mode, sandbox_mode is True)
    if sandbox_mode is True:
        return Response(status=200)  # validated, not sent, no events (notify.md §5.1)
    response = Response(status=202, headers={"X-Message-Id": message_id})
    del response.headers["Content-Type"]
    return response


def validate(body: dict, mode) -> list[dict]:
    """Every problem at once, as SendGrid reports them."""
    found = []
    personalizations = body.get("personalizations")
    has_template = bool(body.get("template_id"))
    if not isinstance(personalizations, list) or not personalizations:
        found.append(
            problem(
                "The personalizations field is required and must have at least one personalization.",
                "personalizations",
                f"{HELP}#-Personalizations-Errors",
            )
        )
        personalizations = []
    for i, item in enumerate(personalizations):
        item = item if isinstance(item, dict) else {}
        if not isinstance(item.get("to"), list) or not item["to"]:
            found.append(
                problem(
                    "The to array is required for all personalization objects, and must have at "
                    "least one email object with a valid email address.",
                    f"personalizations.{i}.to",
                    f"{HELP}#message.personalizations.to",
                )
            )
        for kind in ("to", "cc", "bcc"):
            for j, address in enumerate(item.get(kind) or []):
                email = address.get("email") if isinstance(address, dict) else None
                if not valid_email(email or "") or email_outcome(email, mode) == "invalid":
                    found.append(
                        problem(
                            "Does not contain a valid address.",
                            f"personalizations.{i}.{kind}.{j}.email",
                            f"{HELP}#message.personalizations.{kind}",
                        )
                    )
        found += string_values(item.get("custom_args"), f"personalizations.{i}.custom_args")
    sender = body.get("from")
    if not isinstance(sender, dict) or not valid_email(sender.get("email") or ""):
        found.append(
            problem(
                "The from object must be provided for every email send. It is an object that "
                "requires an email parameter, but may also contain a name parameter.",
                "from",
                f"{HELP}#message.from",
            )
        )
    every_has_subject = personalizations and all(
        isinstance(p, dict) and p.get("subject") for p in personalizations
    )
    if not body.get("subject") and not every_has_subject and not has_template:
        found.append(
            problem(
                "The subject is required. You can get around this requirement if you use a "
                "template with a subject defined or if every personalization has a subject "
                "defined.",
                "subject",
                f"{HELP}#message.subject",
            )
        )
    content = body.get("content")
    blocks_ok = isinstance(content, list) and all(
        isinstance(c, dict) and c.get("type") and isinstance(c.get("value"), str) for c in content
    )
    if not has_template and (not content or not blocks_ok):
        found.append(
            problem(
                "Unless a valid template_id is provided, the content parameter is required. "
                "There must be at least one defined content block. We typically suggest both "
                "text/plain and text/html blocks are included, but only one block is required.",
                "content",
                f"{HELP}#message.content",
            )
        )
    found += string_values(body.get("custom_args"), "custom_args")
    sandbox = ((body.get("mail_settings") or {}).get("sandbox_mode") or {}).get("enable")
    if sandbox is not None and not isinstance(sandbox, bool):
        found.append(
            problem(
                f"Invalid type. Expected: boolean, given: {json_type(sandbox)}.",
                "mail_settings.sandbox_mode.enable",
                f"{HELP}#-Mail-Settings",
            )
        )
    return found


def string_values(args, path: str) -> list[dict]:
    """custom_args values must be strings (notify.md §5.1)."""
    if args is None:
        return []
    if not isinstance(args, dict):
        return [problem("Invalid type. Expected: object.", path)]
    return [
        problem(f"Invalid type. Expected: string, given: {json_type(v)}.", f"{path}.{k}")
        for k, v in args.items()
        if not isinstance(v, str)
    ]


def recipients(body: dict):
    """(personalization, address) for every to, cc and bcc."""
    for item in body["personalizations"]:
        for kind in ("to", "cc", "bcc"):
            for address in item.get(kind) or []:
                yield item, address["email"]


def accept(body: dict, message_id: str, recipient, mode, sandbox_mode: bool) -> None:
    personalization, email = recipient
    content = {c["type"]: c["value"] for c in body.get("content") or []}
    custom_args = dict(body.get("custom_args") or {}) | dict(
        personalization.get("custom_args") or {}
    )
    categories = body.get("categories") or []
    outcome = email_outcome(email, mode)
    message = simulator().add(
        provider=PROVIDER,
        id=message_id,
        to=email,
        sender=body["from"]["email"],
        body=content.get("text/plain", ""),
        subject=personalization.get("subject") or body.get("subject") or "",
        html=content.get("text/html"),
        status="sandbox_mode" if sandbox_mode else "queued",
        outcome=outcome,
        metadata=custom_args,
        request=body,
        extra={
            "sg_message_id": f"{message_id}.filterdrecv-{secrets.token_hex(5)}-"
            f"{len(simulator().messages_for(PROVIDER))}-{secrets.token_hex(4).upper()}.0",
            "categories": categories if isinstance(categories, list) else [categories],
        },
    )
    if not sandbox_mode:
        simulator().start_receipts(message, steps(outcome), event_webhook)


def steps(outcome: str) -> list[Step]:
    processed = Step("processed", "received and ready to be delivered")
    delivered = Step("delivered", "accepted by the receiving server")
    return {
        "delivered": [processed, delivered],
        "bounce": [processed, Step("bounce", "the receiving server refused the address")],
        "complaint": [processed, delivered, Step("spamreport", "marked as spam")],
        "deferred": [processed, Step("deferred", "temporarily refused"), delivered],
    }[outcome]


def event(message: Message, step: Step) -> dict:
    """One Event Webhook event (keys as in sendgrid_event_*.json); custom args at top level."""
    xid = message.id
    data = {
        "email": message.to,
        "timestamp": int(time.time()),
        "smtp-id": f"<{xid}@ismtpd0001p1sandbox.sendgrid.net>",
        "event": step.status,
    }
    categories = message.extra.get("categories") or []
    if categories:
        data["category"] = categories if len(categories) > 1 else categories[0]
    data["sg_event_id"] = secrets.token_urlsafe(16)
    data["sg_message_id"] = message.extra["sg_message_id"]
    if step.status == "delivered":
        data |= {"ip": "167.89.17.173", "response": "250 2.0.0 OK sandbox", "tls": 1}
    elif step.status == "bounce":
        data |= {
            "ip": "167.89.17.173",
            "reason": "550 5.1.1 The email account that you tried to reach does not exist.",
            "status": "5.1.1",
            "tls": 1,
            "type": "bounce",
        }
    elif step.status == "deferred":
        data |= {
            "response": "Email was deferred due to the following reason(s): "
            "[IPs were throttled by recipient server]",
            "attempt": "1",
        }
    return data | message.metadata


def event_webhook(message: Message, step: Step) -> Webhook | None:
    """A JSON array posted to the Event Webhook URL, signed over timestamp + raw body. Like
    SendGrid's, the body ends in CRLF, so only the raw bytes verify."""
    url = simulator().webhook(PROVIDER)
    if not url:
        return None
    events = [event(message, step)]
    raw = (json.dumps(events, separators=(",", ":")) + "\r\n").encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "SendGrid Event API",
        "X-Twilio-Email-Event-Webhook-Signature": signing.sendgrid_signature(
            simulator().keys.sendgrid_key, timestamp, raw
        ),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
    }
    return Webhook(url, events, raw, headers)
