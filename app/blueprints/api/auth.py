"""The accounting API's gate: HTTPS only (when configured), API-key authentication, the key's
IP allow-list, its rate limit (Flask-Limiter), permission checks, and the request log."""

import logging
import math
import time
from functools import wraps

from flask import current_app, g, make_response, request
from flask_limiter import RateLimitExceeded

from app.blueprints.api import BASE_PATH, COMPAT_PATH, bp
from app.blueprints.api.errors import problem
from app.extensions import limiter
from app.models import ActorType
from app.models.base import utcnow
from app.services import api_keys, api_log
from app.services.actor import Actor

log = logging.getLogger(__name__)

API_PREFIXES = (BASE_PATH, COMPAT_PATH)
RATE_LIMIT_SCOPE = "api-key"  # one counter per key, shared by every endpoint and both prefixes


def is_api_request() -> bool:
    """True for any path under either API prefix (routed or not)."""
    path = request.path
    return any(path == prefix or path.startswith(prefix + "/") for prefix in API_PREFIXES)


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


# --- rate limit ---------------------------------------------------------------------------------


@limiter.request_filter
def _not_api_request() -> bool:
    """The limiter applies to the API only: the portal is never limited (nor slowed by Redis)."""
    return not is_api_request()


def _key_rate_limit() -> str:
    key = g.get("api_key")
    per_minute = (key.rate_limit_per_minute if key is not None else None) or current_app.config[
        "DAYSTAR_API_RATE_LIMIT_PER_MINUTE"
    ]
    return f"{per_minute}/minute"


def _key_identity() -> str:
    key = g.get("api_key")
    # The visible prefix beside the id: a restored or re-seeded database never inherits the
    # counter of another key that had the same id.
    return f"{key.id}-{key.prefix}" if key is not None else ""


_per_key_limit = limiter.shared_limit(
    _key_rate_limit, scope=RATE_LIMIT_SCOPE, key_func=_key_identity
)


def rate_limit_headers(retry_after: bool = False) -> dict[str, str]:
    """RateLimit-Limit/-Remaining/-Reset (IETF draft: Reset is seconds from now) for the limit
    this request was counted against, and Retry-After when asked; {} when none applies."""
    current = limiter.current_limit
    if current is None:
        return {}
    try:
        reset_time, remaining = current.window
        reset_in = max(0, math.ceil(reset_time - time.time()))
        headers = {
            "RateLimit-Limit": str(current.limit.amount),
            "RateLimit-Remaining": str(max(0, remaining)),
            "RateLimit-Reset": str(reset_in),
            "RateLimit-Policy": f"{current.limit.amount};w={current.limit.get_expiry()}",
        }
    except Exception as exc:  # the storage failed after the check: answer without the headers
        log.warning("could not read the rate-limit window: %s", exc)
        return {"Retry-After": "60"} if retry_after else {}
    if retry_after:
        headers["Retry-After"] = str(max(1, reset_in))
    return headers


def _too_many_requests():
    headers = rate_limit_headers(retry_after=True)
    limit = headers.get("RateLimit-Limit", "its")
    return problem(
        429,
        "Too Many Requests",
        f"This API key may make {limit} requests a minute; retry after "
        f"{headers['Retry-After']} seconds.",
        type_="rate-limited",
        headers=headers,
    )


# --- authentication and permissions -------------------------------------------------------------


def _unauthorized(detail: str, token_sent: bool):
    challenge = 'Bearer realm="daystar-accounting"'
    if token_sent:
        challenge += ', error="invalid_token"'
    return problem(
        401, "Unauthorized", detail, type_="unauthorized", headers={"WWW-Authenticate": challenge}
    )


