"""Failed jobs reach the integration log: a warning while RQ will retry, an error at the end."""

from rq import Retry, SimpleWorker
from sqlalchemy import select

from app.extensions import db
from app.jobs import QUEUES, enqueue, get_queue
from app.jobs.failures import record_job_failure
from app.models import Integration, IntegrationLogEntry, LogLevel


class ProviderExploded(RuntimeError):
    pass


def explode(notification_id: int) -> None:
    raise ProviderExploded(f"notification {notification_id}: the provider answered nonsense")


def run_with_handler(redis_conn) -> None:
    queues = [get_queue(name) for name in QUEUES]
    worker = SimpleWorker(queues, connection=redis_conn, exception_handlers=[record_job_failure])
    worker.work(burst=True)


def entries() -> list[IntegrationLogEntry]:
    db.session.expire_all()
    return list(db.session.scalars(select(IntegrationLogEntry).order_by(IntegrationLogEntry.id)))


def test_a_job_that_fails_for_good_is_an_error_grouped_by_its_exception(redis_conn):
    job = enqueue("tests.jobs.test_failures.explode", 7, retry=None)
    run_with_handler(redis_conn)
    [row] = entries()
    assert (row.event, row.level, row.error_kind, row.job_id, row.integration) == (
        "job.failed",
        LogLevel.ERROR,
        "ProviderExploded",
        job.id,
        Integration.JOBS,
    )
    assert "the provider answered nonsense" in row.message
    assert row.context["queue"] == "default"


def test_a_job_rq_will_retry_is_a_warning_first(redis_conn):
    enqueue("tests.jobs.test_failures.explode", 8, retry=Retry(max=1))
    run_with_handler(redis_conn)  # fails, retry scheduled at once (no interval)
    run_with_handler(redis_conn)
    assert [(r.event, r.level) for r in entries()] == [
        ("job.retrying", LogLevel.WARNING),
        ("job.failed", LogLevel.ERROR),
    ]
