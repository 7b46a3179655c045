"""How each provider signs what it posts (notify.md §2.5, §5.4, §6.4, §7.5), done with the
sandbox's own keys. The tests verify these with independent code."""

import base64
import hashlib
import hmac

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa


def twilio_signature(auth_token: str, url: str, params: list[tuple[str, str]]) -> str:
    """X-Twilio-Signature: base64 HMAC-SHA1 over the full URL followed by each parameter name
    and value, names sorted, each name's distinct values sorted, no delimiters."""
    values: dict[str, set[str]] = {}
    for name, value in params:
        values.setdefault(name, set()).add(value)
    text = url + "".join(name + value for name in sorted(values) for value in sorted(values[name]))
    digest = hmac.new(auth_token.encode(), text.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def mailgun_signature(signing_key: str, timestamp: str, token: str) -> str:
    """Hex HMAC-SHA256 of the raw timestamp string followed by the token."""
    return hmac.new(signing_key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()


def sendgrid_signature(key: ec.EllipticCurvePrivateKey, timestamp: str, body: bytes) -> str:
    """Base64 DER ECDSA (P-256, SHA-256) signature over the timestamp header and the raw body."""
    return base64.b64encode(key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()


# The keys SNS signs, in this order, when present (SNS-PHP getStringToSign).
SNS_SIGNED_KEYS = (
    "Message",
    "MessageId",
    "Subject",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)


def sns_string_to_sign(envelope: dict) -> str:
    return "".join(f"{key}\n{envelope[key]}\n" for key in SNS_SIGNED_KEYS if key in envelope)


def sns_signature(key: rsa.RSAPrivateKey, envelope: dict, version: str) -> str:
    """Base64 RSA PKCS#1 v1.5 signature of the string to sign: SHA1 (v1) or SHA256 (v2)."""
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()  # noqa: S303 - SNS v1 is SHA1
    signature = key.sign(sns_string_to_sign(envelope).encode(), padding.PKCS1v15(), algorithm)
    return base64.b64encode(signature).decode()
