"""Secrets out of log text: known secret shapes, values under secret-sounding names, and the
secret values this process has seen (registered when decrypted or read from the configuration).

Used by the logging filter in app/logging_setup.py; has no Flask dependency, so any layer may
call register_secret()."""

import re
import threading
from collections.abc import Mapping
from urllib.parse import quote

MARK = "[REDACTED]"
MIN_SECRET_LENGTH = 8  # shorter registered values would blank out ordinary words
MAX_REGISTERED = 500

# A name whose value is a secret, once lower-cased and stripped of "_" and "-":
# password, db_passwd, consumer_secret, auth_token, api_key, passkey, SecurityCredential,
# Authorization, aws_secret_access_key, private_key, webhook_signing_key, consumer_key...
_SECRET_NAME_PARTS = (
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "apikey",
    "passkey",
    "credential",
    "authorization",
    "accesskey",
    "privatekey",
    "signingkey",
    "consumerkey",
)
# A secret-sounding word and the rest of its name (what precedes it is left as it is). Starting
# the match at the word, with bounded repeats, keeps the scan linear and cheap.
_NAME = r"(?:pass(?:word|wd|key)|pwd|secret|token|api[_-]?key|credential|authorization|(?:access|private|signing|consumer)[_-]?key)[\w.-]{0,40}"

# Each pattern's first group, when there is one, is kept; the rest becomes MARK.
_PATTERNS = [
    # PEM private keys (an M-Pesa certificate's key, a signing key).
    re.compile(
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)", re.S
    ),
    # A whole Authorization header value, whatever its scheme (Bearer, Basic, App, AWS4-HMAC...).
    re.compile(r"""(?i)((?:proxy-)?authorization["']?\s*[:=]\s*["']?)[^"'\r\n]+"""),
    # A credential after its scheme anywhere else: "Bearer abc...", "Basic dXNlcjpwYXNz"; the
    # digit, capital or +/= it must hold spares prose ("Basic validation failed").
    re.compile(
        r"(\b(?:Bearer|bearer|BEARER|Basic|BASIC)\s+)(?=.[\w.~+/=-]*?[0-9A-Z+/=])[\w.~+/=-]{8,}"
    ),
    # name=value, name: value, "name": "value", 'name': 'value' under a secret-sounding name.
    re.compile(
        rf"""(?i)({_NAME}["']?\s*[:=]\s*)(?!\[REDACTED\])(?:"[^"]*"|'[^']*'|[^\s"',;&}}\])]+)"""
    ),
    # The password in a URL: postgresql://user:password@host, redis://:password@host.
    re.compile(r"(?i)(\b[a-z][a-z0-9+.-]{0,30}://[^/\s:@]{0,256}:)[^@\s/]{1,256}(?=@)"),
    # Keys by their shapes, in one scan: our API keys (app.services.api_keys; the visible prefix
    # alone, dsk_live_ + 6, stays), SendGrid, Mailgun (old and new), Africa's Talking, AWS access
    # key ids, Standard Webhooks secrets, and JWTs (OAuth bearer tokens).
    re.compile(
        r"\b(?:dsk_[a-z]+_[A-Za-z0-9_-]{16,}"
        r"|SG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}"
        r"|key-[0-9a-z]{32}\b"
        r"|[0-9a-f]{32}-[0-9a-f]{8}-[0-9a-f]{8}\b"
        r"|atsk_[0-9a-f]{20,}"
        r"|(?:AKIA|ASIA)[0-9A-Z]{16}\b"
        r"|whsec_[A-Za-z0-9+/=]{16,}"
        r"|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+)"
    ),
]

_registered: dict[str, None] = {}  # insertion-ordered: the oldest go first past MAX_REGISTERED
_known: tuple[str, ...] = ()  # longest first, read without the lock
_lock = threading.Lock()


def register_secret(value) -> None:
    """From now on, `value` (and its URL-encoded form) is replaced by [REDACTED] in every log
    line of this process. Values under MIN_SECRET_LENGTH characters are ignored."""
    global _known
    if not isinstance(value, str) or len(value.strip()) < MIN_SECRET_LENGTH:
        return
    variants = {value.strip(), quote(value.strip(), safe="")}
    if all(v in _registered for v in variants):
        return
    with _lock:
        for variant in variants:
            _registered.pop(variant, None)
            _registered[variant] = None
        while len(_registered) > MAX_REGISTERED:
            _registered.pop(next(iter(_registered)))
        _known = tuple(sorted(_registered, key=len, reverse=True))


def forget_registered_secrets() -> None:
    """Drop every registered value (tests)."""
    global _known
    with _lock:
        _registered.clear()
        _known = ()


def is_secret_name(name) -> bool:
    """True for a key or field name whose value must never be logged."""
    if not isinstance(name, str):
        return False
    normal = name.lower().replace("_", "").replace("-", "")
    return any(part in normal for part in _SECRET_NAME_PARTS)


def _keep_first_group(match: re.Match) -> str:
    prefix = match.group(1) if match.re.groups else ""
    value = match.group(0)[len(prefix or "") :]
    quote_char = value[:1] if value[:1] in "\"'" and len(value) > 1 else ""
    return f"{prefix or ''}{quote_char}{MARK}{quote_char}"


def redact_text(text: str) -> str:
    """`text` with every secret the patterns or the registered values find replaced."""
    if not text:
        return text
    for value in _known:
        if value in text:
            text = text.replace(value, MARK)
    for pattern in _PATTERNS:
        text = pattern.sub(_keep_first_group, text)
    return text


def redact_value(value, depth: int = 0):
    """A copy of `value` with strings redacted and, in mappings, the value of every secret-named
    key replaced by [REDACTED]; other objects are returned as they are (their text is redacted
    once formatted)."""
    if depth > 8:
        return value
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, bytes):
        return redact_text(value.decode("utf-8", "replace"))
    if isinstance(value, Mapping):
        return {
            key: (
                MARK
                if is_secret_name(key) and value[key] not in (None, "")
                else redact_value(value[key], depth + 1)
            )
            for key in value
        }
    if isinstance(value, list | tuple | set | frozenset):
        items = [redact_value(item, depth + 1) for item in value]
        return items if isinstance(value, list | set | frozenset) else tuple(items)
    return value


def redact_field(name: str, value):
    """A log record's extra field: all of it when its name is secret-sounding."""
    if is_secret_name(name) and value not in (None, ""):
        return MARK
    return redact_value(value)
