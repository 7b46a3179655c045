"""What the three SMS clients (Twilio, Africa's Talking, Infobip) share: one POST with connect
and read timeouts that turns a network failure into a TRANSIENT `SendResult` instead of an
exception, the generic class of an HTTP status, masking and small parsing helpers."""

import json
import logging
from decimal import Decimal, InvalidOperation
from typing import Any

import requests
import urllib3

from app.integrations.notify.base import Outcome, SendResult

log = logging.getLogger(__name__)

RESPONSE_LIMIT = 2000  # characters of a provider's answer kept in SendResult.response


def mask(value: str | None, visible: int = 0) -> str | None:
    """A secret fit for a repr: `***`, or its first `visible` characters then `***`."""
    if not value:
        return None
    return f"{value[:visible]}***" if visible and len(value) > visible * 3 else "***"


def truncate(text: str) -> str:
    return text if len(text) <= RESPONSE_LIMIT else text[:RESPONSE_LIMIT] + "…"


def json_body(response: requests.Response) -> Any:
    """The answer as JSON (floats as Decimal), or None when it is not JSON."""
    try:
        return json.loads(response.text, parse_float=Decimal)
    except ValueError:
        return None


def decimal_or_none(value: Any) -> Decimal | None:
    """A price as Decimal (Decimal(str(x)) for floats), or None when there is none."""
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def int_or_none(value: Any) -> int | None:
    try:
        number = int(str(value))
    except ValueError:
        return None
    return number if number > 0 else None


def _never_connected(exc: requests.exceptions.ConnectionError) -> bool:
    """Whether the connection failed before any byte of the request could have left."""
    if isinstance(exc, requests.exceptions.ConnectTimeout | requests.exceptions.SSLError):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(
        reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError
    )


def post(
    session: requests.Session,
    provider: str,
    url: str,
    timeout: tuple[float, float],
    **kwargs,
) -> requests.Response | SendResult:
    """The provider's response, or a TRANSIENT result when none came. `maybe_sent` is set when
    the request may have reached the provider (read timeout, connection dropped after sending),
    so the message may arrive although it was not accepted. A request that cannot be built (bad
    base URL) is a PROVIDER_FAULT."""
    try:
        return session.post(url, timeout=timeout, allow_redirects=False, **kwargs)
    except requests.exceptions.ReadTimeout:
        detail = f"No answer within {timeout[1]:g} s; the message may have been received."
        maybe_sent = True
    except requests.exceptions.ConnectionError as exc:
        maybe_sent = not _never_connected(exc)
        detail = (
            "The connection dropped after the message was sent; it may have been received."
            if maybe_sent
            else f"Could not connect to {provider}."
        )
    except (
        requests.exceptions.InvalidURL,
        requests.exceptions.MissingSchema,
        requests.exceptions.InvalidSchema,
        requests.exceptions.InvalidHeader,
        UnicodeError,
    ) as exc:
        # Our configuration (base URL, a credential that cannot go in a header): no retry helps.
        detail = f"Could not build the request to {provider}: {type(exc).__name__}."
        log.warning("%s: send failed: %s", provider, detail)
        return SendResult(Outcome.PROVIDER_FAULT, provider, detail=detail)
    except requests.exceptions.RequestException as exc:
        detail, maybe_sent = f"Could not send to {provider}: {type(exc).__name__}.", False
    log.warning("%s: send failed: %s", provider, detail)
    return SendResult(Outcome.TRANSIENT, provider, detail=detail, maybe_sent=maybe_sent)


def by_http_status(provider: str, response: requests.Response, detail: str) -> SendResult:
    """An answer no provider-specific rule matched: 429 and 5xx are TRANSIENT (try again or
    elsewhere); any other failure is ours to fix at this provider (PROVIDER_FAULT)."""
    status = response.status_code
    outcome = Outcome.TRANSIENT if status == 429 or status >= 500 else Outcome.PROVIDER_FAULT
    return answer(outcome, provider, response, detail)


def answer(
    outcome: Outcome, provider: str, response: requests.Response, detail: str, **fields
) -> SendResult:
    """A SendResult carrying the HTTP status and the (truncated) answer, logged in one line
    without the body (it may hold a phone number), at the outcome's log_level."""
    log.log(
        outcome.log_level,
        "%s: HTTP %s -> %s %s",
        provider,
        response.status_code,
        outcome.value,
        fields.get("provider_message_id") or "",
    )
    return SendResult(
        outcome,
        provider,
        detail=detail,
        response=truncate(response.text),
        http_status=response.status_code,
        **fields,
    )
