"""A short-lived cache of the dashboard's figures, shared by every web process through Redis.

Each card's figures are computed at most once per `ttl` seconds however many dashboards poll:
when they go stale, the one process that wins a Redis lock recomputes them while the others go on
answering with the stale copy for a little longer. When Redis cannot be reached the figures are
kept in this process instead, so a dead Redis makes the dashboard neither break nor count from
scratch on every poll; after a Redis error this process leaves Redis alone for a few seconds, so
that an unreachable Redis costs one timeout, not one per card."""

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from redis.exceptions import RedisError

from app.jobs import redis_client

log = logging.getLogger(__name__)

PREFIX = "daystar:dashboard:"
STALE_FOR_TTLS = 10  # a stale copy may be served for this many TTLs while one process refreshes
LOCK_SECONDS = 10  # longest a refresh may hold the lock before another process may try
REDIS_PAUSE_SECONDS = 5  # after a Redis error, this process uses its own copies for this long


@dataclass(frozen=True)
class Cached:
    figures: Any
    computed_at: datetime


_local: dict[str, tuple[float, Cached]] = {}  # name -> (fresh until, epoch seconds; the copy)
_redis_paused_until = 0.0


def forget() -> None:
    """Drop this process's copies and its Redis pause (tests; a settings change)."""
    global _redis_paused_until
    _local.clear()
    _redis_paused_until = 0.0


def _encode(value):
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    raise TypeError(f"cannot cache a {type(value).__name__}")


def _decode(obj: dict):
    if obj.keys() == {"$decimal"}:
        return Decimal(obj["$decimal"])
    if obj.keys() == {"$datetime"}:
        return datetime.fromisoformat(obj["$datetime"])
    return obj


def dumps(figures, computed_at: datetime, fresh_until: float) -> str:
    """The figures (a dataclass of JSON values, Decimals and datetimes) as cached text."""
    body = {"figures": asdict(figures), "at": computed_at, "fresh_until": fresh_until}
    return json.dumps(body, default=_encode)


def loads(text: str | bytes, figures_class) -> tuple[Cached, float]:
    """(the cached copy, when it goes stale) from `dumps`'s text."""
    body = json.loads(text, object_hook=_decode)
    return Cached(figures_class(**body["figures"]), body["at"]), body["fresh_until"]


def _read(text, figures_class) -> tuple[Cached | None, float]:
    """The cached copy in `text`, or None when there is none or it no longer fits the figures'
    class (cached by the previous release, say)."""
    if text is None:
        return None, 0.0
    try:
        return loads(text, figures_class)
    except (ValueError, TypeError, KeyError):
        return None, 0.0


def _redis():
    return None if time.monotonic() < _redis_paused_until else redis_client()


def _pause_redis(exc: Exception) -> None:
    global _redis_paused_until
    _redis_paused_until = time.monotonic() + REDIS_PAUSE_SECONDS
    log.warning("dashboard cache: Redis unreachable, using this process's copies: %s", exc)


def get(name: str, compute: Callable[[], Any], figures_class, ttl: float) -> Cached:
    """The figures of `name`: a fresh cached copy, else a stale one while another process
    refreshes it, else `compute()`d now (and cached for `ttl` seconds)."""
    now = time.time()
    key, lock = f"{PREFIX}{name}", f"{PREFIX}{name}:refresh"
    redis = _redis()
    if redis is not None:
        try:
            cached, fresh_until = _read(redis.get(key), figures_class)
            if cached is not None and (
                fresh_until > now or not redis.set(lock, "1", nx=True, ex=LOCK_SECONDS)
            ):
                return cached
        except RedisError as exc:
            _pause_redis(exc)
            redis = None
    if redis is None:
        local = _local.get(name)
        if local is not None and local[0] > now:
            return local[1]
    cached = Cached(compute(), datetime.now(UTC))
    if redis is not None:
        try:
            text = dumps(cached.figures, cached.computed_at, now + ttl)
            redis.set(key, text, ex=max(1, int(ttl * STALE_FOR_TTLS)))
            redis.delete(lock)
            return cached
        except RedisError as exc:
            _pause_redis(exc)
    _local[name] = (now + ttl, cached)
    return cached
