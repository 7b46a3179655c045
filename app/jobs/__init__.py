"""RQ plumbing: the Redis connection, the queues, and the one enqueue() helper every caller uses."""

import logging

from flask import current_app
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError

log = logging.getLogger(__name__)

QUEUES = ("high", "default", "low")
DEFAULT_RETRY = Retry(max=5, interval=[10, 30, 60, 300, 900])
DEFAULT_TIMEOUT = 300


def init_redis(app) -> None:
    """Give the app its Redis client (short timeouts: a dead Redis must not hang a web request)."""
    app.extensions["redis"] = Redis.from_url(
        app.config["REDIS_URL"], socket_connect_timeout=2, socket_timeout=5
    )


def redis_client() -> Redis:
    return current_app.extensions["redis"]


def get_queue(name: str = "default") -> Queue:
    if name not in QUEUES:
        raise ValueError(f"unknown queue {name!r}")
    return Queue(name, connection=redis_client(), is_async=current_app.config["RQ_ASYNC"])


def enqueue(
    func,
    *args,
    queue: str = "default",
    job_id: str | None = None,
    retry=DEFAULT_RETRY,
    timeout: int = DEFAULT_TIMEOUT,
):
    """Enqueue `func(*args)` (ids only). With a job_id the job is unique: a second enqueue while the
    first still exists is a no-op and returns None."""
    try:
        return get_queue(queue).enqueue(
            func,
            *args,
            job_id=job_id,
            unique=job_id is not None,
            retry=retry,
            job_timeout=timeout,
            failure_ttl=30 * 86400,
        )
    except DuplicateJobError:
        return None


def try_enqueue(func, *args, **kwargs):
    """enqueue(), but a Redis outage is logged instead of raised: for work a sweep will redo."""
    try:
        return enqueue(func, *args, **kwargs)
    except RedisError as exc:
        log.warning("could not enqueue %s%r: %s", getattr(func, "__name__", func), args, exc)
        return None
