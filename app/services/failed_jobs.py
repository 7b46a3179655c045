"""The jobs RQ gave up on: each queue's failed-job registry read for the Failed jobs page (what
ran, with which arguments, when it failed and why, with secrets redacted), and a person's retry
(the job goes back on its queue, as it was) or deletion of one job or of a whole queue's failed
jobs, each in the audit log."""

from dataclasses import dataclass
from datetime import datetime

from redis.exceptions import RedisError
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.registry import FailedJobRegistry

from app.extensions import db
from app.jobs import QUEUES, get_queue
from app.redaction import redact_text
from app.services import audit
from app.services.actor import Actor
from app.services.errors import NotFound

LIST_LIMIT = 100  # a queue's newest failed jobs shown; the count says how many there are
ARGS_LIMIT = 300
AUDIT_TARGET = "rq_job"
JOB_ID_MAX = 100


@dataclass(frozen=True)
class FailedJob:
    id: str
    queue: str
    function: str  # "" when the job's data is gone from Redis
    arguments: str  # the call's arguments as Python writes them, redacted and shortened
    failed_at: datetime | None
    exception: str  # the traceback's last line, redacted
    traceback: str  # the whole traceback, redacted

    @property
    def gone(self) -> bool:
        return not self.function


@dataclass(frozen=True)
class QueueFailures:
    queue: str
    count: int
    jobs: list[FailedJob]


def _registry(queue: str) -> FailedJobRegistry:
    if queue not in QUEUES:
        raise NotFound(f"There is no queue {queue[:20]}.")
    return get_queue(queue).failed_job_registry


def _arguments(job: Job) -> str:
    try:
        parts = [repr(a) for a in job.args]
        parts += [f"{k}={v!r}" for k, v in job.kwargs.items()]
    except Exception:  # noqa: BLE001 - a job whose arguments no longer load is still listed
        return "(the arguments cannot be read)"
    text = redact_text(", ".join(parts))
    return text if len(text) <= ARGS_LIMIT else text[: ARGS_LIMIT - 1] + "…"


def _describe(job_id: str, queue: str, job: Job | None) -> FailedJob:
    if job is None:
        return FailedJob(job_id, queue, "", "", None, "The job's data has expired.", "")
    result = job.latest_result()
    traceback = redact_text((getattr(result, "exc_string", None) or "").strip())
    lines = traceback.splitlines()
    return FailedJob(
        id=job.id,
        queue=queue,
        function=job.func_name or "",
        arguments=_arguments(job),
        failed_at=job.ended_at or (result.created_at if result else None),
        exception=lines[-1] if lines else "",
        traceback=traceback,
    )


def failures(queue: str, limit: int = LIST_LIMIT) -> QueueFailures:
    """A queue's failed jobs, the most recent failure first, at most `limit`."""
    registry = _registry(queue)
    ids = registry.get_job_ids(0, limit - 1, desc=True)
    jobs = Job.fetch_many(ids, connection=registry.connection) if ids else []
    return QueueFailures(
        queue=queue,
        count=registry.count,
        jobs=[_describe(job_id, queue, job) for job_id, job in zip(ids, jobs, strict=True)],
    )


def all_failures(limit: int = LIST_LIMIT) -> list[QueueFailures]:
    """Every queue's failed jobs (see failures())."""
    return [failures(name, limit) for name in QUEUES]


def _check_id(job_id: str) -> str:
    if not job_id or len(job_id) > JOB_ID_MAX:
        raise NotFound("Say which failed job.")
    return job_id


def get(queue: str, job_id: str) -> FailedJob:
    """One failed job with its whole traceback; NotFound unless it is in the queue's registry."""
    registry = _registry(queue)
    if _check_id(job_id) not in registry:
        raise NotFound("This job is not among the failed jobs (retried, deleted or expired).")
    try:
        job = Job.fetch(job_id, connection=registry.connection)
    except NoSuchJobError:
        job = None
    return _describe(job_id, queue, job)


def is_failed(queue: str, job_id: str) -> bool:
    """Whether the job is in the queue's failed registry (False when Redis cannot say)."""
    if queue not in QUEUES or not job_id or len(job_id) > JOB_ID_MAX:
        return False
    try:
        return job_id in _registry(queue)
    except RedisError:
        return False


def _audit(actor: Actor, action: str, queue: str, **details) -> None:
    audit.record(actor, action, AUDIT_TARGET, None, queue=queue, **details)
    db.session.commit()


def retry(queue: str, job_id: str, actor: Actor) -> FailedJob:
    """Put a failed job back on its queue (audited); NotFound when it is not failed (any more)
    or its data is gone."""
    job = get(queue, job_id)
    if job.gone:
        raise NotFound("This job's data has expired: it cannot run again. Delete it.")
    _registry(queue).requeue(job_id)
    _audit(actor, "job.retried", queue, job_id=job_id, function=job.function)
    return job


def delete(queue: str, job_id: str, actor: Actor) -> FailedJob:
    """Remove a failed job and its data for good (audited); NotFound when it is not failed."""
    job = get(queue, job_id)
    _remove(_registry(queue), job_id)
    _audit(actor, "job.deleted", queue, job_id=job_id, function=job.function)
    return job


def _remove(registry: FailedJobRegistry, job_id: str) -> bool:
    try:
        registry.remove(job_id, delete_job=True)
    except NoSuchJobError:
        return bool(registry.remove(job_id))  # the data is gone: drop the id alone
    return True


def retry_all(queue: str, actor: Actor) -> int:
    """Put every failed job of `queue` back on it (one audit entry); how many went. Jobs whose
    data is gone are left for deletion."""
    registry = _registry(queue)
    retried = 0
    for job_id in registry.get_job_ids():
        try:
            registry.requeue(job_id)
        except (InvalidJobOperation, NoSuchJobError):  # gone meanwhile, or its data expired
            continue
        retried += 1
    _audit(actor, "job.retried_all", queue, count=retried)
    return retried


def delete_all(queue: str, actor: Actor) -> int:
    """Remove every failed job of `queue` and its data (one audit entry); how many went."""
    registry = _registry(queue)
    deleted = sum(_remove(registry, job_id) for job_id in registry.get_job_ids())
    _audit(actor, "job.deleted_all", queue, count=deleted)
    return deleted
