"""A burst of failed jobs reaches the administrators: a periodic check reads RQ's failed-job
registries of the app's queues, remembers when each job there failed (in Redis, so each job is
read once), and when at least `failed_jobs_alert_threshold` jobs failed within the last
`failed_jobs_alert_window_minutes` (and after the previous alert) it sends one admin alert with
the count per queue and the most common exception types. Failures that were in one alert are
never counted again; alerts.alert_admins holds back a second one within its interval."""

import time
from collections import Counter
from dataclasses import dataclass, fields

from rq.job import Job
from rq.registry import FailedJobRegistry

from app.jobs import QUEUES, redis_client
from app.services.notifications import alerts, config

KIND = "failed_jobs"
SEEN = "daystar:failed-jobs:seen"  # sorted set: job id -> when it failed (epoch seconds)
REPORTED_UNTIL = "daystar:failed-jobs:reported-until"  # failures up to then were in an alert
MOST_COMMON = 5
READ_AT_MOST = 500  # jobs whose exception is read for one alert


@dataclass(frozen=True)
class Check:
    """What one check found: failures in the window not yet reported, and whether it alerted."""

    failed: int
    threshold: int
    window_minutes: int
    per_queue: dict
    exceptions: list
    alerted: bool = False


def _setting(settings: config.NotifySettings, name: str) -> int:
    """A whole-number setting; its default when the stored value is not one."""
    try:
        return int(str(getattr(settings, name)).strip())
    except ValueError:
        default = next(f.default for f in fields(config.NotifySettings) if f.name == name)
        return int(default)


def _failed_at(job: Job | None, fallback: float) -> float:
    ended = job.ended_at if job is not None else None
    return ended.timestamp() if ended is not None else fallback


def _record_failures(now: float) -> dict[str, str]:
    """The failed jobs of every queue (id -> queue); jobs new to the registry are remembered with
    the time they failed, jobs gone from it (expired, deleted, requeued) are forgotten."""
    redis = redis_client()
    failed = {}
    for name in QUEUES:
        for job_id in FailedJobRegistry(name, connection=redis).get_job_ids():
            failed[job_id] = name
    known = {job_id.decode(): score for job_id, score in redis.zrange(SEEN, 0, -1, withscores=True)}
    new = [job_id for job_id in failed if job_id not in known]
    gone = [job_id for job_id in known if job_id not in failed]
    with redis.pipeline() as pipe:
        if new:
            jobs = Job.fetch_many(new, connection=redis)
            pipe.zadd(
                SEEN, {job_id: _failed_at(job, now) for job_id, job in zip(new, jobs, strict=True)}
            )
        if gone:
            pipe.zrem(SEEN, *gone)
        pipe.execute()
    return failed


def _exception_type(job: Job | None) -> str:
    result = job.latest_result() if job is not None else None
    text = (getattr(result, "exc_string", None) or "").strip()
    if not text:
        return "unknown"
    last = text.splitlines()[-1]
    return last.split(":", 1)[0].strip()[:100] or "unknown"


def check(now: float | None = None) -> Check:
    """Count the jobs that failed within the window and were in no alert yet; alert the admins
    when there are at least the threshold (a threshold of 0 turns the alert off)."""
    now = time.time() if now is None else now
    settings = config.current()
    threshold = _setting(settings, "failed_jobs_alert_threshold")
    window_minutes = max(1, _setting(settings, "failed_jobs_alert_window_minutes"))
    failed = _record_failures(now)
    redis = redis_client()
    since = max(now - window_minutes * 60, float(redis.get(REPORTED_UNTIL) or 0))
    scored = [
        (job_id.decode(), failed_at)
        for job_id, failed_at in redis.zrangebyscore(SEEN, f"({since}", "+inf", withscores=True)
    ]
    recent = [job_id for job_id, _ in scored if job_id in failed]
    per_queue = dict(sorted(Counter(failed[job_id] for job_id in recent).items()))
    if threshold <= 0 or len(recent) < threshold:
        return Check(len(recent), threshold, window_minutes, per_queue, [])
    jobs = Job.fetch_many(recent[-READ_AT_MOST:], connection=redis)
    exceptions = Counter(_exception_type(job) for job in jobs).most_common(MOST_COMMON)
    queues = ", ".join(f"{name} {count}" for name, count in per_queue.items())
    errors = ", ".join(f"{name} ({count})" for name, count in exceptions)
    message = (
        f"{len(recent)} background jobs failed in the last {window_minutes} minutes "
        f"(alert threshold {threshold}): {queues}. Most common errors: {errors}."
    )
    details = {f"failed on queue {name}": count for name, count in per_queue.items()}
    details |= {f"error {rank}": f"{name} ({count})" for rank, (name, count) in enumerate(exceptions, 1)}  # fmt: skip
    alerts.alert_admins(KIND, message, details)
    # Sent or held back, these failures are accounted for: none of them counts again.
    redis.set(REPORTED_UNTIL, max(failed_at for _, failed_at in scored))
    return Check(len(recent), threshold, window_minutes, per_queue, exceptions, alerted=True)