def require_permission(permission: str):
    """The view runs only for a usable key holding `permission`, from an allowed address, within
    its rate limit: otherwise 401 (with WWW-Authenticate), 403 naming the address or the
    permission, or 429 with Retry-After. The key is `g.api_key`."""

    def decorator(view):
        @wraps(view)
        def permitted(*args, **kwargs):
            if permission not in g.api_key.permissions:
                return problem(
                    403,
                    "Forbidden",
                    f"This API key lacks the '{permission}' permission.",
                    type_="missing-permission",
                )
            return view(*args, **kwargs)

        # Every authenticated request counts against the key's limit, permitted or not.
        limited = _per_key_limit(permitted)

        @wraps(view)
        def wrapped(*args, **kwargs):
            token = bearer_token()
            try:
                key = api_keys.authenticate(token)
            except api_keys.ApiAuthError as exc:
                return _unauthorized(exc.message, token_sent=token is not None)
            g.api_key = key
            if not api_keys.ip_allowed(key, request.remote_addr):
                return problem(
                    403,
                    "Forbidden",
                    f"The address {request.remote_addr} is not allowed to use this API key "
                    "(it is not on the key's IP allow-list).",
                    type_="ip-not-allowed",
                )
            try:
                return make_response(limited(*args, **kwargs))
            except RateLimitExceeded:
                return _too_many_requests()

        wrapped.required_api_permission = permission
        return wrapped

    return decorator


def api_actor() -> Actor:
    """The key making this request, for the audit log."""
    key = g.api_key
    return Actor(ActorType.API_KEY, f"{key.name} ({key.prefix}…)", key.id, request.remote_addr)


# --- HTTPS and the request log ------------------------------------------------------------------


@bp.before_app_request
def _api_gate():
    """API requests only: start the clock; refuse plain HTTP when API_REQUIRE_HTTPS is set."""
    if not is_api_request():
        return None
    g.api_started = time.perf_counter()
    if current_app.config["API_REQUIRE_HTTPS"] and not request.is_secure:
        return problem(
            403,
            "HTTPS required",
            "This API answers only over HTTPS: use https:// (your key may have been exposed "
            "on the way; consider rotating it).",
            type_="https-required",
        )
    return None


@bp.after_app_request
def _api_finish(response):
    """API requests only: add the rate-limit headers and arrange for the request to be logged
    (buffered, see api_log.log_request) once the response has been sent. Never fails the
    response."""
    if not is_api_request():
        return response
    try:
        if g.get("api_key") is not None and "RateLimit-Limit" not in response.headers:
            response.headers.update(rate_limit_headers())
        _log_when_sent(response)
    except Exception:
        log.warning("could not prepare the API request log entry", exc_info=True)
    return response


class _ByteCounter:
    """Wraps a streamed body to count the bytes actually sent."""

    def __init__(self, iterable):
        self.iterable = iterable
        self.total = 0

    def __iter__(self):
        for chunk in self.iterable:
            self.total += len(chunk if isinstance(chunk, bytes) else chunk.encode())
            yield chunk

    def close(self):
        if hasattr(self.iterable, "close"):
            self.iterable.close()


def _log_when_sent(response) -> None:
    app = current_app._get_current_object()
    started = g.get("api_started") or time.perf_counter()
    key = g.get("api_key")
    fields = {
        "method": request.method,
        "path": request.path,
        "query": request.query_string.decode("utf-8", "replace"),
        "status": response.status_code,
        "ip": request.remote_addr,
        "user_agent": request.headers.get("User-Agent", ""),
        "api_key_id": key.id if key is not None else None,
    }
    # The callback must not refer to the response: a cycle would keep a half-read streamed body
    # (and the contexts it holds) alive until the garbage collector happens to run.
    counter = size = None
    if response.is_streamed:
        counter = response.response = _ByteCounter(response.response)
    else:
        size = response.calculate_content_length() or 0

    def write() -> None:
        try:
            entry = api_log.RequestRecord(
                **fields,
                duration_ms=round((time.perf_counter() - started) * 1000),
                response_size=counter.total if counter is not None else size,
                created_at=utcnow(),
            )
            with app.app_context():
                api_log.log_request(entry)
        except Exception:
            log.warning("could not write the API request log", exc_info=True)

    response.call_on_close(write)
