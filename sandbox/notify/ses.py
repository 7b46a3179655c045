"""Amazon SES v2 SendEmail on loopback (notify.md §7): `POST /v2/email/outbound-emails` signed
with SigV4 (service `ses`) and a JSON body; 200 `{"MessageId"}`; errors as AWS REST-JSON
(`x-amzn-ErrorType` header, `{"message"}` body); Delivery, Bounce and Complaint notifications
posted through SNS to the account's subscribed endpoint."""

import base64
import binascii
import json
import secrets
import uuid
from email import message_from_bytes, policy

from flask import Blueprint, request

from sandbox.notify import sigv4, sns
from sandbox.notify.common import gate, json_response, sandbox_base_url, simulator
from sandbox.notify.core import Message, Step, Webhook, utcnow
from sandbox.notify.outcomes import email_outcome, valid_email

PROVIDER = "ses"
SOURCE_IP = "127.0.0.1"
CALLER = "daystar-sandbox"

ses = Blueprint("notify_ses", __name__)


def aws_error(code: str, message: str, status: int):
    """AWS REST-JSON error: the name in `x-amzn-ErrorType`, the text in `{"message"}`."""
    headers = {"x-amzn-ErrorType": code, "x-amzn-RequestId": str(uuid.uuid4())}
    return json_response({"message": message}, status, headers)


def server_error():
    return aws_error(
        "InternalFailure",
        "The request processing has failed because of an unknown error, exception or failure.",
        500,
    )


def rate_limited():
    return aws_error("TooManyRequestsException", "Too Many Requests", 429)


def bad_request(message: str):
    return aws_error("BadRequestException", message, 400)


def signed_request() -> sigv4.SignedRequest:
    return sigv4.SignedRequest(
        method=request.method,
        path=request.path,
        query_string=request.query_string.decode(),
        headers={k.lower(): v for k, v in request.headers.items()},
        body=request.get_data(),
    )


@ses.post("/v2/email/outbound-emails")
def send_email():
    """SigV4 first, then the body; 200 with one MessageId for every recipient."""
    answer, mode = gate(PROVIDER, server_error, rate_limited)
    if answer is not None:
        return answer
    creds = simulator().credentials_of(PROVIDER)
    verify = simulator().config["SANDBOX_SES_SIGV4"] == "verify"
    try:
        sigv4.check(signed_request(), creds, verify)
    except sigv4.SigV4Error as exc:
        return aws_error(exc.code, exc.message, exc.status)
    try:
        body = json.loads(request.get_data() or b"null")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return aws_error(
            "SerializationException", "Start of structure or map found where not expected.", 400
        )
    sender = body.get("FromEmailAddress")
    destination = body.get("Destination") or {}
    to = [
        a
        for kind in ("ToAddresses", "CcAddresses", "BccAddresses")
        for a in destination.get(kind) or []
    ]
    content = body.get("Content") or {}
    kinds = [k for k in ("Simple", "Raw", "Template") if k in content]
    if len(kinds) != 1:
        return bad_request("Content must hold exactly one of Simple, Raw or Template.")
    parsed = parse_content(kinds[0], content[kinds[0]])
    if parsed is None:
        return bad_request(f"Content.{kinds[0]} is incomplete.")
    sender = sender or parsed.get("from")
    if not sender:
        return bad_request("FromEmailAddress is required unless the Raw message has a From header.")
    to = to or parsed.get("to", [])
    if not to:
        return bad_request("Destination must name at least one recipient.")
    if len(to) > 50:
        return aws_error("MessageRejected", "Recipient count exceeds 50.", 400)
    if any(not valid_email(a) or email_outcome(a, mode) == "invalid" for a in to):
        return bad_request("Illegal address")
    message_id = f"{secrets.token_hex(8)}-{uuid.uuid4()}-000000"
    tags = {t.get("Name"): t.get("Value") for t in body.get("EmailTags") or [] if t.get("Name")}
    extra = {
        "destination": to,
        "configuration_set": body.get("ConfigurationSetName"),
        "tags": tags,
        "sandbox_base": sandbox_base_url(),
        "region": creds["region"],
    }
    for address in to:
        outcome = email_outcome(address, mode)
        message = simulator().add(
            provider=PROVIDER,
            id=message_id,
            to=address,
            sender=sender,
            body=parsed.get("text", ""),
            subject=parsed.get("subject", ""),
            html=parsed.get("html"),
            status="Send",
            outcome=outcome,
            metadata=tags,
            request=body,
            extra=dict(extra),
        )
        simulator().start_receipts(message, steps(outcome), sns_notification)
    return json_response({"MessageId": message_id}, 200, {"x-amzn-RequestId": str(uuid.uuid4())})


