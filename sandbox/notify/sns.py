"""Amazon SNS as far as SES notifications need it (notify.md §7.4, §7.5): the HTTP envelope
(`Content-Type: text/plain`, x-amz-sns-* headers), signed with the sandbox's certificate
(SignatureVersion 1 = RSA-SHA1, 2 = RSA-SHA256), the certificate at SigningCertURL, subscription
confirmation, and the SubscribeURL / UnsubscribeURL the app may visit.

By default SigningCertURL points at this sandbox (`<sandbox>/sandbox/notify/sns/...pem`). An app
that insists on an `sns.<region>.amazonaws.com` host (as production must) is tested by setting
`sns_url` (SANDBOX_SES_SNS_URL) to such a host and handing the app's certificate fetcher the PEM
from the control API (see sandbox/README.md)."""

import json
import secrets
import uuid
from xml.sax.saxutils import escape

from flask import Blueprint, Response, abort, request

from sandbox.notify import signing
from sandbox.notify.common import sandbox_base_url, simulator
from sandbox.notify.core import Webhook, utcnow

sns = Blueprint("notify_sns", __name__, url_prefix="/sandbox/notify/sns")

XMLNS = "http://sns.amazonaws.com/doc/2010-03-31/"


def sns_url(sandbox_base: str) -> str:
    """The base of SigningCertURL, SubscribeURL and UnsubscribeURL."""
    return simulator().current_settings()["sns_url"] or f"{sandbox_base}/sandbox/notify/sns"


def certificate_url(sandbox_base: str) -> str:
    return f"{sns_url(sandbox_base)}/{simulator().keys.sns_certificate_name}"


def topic_arn() -> str:
    return simulator().config["SANDBOX_SES_TOPIC_ARN"]


def subscription_arn(endpoint: str) -> str:
    """Stable for a topic and endpoint, like a real subscription."""
    return f"{topic_arn()}:{uuid.uuid5(uuid.NAMESPACE_URL, topic_arn() + '|' + endpoint)}"


def timestamp() -> str:
    now = utcnow()
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def encode(envelope: dict) -> bytes:
    """SNS's own layout: one `"Key" : value` per line (sns_notification.json)."""
    lines = ",\n".join(
        f"  {json.dumps(k)} : {json.dumps(v, ensure_ascii=False)}" for k, v in envelope.items()
    )
    return ("{\n" + lines + "\n}").encode()


def sign(envelope: dict) -> dict:
    """Adds SignatureVersion, Signature and SigningCertURL (in SNS's key order)."""
    version = simulator().current_settings()["sns_signature_version"]
    envelope["SignatureVersion"] = version
    envelope["Signature"] = signing.sns_signature(simulator().keys.sns_key, envelope, version)
    return envelope


def notification(url: str, message: str, sandbox_base: str, subject: str | None) -> Webhook:
    """A signed `Notification` carrying `message` (an SES event as a JSON string)."""
    envelope = {"Type": "Notification", "MessageId": str(uuid.uuid4()), "TopicArn": topic_arn()}
    if subject:
        envelope["Subject"] = subject
    envelope |= {"Message": message, "Timestamp": timestamp()}
    sign(envelope)
    envelope["SigningCertURL"] = certificate_url(sandbox_base)
    arn = subscription_arn(url)
    envelope["UnsubscribeURL"] = (
        f"{sns_url(sandbox_base)}/?Action=Unsubscribe&SubscriptionArn={arn}"
    )
    headers = {
        "Content-Type": "text/plain; charset=UTF-8",
        "User-Agent": "Amazon Simple Notification Service Agent",
        "x-amz-sns-message-type": "Notification",
        "x-amz-sns-message-id": envelope["MessageId"],
        "x-amz-sns-topic-arn": envelope["TopicArn"],
        "x-amz-sns-subscription-arn": arn,
    }
    return Webhook(url, envelope, encode(envelope), headers, kind="sns_notification")


