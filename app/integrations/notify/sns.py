"""Amazon SNS HTTP(S) messages (how SES delivery notifications arrive): full signature
verification and subscription confirmation, per ../shared/reference/notify.md §7.4-7.5.

`SnsVerifier.verify(raw_body)` returns the message only when all of these hold:
1. `Type` is Notification, SubscriptionConfirmation or UnsubscribeConfirmation and every field
   that type signs is present;
2. the `TopicArn` is on our allow-list (a valid signature only proves that *some* topic signed
   it; checked first because it costs nothing and spares a certificate fetch);
3. `SigningCertURL` is `https://sns.<region>.amazonaws.com[.cn]/....pem` — checked *before*
   anything is fetched ("on amazonaws.com" is not enough: S3 buckets live there too);
4. the certificate (fetched once per URL, then cached) is currently valid and its RSA key
   verifies `Signature` over the canonical string with SHA1 (SignatureVersion 1) or SHA256 (2).
Any failure raises WebhookRejected. The certificate fetcher is injectable for tests, but it is
only ever handed a URL that passed the check in 3.
"""

import base64
import binascii
import json
import logging
import re
import threading
from collections.abc import Callable, Iterable, MutableMapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .base import WebhookRejected
from .session import USER_AGENT

log = logging.getLogger(__name__)

# SNS-PHP's default host pattern (notify.md §7.5).
SNS_HOST = re.compile(r"^sns\.[a-zA-Z0-9\-]{3,}\.amazonaws\.com(\.cn)?$")
MESSAGE_TYPES = ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation")
# The keys each type signs, in the byte order of their names.
NOTIFICATION_KEYS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
CONFIRMATION_KEYS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)
HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}  # noqa: S303 (SignatureVersion 1 is SHA1)
MAX_CERTIFICATE_BYTES = 64 * 1024
CERTIFICATE_CACHE_SIZE = 32
FETCH_TIMEOUT = (5.0, 10.0)

_certificates: dict[str, x509.Certificate] = {}
_certificates_lock = threading.Lock()


def is_sns_url(url: str, *, pem: bool = False) -> bool:
    """Whether `url` is https on an SNS endpoint host (and, with `pem`, names a .pem file)."""
    if not isinstance(url, str):
        return False
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    host = parts.hostname or ""
    return (
        parts.scheme == "https"
        # No user info and no port: the netloc must be exactly the host.
        and parts.netloc.lower() == host
        and port is None
        and bool(SNS_HOST.match(host))
        and (not pem or parts.path.endswith(".pem"))
    )


def fetch_over_https(url: str) -> bytes:
    """The body of a 200 answer to a GET of an already-checked SNS URL: TLS verified (requests'
    default), no redirects followed, at most 64 KiB."""
    response = requests.get(
        url,
        timeout=FETCH_TIMEOUT,
        allow_redirects=False,
        headers={"User-Agent": USER_AGENT},
        stream=True,
    )
    with response:
        if response.status_code != 200:  # a redirect too: it could lead off SNS
            raise ValueError(f"HTTP {response.status_code}")
        content = response.raw.read(MAX_CERTIFICATE_BYTES + 1, decode_content=True)
    if len(content) > MAX_CERTIFICATE_BYTES:
        raise ValueError("certificate too large")
    return content


def string_to_sign(message: dict) -> bytes:
    """The canonical text SNS signs: `key\\nvalue\\n` for each signed key that is present."""
    keys = NOTIFICATION_KEYS if message.get("Type") == "Notification" else CONFIRMATION_KEYS
    # The parsed JSON string values: escapes such as \\n are already unescaped (SNS-DOC).
    return "".join(
        f"{key}\n{message[key]}\n" for key in keys if message.get(key) is not None
    ).encode()


