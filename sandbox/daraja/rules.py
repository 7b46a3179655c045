"""The field rules Daraja applies to each request, raising its exact error for the first field
that breaks one (mpesa.md §2.1, §4.1, §6, §7.1). Each checker returns the normalised value."""

import base64
import binascii
import re
from datetime import datetime
from urllib.parse import urlsplit

from sandbox.daraja.errors import WRONG_CREDENTIALS, error, invalid

MSISDN = re.compile(r"254[71]\d{8}")
SHORTCODE = re.compile(r"\d{5,7}")
WHOLE_NUMBER = re.compile(r"\d+(\.0+)?")
WHITESPACE = re.compile(r"\s")
STK_TRANSACTION_TYPES = ("CustomerPayBillOnline", "CustomerBuyGoodsOnline")
B2C_COMMAND_IDS = ("BusinessPayment", "SalaryPayment", "PromotionPayment")
C2B_COMMAND_IDS = ("CustomerPayBillOnline", "CustomerBuyGoodsOnline")
C2B_RESPONSE_TYPES = ("Completed", "Cancelled")
# Words Daraja refuses in C2B URLs (mpesa.md §7.1); longest first so the message names the word.
C2B_FORBIDDEN_WORDS = (
    "m-pesa",
    "safaricom",
    "requestbin",
    "mockbin",
    "mpesa",
    "ngrok",
    "query",
    "exec",
    "exe",
    "cmd",
    "sql",
)


def text(body: dict, key: str) -> str:
    """A field as text (Daraja accepts numbers for most fields), '' when missing or null."""
    value = body.get(key)
    if value is None or isinstance(value, bool | dict | list):
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def shortcode(body: dict, key: str) -> str:
    value = text(body, key)
    if not SHORTCODE.fullmatch(value):
        raise invalid(key)
    return value


def msisdn(body: dict, key: str) -> str:
    value = text(body, key)
    if not MSISDN.fullmatch(value):
        raise invalid(key)
    return value


def amount(body: dict, key: str = "Amount", maximum: int | None = None) -> int:
    """A whole number of shillings from 1 up to `maximum`."""
    raw = body.get(key)
    if isinstance(raw, bool) or raw is None:
        raise invalid(key)
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, float) and raw.is_integer():
        value = int(raw)
    elif isinstance(raw, str) and WHOLE_NUMBER.fullmatch(raw.strip()):
        value = int(raw.strip().split(".")[0])
    else:
        raise invalid(key)
    if value < 1 or (maximum is not None and value > maximum):
        raise invalid(key)
    return value


def url(body: dict, key: str, error_code: str = "400.002.02") -> str:
    """An absolute http(s) URL without spaces (loopback http is fine in the sandbox)."""
    raw = body.get(key)
    value = raw if isinstance(raw, str) else ""
    if not value or WHITESPACE.search(value):
        raise invalid(key, error_code)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise invalid(key, error_code)
    return value


def c2b_url(body: dict, key: str) -> str:
    """A C2B URL: valid, and without the words Daraja refuses."""
    value = url(body, key, "400.003.02")
    lowered = value.lower()
    for word in C2B_FORBIDDEN_WORDS:
        if word in lowered:
            raise invalid(key, "400.003.02", f"URL has the word {word.upper()}")
    return value


def length(body: dict, key: str, minimum: int, maximum: int) -> str:
    value = text(body, key)
    if not minimum <= len(value) <= maximum:
        raise invalid(key)
    return value


def choice(body: dict, key: str, allowed: tuple[str, ...]) -> str:
    value = text(body, key)
    if value not in allowed:
        raise invalid(key)
    return value


def timestamp(body: dict, key: str = "Timestamp") -> datetime:
    value = text(body, key)
    try:
        if len(value) != 14:
            raise ValueError(value)
        return datetime.strptime(value, "%Y%m%d%H%M%S")
    except ValueError:
        raise invalid(key) from None


def stk_password(shortcode_value: str, passkey: str, timestamp_value: str) -> str:
    """Daraja's formula: base64(shortcode + passkey + timestamp)."""
    return base64.b64encode(f"{shortcode_value}{passkey}{timestamp_value}".encode()).decode()


def check_stk_password(body: dict, shortcode_value: str, passkey: str) -> None:
    """Password must decode to shortcode + passkey + the body's Timestamp, else 'Wrong credentials'."""
    password = text(body, "Password")
    if not password:
        raise invalid("Password")
    try:
        decoded = base64.b64decode(password, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise error(WRONG_CREDENTIALS) from None
    if decoded != f"{shortcode_value}{passkey}{text(body, 'Timestamp')}":
        raise error(WRONG_CREDENTIALS)


def security_credential(body: dict, key: str = "SecurityCredential") -> bytes:
    """The credential's ciphertext: base64 of exactly one RSA-2048 block (256 bytes)."""
    value = text(body, key)
    try:
        ciphertext = base64.b64decode(value, validate=True)
    except binascii.Error:
        raise invalid(key) from None
    if len(ciphertext) != 256:
        raise invalid(key)
    return ciphertext