def subscription_confirmation(url: str, sandbox_base: str) -> tuple[Webhook, str]:
    """A signed `SubscriptionConfirmation` (sns_subscription_confirmation.json) and its token."""
    token = secrets.token_hex(128)
    topic = topic_arn()
    envelope = {
        "Type": "SubscriptionConfirmation",
        "MessageId": str(uuid.uuid4()),
        "Token": token,
        "TopicArn": topic,
        "Message": f"You have chosen to subscribe to the topic {topic}.\n"
        "To confirm the subscription, visit the SubscribeURL included in this message.",
        "SubscribeURL": f"{sns_url(sandbox_base)}/?Action=ConfirmSubscription"
        f"&TopicArn={topic}&Token={token}",
        "Timestamp": timestamp(),
    }
    sign(envelope)
    envelope["SigningCertURL"] = certificate_url(sandbox_base)
    headers = {
        "Content-Type": "text/plain; charset=UTF-8",
        "User-Agent": "Amazon Simple Notification Service Agent",
        "x-amz-sns-message-type": "SubscriptionConfirmation",
        "x-amz-sns-message-id": envelope["MessageId"],
        "x-amz-sns-topic-arn": topic,
    }
    sim = simulator()
    with sim.lock:
        sim.sns_tokens[token] = url
    webhook = Webhook(url, envelope, encode(envelope), headers, kind="sns_subscription")
    return webhook, token


def send_subscription_confirmation(url: str) -> dict:
    """Posts a SubscriptionConfirmation to `url` now; returns the delivery and the token."""
    webhook, token = subscription_confirmation(url, sandbox_base_url())
    return {"token": token, "delivery": simulator().post_now("ses", webhook)}


@sns.get("/<name>.pem")
def certificate(name: str):
    """The certificate whose key signs the envelopes (SigningCertURL)."""
    keys = simulator().keys
    if f"{name}.pem" != keys.sns_certificate_name:
        abort(404)
    return Response(keys.sns_certificate_pem, mimetype="application/x-x509-ca-cert")


def xml(text: str, status: int = 200) -> Response:
    return Response(text, status, mimetype="text/xml")


@sns.get("/")
def action():
    """SubscribeURL (`Action=ConfirmSubscription`) and UnsubscribeURL (`Action=Unsubscribe`)."""
    sim = simulator()
    name = request.args.get("Action", "")
    request_id = str(uuid.uuid4())
    if name == "ConfirmSubscription":
        token = request.args.get("Token", "")
        with sim.lock:
            endpoint = sim.sns_tokens.get(token)
        if endpoint is None or request.args.get("TopicArn") != topic_arn():
            return xml(
                f'<ErrorResponse xmlns="{XMLNS}"><Error><Type>Sender</Type>'
                "<Code>InvalidParameter</Code><Message>Invalid token</Message></Error>"
                f"<RequestId>{request_id}</RequestId></ErrorResponse>",
                400,
            )
        arn = subscription_arn(endpoint)
        record(name, endpoint=endpoint, subscription_arn=arn)
        return xml(
            f'<ConfirmSubscriptionResponse xmlns="{XMLNS}"><ConfirmSubscriptionResult>'
            f"<SubscriptionArn>{escape(arn)}</SubscriptionArn></ConfirmSubscriptionResult>"
            f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
            "</ConfirmSubscriptionResponse>"
        )
    if name == "Unsubscribe":
        record(name, subscription_arn=request.args.get("SubscriptionArn", ""))
        return xml(
            f'<UnsubscribeResponse xmlns="{XMLNS}"><ResponseMetadata><RequestId>{request_id}'
            "</RequestId></ResponseMetadata></UnsubscribeResponse>"
        )
    abort(400, "Action must be ConfirmSubscription or Unsubscribe")


def record(action_name: str, **fields) -> None:
    sim = simulator()
    with sim.lock:
        sim.sns_requests.append(
            {"action": action_name, "at": utcnow().isoformat(timespec="seconds")} | fields
        )
