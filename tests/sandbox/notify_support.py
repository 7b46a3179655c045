"""Helpers for the notification-provider sandbox tests: the reference samples, a client that
calls each provider's API as the app would, and signature checks written from notify.md's
algorithms, independently of sandbox/ (each is first proven on the reference's test vectors)."""

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "notify"  # copied from ../shared/reference
PHONE = "+254712345678"
TIMEOUT = 10


def sample_json(name: str):
    return json.loads((SAMPLES / name).read_text())


def sample_bytes(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def key_tree(value):
    """The keys of a JSON document, nested (lists by their first item); values ignored."""
    if isinstance(value, dict):
        return {k: key_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [key_tree(value[0])] if value else []
    return None


# --- signature checks (notify.md §2.5, §5.4, §6.4, §7.5) ------------------------------------
def twilio_signature(auth_token: str, url: str, params: dict[str, list[str]]) -> str:
    """base64(HMAC-SHA1(token, url + name + value ...)), names and each name's values sorted."""
    pieces = [url]
    for name in sorted(params):
        for value in sorted(set(params[name])):
            pieces.append(name + value)
    mac = hmac.new(auth_token.encode("utf-8"), "".join(pieces).encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


def sendgrid_verified(public_key_b64: str, signature_b64: str, timestamp: str, raw: bytes) -> bool:
    """ECDSA P-256 / SHA-256 over timestamp + raw body, key as base64 SubjectPublicKeyInfo."""
    pem = f"-----BEGIN PUBLIC KEY-----\n{public_key_b64}\n-----END PUBLIC KEY-----\n"
    key = serialization.load_pem_public_key(pem.encode())
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"
    try:
        key.verify(
            base64.b64decode(signature_b64), timestamp.encode() + raw, ec.ECDSA(hashes.SHA256())
        )
    except InvalidSignature:
        return False
    return True


def mailgun_signature(signing_key: str, timestamp: str, token: str) -> str:
    return hmac.new(
        signing_key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256
    ).hexdigest()


SNS_KEYS = {
    "Notification": ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"],
    "SubscriptionConfirmation": [
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ],
}


def sns_verified(envelope: dict, certificate_pem: bytes) -> bool:
    """RSA PKCS#1 v1.5 (SHA1 for SignatureVersion 1, SHA256 for 2) over `key\\nvalue\\n` of
    the signed keys present, in order."""
    names = SNS_KEYS[envelope["Type"]]
    text = "".join(f"{k}\n{envelope[k]}\n" for k in names if k in envelope)
    # SignatureVersion 1 is SHA1 by SNS's definition.
    algorithm = {"1": hashes.SHA1(), "2": hashes.SHA256()}[envelope["SignatureVersion"]]  # noqa: S303
    key = x509.load_pem_x509_certificate(certificate_pem).public_key()
    try:
        key.verify(
            base64.b64decode(envelope["Signature"]), text.encode(), padding.PKCS1v15(), algorithm
        )
    except InvalidSignature:
        return False
    return True


def sigv4_signature(
    method: str,
    path: str,
    headers: dict,
    body: bytes,
    secret: str,
    scope: str,
    amz_date: str,
) -> str:
    """Hex SigV4 signature over every header given (names lower-case), no query string."""
    signed = ";".join(sorted(headers))
    canonical = "\n".join(
        [
            method,
            path,
            "",
            "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)),
            signed,
            hashlib.sha256(body).hexdigest(),
        ]
    )
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = f"AWS4{secret}".encode()
    for part in scope.split("/"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def sigv4_headers(
    url: str,
    body: bytes,
    access_key: str,
    secret: str,
    region: str,
    service: str = "ses",
    when: datetime | None = None,
) -> dict:
    """The headers an APPRISE-style plain-requests client adds to a POST (notify.md §7.2)."""
    when = when or datetime.now(UTC)
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    parts = urlsplit(url)
    headers = {"content-type": "application/json", "host": parts.netloc, "x-amz-date": amz_date}
    scope = f"{when:%Y%m%d}/{region}/{service}/aws4_request"
    signature = sigv4_signature("POST", parts.path, headers, body, secret, scope, amz_date)
    return {
        "Content-Type": headers["content-type"],
        "X-Amz-Date": amz_date,
        "Authorization": f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
        f"SignedHeaders={';'.join(sorted(headers))}, Signature={signature}",
    }


# --- a client of the six APIs, as the app calls them ------------------------------------------
class Providers:
    def __init__(self, notify_sandbox):
        self.sandbox = notify_sandbox
        self.base = notify_sandbox.base_url
        self.creds = notify_sandbox.credentials
        self.http = requests.Session()

    def twilio(self, auth=None, account_sid=None, **form) -> requests.Response:
        c = self.creds["twilio"]
        sid = account_sid or c["account_sid"]
        data = {"To": PHONE, "From": "+15005550006", "Body": "Your loan was approved."} | form
        return self.http.post(
            f"{self.base}/2010-04-01/Accounts/{sid}/Messages.json",
            data={k: v for k, v in data.items() if v is not None},
            auth=auth or (c["account_sid"], c["auth_token"]),
            timeout=TIMEOUT,
        )

    def africastalking(self, api_key=None, **form) -> requests.Response:
        c = self.creds["africastalking"]
        data = {"username": c["username"], "to": PHONE, "message": "Repayment received."} | form
        headers = {"apiKey": api_key or c["api_key"], "Accept": "application/json"}
        return self.http.post(
            f"{self.base}/version1/messaging",
            data={k: v for k, v in data.items() if v is not None},
            headers=headers,
            timeout=TIMEOUT,
        )

    def infobip(self, body: dict, version: int = 3, api_key=None) -> requests.Response:
        path = "/sms/3/messages" if version == 3 else "/sms/2/text/advanced"
        key = api_key or self.creds["infobip"]["api_key"]
        return self.http.post(
            self.base + path,
            json=body,
            headers={"Authorization": f"App {key}", "Accept": "application/json"},
            timeout=TIMEOUT,
        )

    def sendgrid(self, body: dict, api_key=None) -> requests.Response:
        key = api_key or self.creds["sendgrid"]["api_key"]
        return self.http.post(
            f"{self.base}/v3/mail/send",
            json=body,
            headers={"Authorization": f"Bearer {key}"},
            timeout=TIMEOUT,
        )

    def mailgun(self, domain=None, api_key=None, files=None, **form) -> requests.Response:
        c = self.creds["mailgun"]
        data = {
            "from": f"Daystar SACCO <no-reply@{c['domain']}>",
            "to": "member@example.com",
            "subject": "Statement",
            "text": "Your statement is ready.",
        } | form
        return self.http.post(
            f"{self.base}/v3/{domain or c['domain']}/messages",
            data={k: v for k, v in data.items() if v is not None},
            files=files,
            auth=("api", api_key or c["api_key"]),
            timeout=TIMEOUT,
        )

    def ses(self, body: dict, secret=None, **sign) -> requests.Response:
        c = self.creds["ses"]
        url = f"{self.base}/v2/email/outbound-emails"
        raw = json.dumps(body).encode()
        headers = sigv4_headers(
            url,
            raw,
            sign.pop("access_key", c["access_key_id"]),
            secret or c["secret_access_key"],
            sign.pop("region", c["region"]),
            **sign,
        )
        return self.http.post(url, data=raw, headers=headers, timeout=TIMEOUT)


def sendgrid_body(to="member@example.com", **fields) -> dict:
    body = {
        "personalizations": [{"to": [{"email": to}], "custom_args": {"notification_id": "N-42"}}],
        "from": {"email": "no-reply@daystar.example.com", "name": "Daystar SACCO"},
        "subject": "Loan approved",
        "content": [
            {"type": "text/plain", "value": "Your loan was approved."},
            {"type": "text/html", "value": "<p>Your loan was <b>approved</b>.</p>"},
        ],
    }
    return body | fields


def ses_body(to="member@example.com", **fields) -> dict:
    body = {
        "FromEmailAddress": "no-reply@daystar.example.com",
        "Destination": {"ToAddresses": [to]},
        "Content": {
            "Simple": {
                "Subject": {"Data": "Loan approved", "Charset": "UTF-8"},
                "Body": {
                    "Text": {"Data": "Your loan was approved.", "Charset": "UTF-8"},
                    "Html": {"Data": "<p>Your loan was approved.</p>", "Charset": "UTF-8"},
                },
            }
        },
        "EmailTags": [{"Name": "notification_id", "Value": "N-42"}],
    }
    return body | fields


def infobip_v3_body(to="254712345678", **message) -> dict:
    return {
        "messages": [
            {
                "sender": "DAYSTAR",
                "destinations": [{"to": to, "messageId": "N-42"}],
                "content": {"text": "Your loan was approved."},
            }
            | message
        ]
    }


def infobip_v2_body(to="254712345678", **message) -> dict:
    return {
        "messages": [
            {
                "from": "DAYSTAR",
                "destinations": [{"to": to, "messageId": "N-42"}],
                "text": "Your loan was approved.",
            }
            | message
        ]
    }
