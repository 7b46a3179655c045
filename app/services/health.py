"""Readiness: is the database answering, is Redis answering, is at least one RQ worker alive.
Each check reports instead of raising, so a readiness probe never fails with a 500."""

import logging
from dataclasses import asdict, dataclass

from rq import Worker
from sqlalchemy import text

from app.extensions import db
from app.jobs import redis_client
from app.redaction import redact_text

log = logging.getLogger(__name__)

ERROR_CHARS = 200


@dataclass
class Check:
    ok: bool
    error: str | None = None
    count: int | None = None  # workers alive, for the worker check

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


def short_error(exc: BaseException) -> str:
    """The exception's kind and the first line of its message, redacted and clipped."""
    lines = str(exc).strip().splitlines()
    text_ = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return redact_text(text_)[:ERROR_CHARS]


def check_database() -> Check:
    """SELECT 1 on the app's database."""
    try:
        db.session.execute(text("SELECT 1"))
        return Check(ok=True)
    except Exception as exc:
        _rollback()
        return Check(ok=False, error=short_error(exc))


def _rollback() -> None:
    try:
        db.session.rollback()
    except Exception:
        log.debug("rollback after a failed health check failed too", exc_info=True)


def check_redis() -> Check:
    """PING on the app's Redis."""
    try:
        redis_client().ping()
        return Check(ok=True)
    except Exception as exc:
        return Check(ok=False, error=short_error(exc))


def alive_workers(connection=None) -> list[Worker]:
    """The RQ workers whose registration has not expired: each worker refreshes it with its
    heartbeat, so a worker that died stops counting once its key expires (worker_ttl)."""
    return Worker.all(connection=connection or redis_client())


def check_workers(redis_ok: bool = True) -> Check:
    """At least one RQ worker is alive."""
    if not redis_ok:
        return Check(ok=False, error="unknown: Redis is unreachable", count=0)
    try:
        count = len(alive_workers())
    except Exception as exc:
        return Check(ok=False, error=short_error(exc), count=0)
    if count == 0:
        return Check(ok=False, error="no RQ worker is alive (start one: python worker.py)", count=0)
    return Check(ok=True, count=count)


def readiness() -> tuple[bool, dict]:
    """(all ok, {"database": ..., "redis": ..., "workers": ...}), each {"ok", "error"?}."""
    redis = check_redis()
    checks = {"database": check_database(), "redis": redis, "workers": check_workers(redis.ok)}
    ready = all(check.ok for check in checks.values())
    if not ready:
        failing = {name: check.error for name, check in checks.items() if not check.ok}
        log.warning("not ready: %s", failing)
    return ready, {name: check.as_dict() for name, check in checks.items()}
