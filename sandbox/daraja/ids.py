"""Identifiers in the shapes Daraja uses (see the samples in shared/reference/mpesa/samples/)."""

import itertools
import secrets
import string
from datetime import datetime

from sandbox.daraja.clock import now

_counter = itertools.count(1_000_000)
_RECEIPT_CHARS = string.digits + string.ascii_uppercase


def _hex(n: int) -> str:
    return secrets.token_hex((n + 1) // 2)[:n]


def request_id() -> str:
    """Like "1c5b-4ba8-815c-ac45c57a3db01495926"."""
    return f"{_hex(4)}-{_hex(4)}-{_hex(4)}-{_hex(12)}{next(_counter)}"


def merchant_request_id() -> str:
    """Like "2654-4b64-97ff-b827b542881d3130"."""
    return request_id()


def originator_conversation_id() -> str:
    """Like "6e86-45dd-91ac-fd5d4178ab523408729" (Daraja makes one when the caller does not)."""
    return request_id()


def checkout_request_id(phone: str, at: datetime | None = None) -> str:
    """Like "ws_CO_17112022155730304796440427": ws_CO_ + DDMMYYYYHHMMSS + milliseconds + MSISDN
    without the country code."""
    at = at or now()
    return f"ws_CO_{at:%d%m%Y%H%M%S}{at.microsecond // 1000:03d}{phone[3:]}"


def conversation_id(at: datetime | None = None) -> str:
    """Like "AG_20240706_20106e9209f64bebd05b"."""
    at = at or now()
    return f"AG_{at:%Y%m%d}_{_hex(20)}"


def receipt(at: datetime | None = None) -> str:
    """A 10-character M-Pesa receipt like "SG632NMUAB": year letter (2024 = S), month letter
    (A = January), day (1-9, then A-V), then 7 random characters."""
    at = at or now()
    year = chr(min(ord("Z"), ord("S") + at.year - 2024))
    month = chr(ord("A") + at.month - 1)
    day = _RECEIPT_CHARS[at.day]
    tail = "".join(secrets.choice(_RECEIPT_CHARS) for _ in range(7))
    return f"{year}{month}{day}{tail}"


def short_originator_id() -> str:
    """Like "16917-22577599-3", the style of Transaction Status and Account Balance ids."""
    return f"{secrets.randbelow(90000) + 10000}-{secrets.randbelow(90_000_000) + 10_000_000}-{secrets.randbelow(9) + 1}"


def query_transaction_id(at: datetime | None = None) -> str:
    """Like "OA90000000": a receipt's date prefix and zeros, what queries carry as TransactionID."""
    return receipt(at)[:3] + "0000000"
