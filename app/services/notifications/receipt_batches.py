"""Delivery receipts are applied by a job, not by the provider's request that brought them (the
callback pattern: store, answer, process behind). Receipts come two or more per message, so
rather than a job each, their ids go on a Redis list and one job at a time drains it in batches:
the first receipt after the list ran dry enqueues the job, the ones after it join its batches.

Nothing is lost with Redis: a receipt is committed before its id is pushed, and one whose id never
made it, or whose batch died with its job, is applied by the minute's sweep
(receipts.apply_left_waiting)."""

import logging
from collections.abc import Callable

from redis.exceptions import RedisError

from app.jobs import enqueue, redis_client

log = logging.getLogger(__name__)

TO_APPLY = "daystar:notify:receipts-to-apply"  # a list of receipt ids
DRAINING = "daystar:notify:receipts-draining"  # set while a drain job is queued or running
DRAINING_SECONDS = 60  # renewed at each batch: a job that died frees it within a minute
BATCH = 500
BATCHES_PER_RUN = 20
JOB = "app.jobs.notifications.apply_delivery_reports"


def schedule(receipt_ids: list[int]) -> None:
    """Have these stored receipts applied soon: pushed on the list, and the drain job enqueued
    unless one is queued or running already. A Redis failure is logged, not raised: the
    receipts are committed, and the sweep applies them."""
    if not receipt_ids:
        return
    try:
        redis = redis_client()
        with redis.pipeline() as pipe:
            pipe.rpush(TO_APPLY, *receipt_ids)
            pipe.set(DRAINING, 1, nx=True, ex=DRAINING_SECONDS)
            _, first = pipe.execute()
        if first:
            _enqueue_drain(redis)
    except RedisError as exc:
        log.warning("delivery reports %s left for the sweep: %s", receipt_ids[:10], exc)


def _enqueue_drain(redis) -> None:
    try:
        enqueue(JOB, queue="high")
    except RedisError:
        redis.delete(DRAINING)  # so that the next receipt tries again
        raise


def drain(apply: Callable[[list[int]], int]) -> int:
    """Take the list's ids a batch at a time and `apply` them until it is empty, or for at most
    BATCHES_PER_RUN batches, after which a new job takes the rest from behind the jobs queued
    meanwhile (an M-Pesa callback does not wait for a flood of reports); how many `apply`
    applied. A batch whose apply raises goes back on the list (RQ retries the job)."""
    redis = redis_client()
    applied = 0
    for _ in range(BATCHES_PER_RUN):
        batch = [int(receipt_id) for receipt_id in redis.lpop(TO_APPLY, BATCH) or ()]
        if not batch:
            redis.delete(DRAINING)
            # A receipt pushed after the empty pop and before the delete saw DRAINING still set
            # and enqueued no job: take it on again, unless a newer receipt enqueued one since.
            if not redis.llen(TO_APPLY) or not redis.set(DRAINING, 1, nx=True, ex=DRAINING_SECONDS):
                return applied
            continue
        redis.expire(DRAINING, DRAINING_SECONDS)
        try:
            applied += apply(batch)
        except Exception:
            redis.lpush(TO_APPLY, *reversed(batch))
            raise
    _enqueue_drain(redis)
    return applied
