"""What the three email clients (SendGrid, Mailgun, Amazon SES) share: one HTTP exchange that
turns a network failure into a `SendResult`, the generic status classes, masking, and small
parsing helpers for their webhooks. No provider knowledge lives here."""

import hmac
import logging
from collections.abc import Callable
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any, Protocol

import requests
import urllib3
from redis import Redis

from .base import Outcome, SendResult

log = logging.getLogger(__name__)

# The key under which our notification id travels: SendGrid custom_args, Mailgun `v:` variable,
# SES message tag (notify.md §8.2); every receipt brings it back.
REFERENCE_KEY = "notify_id"
RESPONSE_LIMIT = 2_000


def mask(value: str | None, visible: int = 0) -> str | None:
    """A secret as it may be shown: `***`, or its first `visible` characters when long enough."""
    if not value:
        return None
    return f"{value[:visible]}***" if visible and len(value) > visible * 3 else "***"


def masked_repr(config, masked: dict[str, int]) -> str:
    """`Name(field=value, ...)` with each field named in `masked` shown as `mask(value, n)`."""
    shown = []
    for item in fields(config):
        value = getattr(config, item.name)
        if item.name in masked:
            value = mask(value, masked[item.name])
        shown.append(f"{item.name}={value!r}")
    return f"{type(config).__name__}({', '.join(shown)})"


def truncate(text: str, limit: int = RESPONSE_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def never_connected(exc: requests.exceptions.ConnectionError) -> bool:
    """Whether the connection failed before any byte of the request could have left."""
    if isinstance(exc, requests.exceptions.ConnectTimeout | requests.exceptions.SSLError):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(
        reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError
    )


def exchange(
    provider: str,
    send: Callable[[], requests.Response],
    read_timeout: float,
) -> requests.Response | SendResult:
    """Runs one request; a network failure comes back as a TRANSIENT `SendResult` whose
    `maybe_sent` says whether the provider may have received the message."""
    try:
        return send()
    except requests.exceptions.ReadTimeout:
        failure = SendResult(
            Outcome.TRANSIENT,
            provider,
            detail=f"No answer within {read_timeout:g} s; the message may have been accepted.",
            maybe_sent=True,
        )
    except requests.exceptions.ConnectionError as exc:
        if never_connected(exc):
            failure = SendResult(Outcome.TRANSIENT, provider, detail="Could not connect.")
        else:
            failure = SendResult(
                Outcome.TRANSIENT,
                provider,
                detail="The connection dropped after the request was sent; "
                "it may have been accepted.",
                maybe_sent=True,
            )
    except requests.exceptions.RequestException as exc:
        # Raised before sending (a malformed URL, for instance): nothing left this process.
        failure = SendResult(
            Outcome.PROVIDER_FAULT, provider, detail=f"Could not send: {type(exc).__name__}."
        )
    # The exception text may carry the URL (never a credential: keys go in headers), so only
    # the outcome and our own wording are logged.
    log.warning("%s: %s (%s)", provider, failure.detail, failure.outcome.value)
    return failure


def generic_outcome(status: int) -> Outcome | None:
    """The outcome every provider shares for a status, or None when the body must decide."""
    if status == 429 or status >= 500:
        return Outcome.TRANSIENT
    if 300 <= status < 400 or status in (401, 403, 404):
        return Outcome.PROVIDER_FAULT  # a wrong URL, key or account: never the recipient
    return None


def result_from_response(
    provider: str,
    response: requests.Response,
    outcome: Outcome,
    detail: str,
    provider_message_id: str | None = None,
) -> SendResult:
    """A `SendResult` carrying the HTTP status and the (truncated) answer, logged in one line at
    the outcome's log_level."""
    log.log(
        outcome.log_level,
        "%s: HTTP %s -> %s%s",
        provider,
        response.status_code,
        outcome.value,
        f" ({provider_message_id})" if provider_message_id else "",
    )
    return SendResult(
        outcome,
        provider,
        provider_message_id=provider_message_id,
        detail=truncate(detail, 500),
        response=truncate(response.text or ""),
        http_status=response.status_code,
    )


def is_epoch_seconds(value: str) -> bool:
    return value.isascii() and value.isdigit()


def timestamp_to_datetime(value: Any) -> datetime | None:
    """An epoch (int, float or numeric string) or ISO-8601 time as an aware UTC datetime."""
    if value is None or value == "":
        return None
    try:
        return datetime.fromtimestamp(float(value), tz=UTC)
    except (TypeError, ValueError, OverflowError):
        pass
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def constant_time_equal(left: str, right: str) -> bool:
    return hmac.compare_digest(left.encode(), right.encode())


# --- one-time tokens (Mailgun's replay protection) --------------------------------------------


class UsedTokens(Protocol):
    """Remembers webhook tokens for a while; `remember` is True only the first time."""

    def remember(self, token: str, ttl_seconds: int) -> bool: ...


class RedisUsedTokens:
    """Used tokens in Redis (SET NX EX), so that every web process sees every token."""

    def __init__(self, redis: Redis, prefix: str = "notify:webhook-token:"):
        self.redis = redis
        self.prefix = prefix

    def remember(self, token: str, ttl_seconds: int) -> bool:
        return bool(self.redis.set(self.prefix + token, 1, nx=True, ex=max(1, ttl_seconds)))


def used_tokens_from(store: "UsedTokens | Redis") -> UsedTokens:
    """Accepts a Redis client or anything with `remember(token, ttl_seconds)`."""
    return RedisUsedTokens(store) if isinstance(store, Redis) else store