def parse_content(kind: str, content: dict) -> dict | None:
    """Subject, text and HTML (and From/To of a Raw message) for the inbox."""
    if kind == "Simple":
        subject = (content.get("Subject") or {}).get("Data")
        body = content.get("Body") or {}
        text = (body.get("Text") or {}).get("Data")
        html = (body.get("Html") or {}).get("Data")
        if subject is None or (text is None and html is None):
            return None
        return {"subject": subject, "text": text or "", "html": html}
    if kind == "Raw":
        try:
            raw = base64.b64decode(content.get("Data") or "", validate=True)
        except (binascii.Error, ValueError):
            return None
        mime = message_from_bytes(raw, policy=policy.default)
        parts = {}
        for part in mime.walk():
            if part.get_content_type() in ("text/plain", "text/html"):
                parts.setdefault(part.get_content_type(), part.get_content())
        return {
            "subject": str(mime.get("Subject", "")),
            "from": str(mime.get("From", "")) or None,
            "to": [a.strip() for a in str(mime.get("To", "")).split(",") if a.strip()],
            "text": parts.get("text/plain", ""),
            "html": parts.get("text/html"),
        }
    name = content.get("TemplateName") or content.get("TemplateArn")
    if not name:
        return None
    return {"subject": f"(template {name})", "text": content.get("TemplateData") or ""}


def steps(outcome: str) -> list[Step]:
    """Delivery, Bounce (Permanent; Transient for `deferred`) and Complaint (after Delivery)."""
    delivery = Step("Delivery", "accepted by the receiving server")
    return {
        "delivered": [delivery],
        "bounce": [Step("Bounce", "Permanent/General", {"type": "Permanent", "sub": "General"})],
        "complaint": [delivery, Step("Complaint", "abuse report")],
        "deferred": [
            Step("Bounce", "Transient/MailboxFull", {"type": "Transient", "sub": "MailboxFull"})
        ],
    }[outcome]


def iso(value=None) -> str:
    value = value or utcnow()
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def account_id() -> str:
    return sns.topic_arn().split(":")[4]


def mail_object(message: Message) -> dict:
    """The `mail` object (ses_notification_*_awsdoc.json); `tags` with a configuration set."""
    extra = message.extra
    domain = message.sender.rpartition("@")[2].rstrip(">")
    mail = {
        "timestamp": iso(message.created_at),
        "messageId": message.id,
        "source": message.sender,
        "sourceArn": f"arn:aws:ses:{extra['region']}:{account_id()}:identity/{domain}",
        "sourceIp": SOURCE_IP,
        "sendingAccountId": account_id(),
        "callerIdentity": CALLER,
        "destination": extra["destination"],
        "headersTruncated": False,
        "headers": [
            {"name": "From", "value": message.sender},
            {"name": "To", "value": ", ".join(extra["destination"])},
            {"name": "Subject", "value": message.subject},
            {"name": "MIME-Version", "value": "1.0"},
        ],
        "commonHeaders": {
            "from": [message.sender],
            "to": list(extra["destination"]),
            "messageId": message.id,
            "subject": message.subject,
        },
    }
    if extra["configuration_set"]:
        mail["tags"] = {
            "ses:configuration-set": [extra["configuration_set"]],
            "ses:source-ip": [SOURCE_IP],
            "ses:from-domain": [domain],
            "ses:caller-identity": [CALLER],
        } | {name: [value] for name, value in extra["tags"].items()}
    return mail


def event(message: Message, step: Step) -> dict:
    """The SES event: `notificationType` (identity notifications) or, when the send named a
    configuration set, `eventType` (event publishing) (notify.md §7.3)."""
    key = "eventType" if message.extra["configuration_set"] else "notificationType"
    now, feedback = iso(), f"{secrets.token_hex(8)}-{uuid.uuid4()}-000000"
    if step.status == "Delivery":
        return {
            key: "Delivery",
            "mail": mail_object(message),
            "delivery": {
                "timestamp": now,
                "processingTimeMillis": 546,
                "recipients": [message.to],
                "smtpResponse": "250 ok:  Message accepted",
                "reportingMTA": "a8-70.smtp-out.amazonses.com",
                "remoteMtaIp": "127.0.2.0",
            },
        }
    if step.status == "Bounce":
        permanent = step.fields["type"] == "Permanent"
        status, diagnostic = (
            ("5.1.1", "smtp; 550 5.1.1 user unknown")
            if permanent
            else ("4.2.2", "smtp; 452 4.2.2 mailbox full")
        )
        return {
            key: "Bounce",
            "bounce": {
                "bounceType": step.fields["type"],
                "bounceSubType": step.fields["sub"],
                "bouncedRecipients": [
                    {
                        "emailAddress": message.to,
                        "action": "failed",
                        "status": status,
                        "diagnosticCode": diagnostic,
                    }
                ],
                "timestamp": now,
                "feedbackId": feedback,
                "reportingMTA": "dns; amazonses.com",
                "remoteMtaIp": "127.0.2.0",
            },
            "mail": mail_object(message),
        }
    return {
        key: "Complaint",
        "complaint": {
            "userAgent": "AnyCompany Feedback Loop (V0.01)",
            "complainedRecipients": [{"emailAddress": message.to}],
            "complaintFeedbackType": "abuse",
            "arrivalDate": now,
            "timestamp": now,
            "feedbackId": feedback,
        },
        "mail": mail_object(message),
    }


def sns_notification(message: Message, step: Step) -> Webhook | None:
    url = simulator().webhook(PROVIDER)
    if not url:
        return None
    text = json.dumps(event(message, step), separators=(",", ":"))
    subject = "Amazon SES Email Event Notification" if message.extra["configuration_set"] else None
    return sns.notification(url, text, message.extra["sandbox_base"], subject)
