"""A circuit breaker per provider, in Redis so every worker sees it: after `threshold` failures
within `window` seconds the provider is skipped for `cooling_off` seconds, then tried again (one
success closes it). If Redis is unreachable the breaker is simply closed: messages still go."""

import contextlib
import logging

from redis.exceptions import RedisError

from app.jobs import redis_client

log = logging.getLogger(__name__)

PREFIX = "daystar:notify:circuit:"


def _keys(provider: str) -> tuple[str, str]:
    return f"{PREFIX}{provider}:failures", f"{PREFIX}{provider}:open"


def is_open(provider: str) -> bool:
    """Whether the provider is cooling off and should be skipped now."""
    try:
        return bool(redis_client().exists(_keys(provider)[1]))
    except RedisError:
        return False


def record_failure(provider: str, threshold: int, window: int, cooling_off: int) -> bool:
    """Count a failure; open the circuit when the threshold is reached. True when it opened."""
    failures, opened = _keys(provider)
    try:
        pipe = redis_client().pipeline()
        pipe.incr(failures)
        pipe.expire(failures, window, nx=True)
        count = pipe.execute()[0]
        if count >= threshold:
            redis_client().set(opened, count, ex=cooling_off)
            redis_client().delete(failures)
            log.warning("%s failed %s times: skipped for %s s", provider, count, cooling_off)
            return True
    except RedisError as exc:
        log.warning("circuit breaker for %s not updated: %s", provider, exc)
    return False


def record_success(provider: str) -> None:
    with contextlib.suppress(RedisError):  # an unreachable Redis leaves the breaker closed
        redis_client().delete(*_keys(provider))
