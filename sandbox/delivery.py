"""Callbacks the sandbox sends: one POST (a JSON body, or exact bytes with their own headers, as
the notification providers sign them), recorded with the receiver's answer."""

import itertools
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import requests
import simplejson


@dataclass
class Delivery:
    id: int
    provider: str
    kind: str
    url: str
    body: object  # the JSON document sent (Decimals kept exact)
    reference: str = ""  # the transaction it belongs to
    copy: int = 1  # 2 for the second copy of a duplicated callback
    dropped: bool = False  # recorded but deliberately never sent (a "lost" callback)
    sent_at: str = ""
    status_code: int | None = None
    response_body: str = ""
    error: str = ""
    duration_ms: float | None = None
    meta: dict = field(default_factory=dict)
    headers: dict = field(default_factory=dict)  # request headers sent, besides requests' own
    raw: str | None = None  # the exact body text when it is not `encode(body)` (forms, SNS)

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    def response_json(self):
        """The receiver's answer parsed as JSON, or None when it was not JSON."""
        try:
            return simplejson.loads(self.response_body)
        except ValueError:
            return None

    def to_dict(self) -> dict:
        data = asdict(self)
        # exactly what was (or would have been) sent
        data["body_text"] = self.raw if self.raw is not None else encode(self.body)
        data["body"] = simplejson.loads(encode(self.body))
        data["ok"] = self.ok
        return data


def encode(body) -> str:
    """JSON text for a callback body; Decimals keep their digits (1.00 stays 1.00)."""
    return simplejson.dumps(body, use_decimal=True)


class DeliveryLog:
    """Every delivery made since the last reset, in order, shared by all providers."""

    def __init__(self):
        self._lock = threading.Lock()
        self._items: list[Delivery] = []
        self._ids = itertools.count(1)

    def new(self, **fields) -> Delivery:
        with self._lock:
            delivery = Delivery(id=next(self._ids), **fields)
            self._items.append(delivery)
            return delivery

    def all(self, provider: str | None = None) -> list[Delivery]:
        with self._lock:
            return [d for d in self._items if provider is None or d.provider == provider]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def post_json(delivery: Delivery, timeout: float) -> Delivery:
    """POSTs the delivery's body as `application/json` and records status, body and timing;
    a connection error or time-out is recorded, never raised."""
    started = time.monotonic()
    delivery.sent_at = datetime.now(UTC).isoformat(timespec="milliseconds")
    try:
        response = requests.post(
            delivery.url,
            data=encode(delivery.body).encode(),
            headers={"Content-Type": "application/json"},
            timeout=timeout,
        )
        delivery.status_code = response.status_code
        delivery.response_body = response.text[:10_000]
    except requests.RequestException as exc:
        delivery.error = f"{type(exc).__name__}: {exc}"[:1000]
    delivery.duration_ms = round((time.monotonic() - started) * 1000, 1)
    return delivery


_sessions = threading.local()


def _session() -> requests.Session:
    """One keep-alive session per thread: receipts come by the thousand (bench/notify.py)."""
    if not hasattr(_sessions, "session"):
        _sessions.session = requests.Session()
    return _sessions.session


def post_raw(delivery: Delivery, data: bytes, timeout: float) -> Delivery:
    """POSTs exactly `data` with the delivery's headers (a signed body must reach the receiver
    byte for byte) and records status, body and timing; errors are recorded, never raised."""
    started = time.monotonic()
    delivery.sent_at = datetime.now(UTC).isoformat(timespec="milliseconds")
    try:
        response = _session().post(
            delivery.url, data=data, headers=delivery.headers, timeout=timeout
        )
        delivery.status_code = response.status_code
        delivery.response_body = response.text[:10_000]
    except requests.RequestException as exc:
        delivery.error = f"{type(exc).__name__}: {exc}"[:1000]
    delivery.duration_ms = round((time.monotonic() - started) * 1000, 1)
    return delivery
