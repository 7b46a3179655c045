"""Sends one signed webhook message the Standard Webhooks way, over HTTP with `requests`.

A plain client: it signs the exact bytes it sends, POSTs them once and reports what happened. It
knows nothing of the database, endpoints or retries.

Destinations are checked before any connection (every address the host resolves to must be
public) and again on the connected socket, so that a DNS answer that changes between the check
and the connection cannot point a webhook at the internal network.
"""

import base64
import hashlib
import hmac
import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
EXCERPT_BYTES = 1024
USER_AGENT = "Daystar-Webhooks/1.0"


class UnsafeDestination(Exception):
    """The URL may not be contacted: its scheme, its host, or an address that is not public."""


@dataclass(frozen=True)
class SendResult:
    """What one POST did: the HTTP status (None when no response came), how long it took, the
    first 1 KB of the response body, and the error when there was no response."""

    status_code: int | None
    duration_ms: int
    response_excerpt: str = ""
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of "id.timestamp.body">` keyed with the secret's decoded bytes."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: one space-separated signature per secret (rotation)."""
    return " ".join(sign(secret, message_id, timestamp, body) for secret in secrets)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip.sixtofour:
        return ip.sixtofour
    if ip.teredo:
        return ip.teredo[1]
    return None


def address_refusal(address: str) -> str | None:
    """Why an IP address may not receive webhooks (not public), or None when it may."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone (fe80::1%eth0) is dropped
    if ip.version == 6 and (inner := _embedded_ipv4(ip)) is not None:
        return address_refusal(str(inner))
    for kind, matches in (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),
    ):
        if matches:
            return f"{address} is a {kind} address"
    if not ip.is_global:
        return f"{address} is not a public address"
    return None


def check_destination(url: str, allow_private: bool = False) -> None:
    """Raise UnsafeDestination unless the URL may be contacted: https (http too when private
    destinations are allowed), and, unless allowed, every resolved address public."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeDestination(f"the URL is malformed ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme != "https" and not (allow_private and scheme == "http"):
        raise UnsafeDestination("the URL must start with https://")
    host = parts.hostname
    if not host:
        raise UnsafeDestination("the URL has no host")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(host, port or 443, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise UnsafeDestination(f"the host {host} does not resolve") from None
    for info in infos:
        reason = address_refusal(info[4][0])
        if reason:
            raise UnsafeDestination(f"{host} resolves to a non-public address: {reason}")


def _refuse_private_peer(sock: socket.socket) -> None:
    reason = address_refusal(sock.getpeername()[0])
    if reason:
        sock.close()
        raise UnsafeDestination(f"the connection reached a non-public address: {reason}")


class _PublicHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _refuse_private_peer(sock)
        return sock


class _PublicHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _refuse_private_peer(sock)  # before the TLS handshake sends anything
        return sock


class _PublicHTTPPool(HTTPConnectionPool):
    ConnectionCls = _PublicHTTPConnection


class _PublicHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _PublicHTTPSConnection


class PublicOnlyAdapter(HTTPAdapter):
    """A transport adapter whose connections refuse a peer that is not a public address."""

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _PublicHTTPPool,
            "https": _PublicHTTPSPool,
        }


def _session(allow_private: bool) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxy or .netrc credentials from the environment
    if not allow_private:
        session.mount("http://", PublicOnlyAdapter())
        session.mount("https://", PublicOnlyAdapter())
    return session


def _clean(text: str, limit: int) -> str:
    return text.replace("\x00", "")[:limit]  # PostgreSQL text cannot hold NUL


def send(
    url: str,
    message_id: str,
    body: bytes,
    secrets,
    *,
    timeout: float = 15,
    allow_private: bool = False,
    timestamp: int | None = None,
) -> SendResult:
    """POST `body` to `url` once, signed with each secret; never raises for network trouble
    (the result carries the error). Redirects are not followed: a 3xx is a failed attempt."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets, message_id, timestamp, body),
    }
    started = time.monotonic()

    def elapsed_ms() -> int:
        return round((time.monotonic() - started) * 1000)

    try:
        check_destination(url, allow_private)
        with (
            _session(allow_private) as session,
            session.post(
                url,
                data=body,
                headers=headers,
                timeout=timeout,
                allow_redirects=False,
                stream=True,
            ) as response,
        ):
            excerpt = response.raw.read(EXCERPT_BYTES, decode_content=True) or b""
            return SendResult(
                response.status_code,
                elapsed_ms(),
                _clean(excerpt.decode("utf-8", errors="replace"), EXCERPT_BYTES),
            )
    except UnsafeDestination as exc:
        return SendResult(None, elapsed_ms(), error=_clean(f"refused: {exc}", 300))
    except requests.Timeout:
        return SendResult(None, elapsed_ms(), error=f"no answer within {timeout:g} seconds")
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        return SendResult(None, elapsed_ms(), error=_clean(f"{type(exc).__name__}: {exc}", 300))
