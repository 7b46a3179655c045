"""Mailgun Messages API on loopback (notify.md §6): `POST /v3/<domain>/messages` with HTTP Basic
`api:<key>` and a multipart or urlencoded form; 200 `{"message": "Queued. Thank you.", "id"}`;
errors as `{"message": ...}`; webhooks `{"signature": {...}, "event-data": {...}}` posted to the
account's URL, signed with HMAC-SHA256 of timestamp + token under the webhook signing key."""

import hmac
import json
import secrets
import time
from email.utils import getaddresses

from flask import Blueprint, request

from sandbox.notify import signing
from sandbox.notify.common import gate, json_response, simulator, text_response
from sandbox.notify.core import Message, Step, Webhook, utcnow
from sandbox.notify.outcomes import email_outcome, valid_email

PROVIDER = "mailgun"
SENDING_IP = "198.51.100.25"

mailgun = Blueprint("notify_mailgun", __name__)


def message_error(status: int, text: str):
    return json_response({"message": text}, status)


def server_error():
    return message_error(500, "Internal Server Error")


def rate_limited():
    return message_error(429, "Domain sending request limit exceeded, try again after one minute")


def addresses(values: list[str]) -> list[str]:
    """Every address of the (possibly repeated, possibly comma-separated) fields."""
    return [address for _, address in getaddresses(values) if address]


@mailgun.post("/v3/<domain>/messages")
def send(domain: str):
    """Checks the key, the domain and the fields, then queues one message for every `to`."""
    answer, mode = gate(PROVIDER, server_error, rate_limited)
    if answer is not None:
        return answer
    creds = simulator().credentials_of(PROVIDER)
    auth = request.authorization
    if (
        auth is None
        or auth.type != "basic"
        or auth.username != "api"
        or not hmac.compare_digest(auth.password or "", creds["api_key"])
    ):
        return text_response("Forbidden", 401)
    if domain not in creds["domains"]:
        return message_error(404, f"Domain not found: {domain}")
    form = request.form
    sender = form.get("from", "").strip()
    if not sender:
        return message_error(400, "'from' parameter is missing")
    to = addresses(form.getlist("to"))
    if not to:
        return message_error(400, "'to' parameter is missing")
    if any(not valid_email(a) or email_outcome(a, mode) == "invalid" for a in to):
        return message_error(
            400, "'to' parameter is not a valid address. please check documentation"
        )
    if not (form.get("text") or form.get("html") or form.get("template")):
        return message_error(
            400, "Need at least one of 'text', 'html' or 'template' parameters specified"
        )
    stamp = utcnow().strftime("%Y%m%d%H%M%S")
    message_id = f"{stamp}.{secrets.randbelow(9) + 1}.{secrets.token_hex(8).upper()}@{domain}"
    variables = {k[2:]: v for k, v in form.items() if k.startswith("v:")}
    extra = {
        "tags": form.getlist("o:tag"),
        "test_mode": form.get("o:testmode", "").lower() in ("yes", "true"),
        "variables": variables,
        "from_address": (getaddresses([sender]) or [("", sender)])[0][1] or sender,
        "size": len(request.get_data()),
    }
    for address in to:
        outcome = email_outcome(address, mode)
        message = simulator().add(
            provider=PROVIDER,
            id=f"<{message_id}>",
            to=address,
            sender=sender,
            body=form.get("text", ""),
            subject=form.get("subject", ""),
            html=form.get("html") or None,
            status="accepted",
            outcome=outcome,
            metadata=variables,
            request=form.to_dict(flat=False),
            extra=dict(extra, header_message_id=message_id),
        )
        simulator().start_receipts(message, steps(outcome), webhook)
    return json_response({"message": "Queued. Thank you.", "id": f"<{message_id}>"})


def steps(outcome: str) -> list[Step]:
    delivered = Step("delivered", "accepted by the receiving server")
    permanent = Step("failed", "permanent failure (hard bounce)", {"severity": "permanent"})
    temporary = Step("failed", "temporary failure; will retry", {"severity": "temporary"})
    return {
        "delivered": [delivered],
        "bounce": [permanent],
        "complaint": [delivered, Step("complained", "marked as spam")],
        "deferred": [temporary, delivered],
    }[outcome]


def event_data(message: Message, step: Step) -> dict:
    """The event-data object (keys as in mailgun_event_*_doc.json)."""
    extra = message.extra
    domain = message.to.rpartition("@")[2]
    severity = step.fields.get("severity")
    data = {"event": step.status, "id": secrets.token_urlsafe(16), "timestamp": time.time()}
    data["log-level"] = {"permanent": "error", "temporary": "warn"}.get(
        severity, "warn" if step.status == "complained" else "info"
    )
    if severity:
        data["severity"] = severity
        data["reason"] = "bounce" if severity == "permanent" else "generic"
    data["envelope"] = {
        "transport": "smtp",
        "sender": extra["from_address"],
        "sending-ip": SENDING_IP,
        "targets": message.to,
    }
    data["flags"] = {
        "is-routed": False,
        "is-authenticated": True,
        "is-system-test": False,
        "is-test-mode": extra["test_mode"],
    }
    if step.status in ("delivered", "failed"):
        data["delivery-status"] = delivery_status(domain, severity)
    data["message"] = {
        "headers": {
            "to": message.to,
            "message-id": extra["header_message_id"],
            "from": message.sender,
            "subject": message.subject,
        },
        "attachments": [],
        "size": extra["size"],
    }
    data |= {
        "recipient": message.to,
        "recipient-domain": domain,
        "campaigns": [],
        "tags": extra["tags"],
        "user-variables": extra["variables"],
    }
    return data


def delivery_status(domain: str, severity: str | None) -> dict:
    if severity == "permanent":
        return {
            "tls": True,
            "mx-host": f"mx.{domain}",
            "attempt-no": 1,
            "description": "",
            "session-seconds": 0.41,
            "utf8": True,
            "code": 550,
            "message": "5.1.1 The email account that you tried to reach does not exist.",
            "certificate-verified": True,
        }
    if severity == "temporary":
        return {
            "tls": True,
            "mx-host": f"mx.{domain}",
            "code": 452,
            "description": "",
            "session-seconds": 0.38,
            "utf8": True,
            "retry-seconds": 600,
            "enhanced-code": "4.2.2",
            "attempt-no": 1,
            "message": "4.2.2 The email account that you tried to reach is over quota.",
            "certificate-verified": True,
        }
    return {
        "tls": True,
        "mx-host": f"mx.{domain}",
        "code": 250,
        "description": "",
        "session-seconds": 0.44,
        "utf8": True,
        "attempt-no": 1,
        "message": "OK",
        "certificate-verified": True,
    }


def webhook(message: Message, step: Step) -> Webhook | None:
    """`{"signature": {timestamp, token, signature}, "event-data": {...}}` as JSON."""
    url = simulator().webhook(PROVIDER)
    if not url:
        return None
    timestamp, token = str(int(time.time())), secrets.token_hex(25)
    key = simulator().credentials_of(PROVIDER)["webhook_signing_key"]
    body = {
        "signature": {
            "timestamp": timestamp,
            "token": token,
            "signature": signing.mailgun_signature(key, timestamp, token),
        },
        "event-data": event_data(message, step),
    }
    headers = {"Content-Type": "application/json", "User-Agent": "mailgun/treq-16.12.0"}
    return Webhook(url, body, json.dumps(body).encode(), headers)