class SnsVerifier:
    """Verifies SNS messages for the allowed topics (see the module docstring)."""

    def __init__(
        self,
        allowed_topics: Iterable[str],
        *,
        fetch_certificate: Callable[[str], bytes] = fetch_over_https,
        certificate_cache: MutableMapping[str, x509.Certificate] | None = None,
        clock: Callable[[], datetime] | None = None,
    ):
        self.allowed_topics = frozenset(allowed_topics)
        self.fetch_certificate = fetch_certificate
        self.cache = _certificates if certificate_cache is None else certificate_cache
        self.clock = clock or (lambda: datetime.now(UTC))

    def verify(
        self, raw_body: bytes | str | dict, *, message_type_header: str | None = None
    ) -> dict:
        """The verified SNS message; raises WebhookRejected unless every check passes."""
        message = _parse(raw_body)
        kind = message.get("Type")
        if kind not in MESSAGE_TYPES:
            raise WebhookRejected("Not an SNS message type we accept.")
        if message_type_header is not None and message_type_header != kind:
            raise WebhookRejected("x-amz-sns-message-type does not match the body's Type.")
        required = NOTIFICATION_KEYS if kind == "Notification" else CONFIRMATION_KEYS
        missing = [
            key
            for key in (*required, "Signature", "SignatureVersion", "SigningCertURL")
            if key != "Subject" and not isinstance(message.get(key), str)
        ]
        if missing:
            raise WebhookRejected(f"SNS message lacks {', '.join(missing)}.")
        if message["TopicArn"] not in self.allowed_topics:
            raise WebhookRejected("SNS topic is not on the allow-list.")
        algorithm = HASHES.get(message["SignatureVersion"])
        if algorithm is None:
            raise WebhookRejected("Unknown SNS SignatureVersion.")
        url = message["SigningCertURL"]
        if not is_sns_url(url, pem=True):
            raise WebhookRejected("SigningCertURL is not an https SNS .pem URL.")
        certificate = self._certificate(url)
        now = self.clock()
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            raise WebhookRejected("The SNS signing certificate is not currently valid.")
        key = certificate.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise WebhookRejected("The SNS signing certificate does not hold an RSA key.")
        try:
            signature = base64.b64decode(message["Signature"], validate=True)
            key.verify(signature, string_to_sign(message), padding.PKCS1v15(), algorithm())
        except (binascii.Error, ValueError, InvalidSignature) as exc:
            raise WebhookRejected("SNS signature does not match.") from exc
        return message

    def _certificate(self, url: str) -> x509.Certificate:
        with _certificates_lock:
            cached = self.cache.get(url)
        if cached is not None:
            return cached
        try:
            certificate = x509.load_pem_x509_certificate(self.fetch_certificate(url))
        except (requests.RequestException, ValueError) as exc:
            log.warning("sns: could not load the signing certificate %s (%s)", url, exc)
            raise WebhookRejected("Could not load the SNS signing certificate.") from exc
        with _certificates_lock:
            if len(self.cache) >= CERTIFICATE_CACHE_SIZE:
                self.cache.pop(next(iter(self.cache)))
            self.cache[url] = certificate
        return certificate


def _parse(raw_body: bytes | str | dict) -> dict:
    # SNS posts JSON as text/plain (§7.4): callers pass the raw bytes, not request.get_json().
    if isinstance(raw_body, dict):
        return raw_body
    try:
        message: Any = json.loads(raw_body)
    except (TypeError, ValueError) as exc:
        raise WebhookRejected("SNS body is not JSON.") from exc
    if not isinstance(message, dict):
        raise WebhookRejected("SNS body is not a JSON object.")
    return message


def confirm_subscription(
    message: dict,
    *,
    fetch: Callable[[str], bytes] = fetch_over_https,
) -> bool:
    """Confirms a *verified* SubscriptionConfirmation by GETting its SubscribeURL, whose host is
    checked like the certificate's; True when SNS answered. Raises WebhookRejected when the
    message is not a confirmation or the URL is not an https SNS endpoint."""
    if message.get("Type") != "SubscriptionConfirmation":
        raise WebhookRejected("Not a SubscriptionConfirmation.")
    url = message.get("SubscribeURL")
    if not is_sns_url(url):
        raise WebhookRejected("SubscribeURL is not an https SNS URL.")
    try:
        fetch(url)
    except (requests.RequestException, ValueError) as exc:
        log.warning("sns: confirming %s failed (%s)", message.get("TopicArn"), exc)
        return False
    log.info("sns: confirmed the subscription to %s", message.get("TopicArn"))
    return True
