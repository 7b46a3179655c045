"""Prometheus metrics. API requests are counted and timed in each web process (shared between
gunicorn's processes through files when PROMETHEUS_MULTIPROC_DIR is set); everything that lives in
the database or Redis is read at scrape time, so every process reports the same figures."""

import logging
import os

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import func, select, text

from app.extensions import db
from app.jobs import QUEUES, get_queue, redis_client
from app.models import MpesaTransaction, Notification, WebhookDelivery
from app.services.health import alive_workers, short_error

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST
SCRAPE_STATEMENT_TIMEOUT_MS = 5000  # PostgreSQL: a slow count must not pile up scrapes

# This process's own metrics; in multi-process mode their values live in files instead and
# MultiProcessCollector reads every process's.
PROCESS_REGISTRY = CollectorRegistry()
API_REQUESTS = Counter(
    "daystar_api_requests",
    "Accounting API requests, by endpoint, method and HTTP status.",
    ["endpoint", "method", "status"],
    registry=PROCESS_REGISTRY,
)
API_LATENCY = Histogram(
    "daystar_api_request_duration_seconds",
    "Time to answer an accounting API request (until the response is handed to the server).",
    ["endpoint"],
    registry=PROCESS_REGISTRY,
)


def multiprocess_mode() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def observe_api_request(endpoint: str | None, method: str, status: int, seconds: float) -> None:
    """Count one API request and its duration. Never raises."""
    try:
        name = endpoint or "unmatched"
        API_REQUESTS.labels(name, method, str(status)).inc()
        API_LATENCY.labels(name).observe(max(0.0, seconds))
    except Exception:
        log.warning("could not record the API request metric", exc_info=True)


class StoredFiguresCollector:
    """What the database and Redis hold, read at scrape time: M-Pesa transactions, notifications
    and webhook deliveries (three grouped counts), RQ jobs by queue and state (one Redis round
    trip) and the workers alive; daystar_metrics_source_up says whether each source answered."""

    def collect(self):
        database_families, database_ok = _database_families()
        queue_families, redis_ok = _queue_families()
        yield from database_families
        yield from queue_families
        up = GaugeMetricFamily(
            "daystar_metrics_source_up",
            "1 when the source could be read for this scrape, 0 when it failed.",
            labels=["source"],
        )
        up.add_metric(["database"], int(database_ok))
        up.add_metric(["redis"], int(redis_ok))
        yield up


def _database_families() -> tuple[list, bool]:
    mpesa = GaugeMetricFamily(
        "daystar_mpesa_transactions",
        "M-Pesa transactions in the database, by type and status.",
        labels=["type", "status"],
    )
    notifications = GaugeMetricFamily(
        "daystar_notifications",
        "Notifications in the database, by channel, provider (none: not sent yet) and status.",
        labels=["channel", "provider", "status"],
    )
    webhooks = GaugeMetricFamily(
        "daystar_webhook_deliveries",
        "Webhook deliveries in the database, by outcome.",
        labels=["outcome"],
    )
    try:
        if db.engine.dialect.name == "postgresql":
            db.session.execute(text(f"SET LOCAL statement_timeout = {SCRAPE_STATEMENT_TIMEOUT_MS}"))
        for kind, status, count in _grouped(
            MpesaTransaction.transaction_type, MpesaTransaction.status
        ):
            mpesa.add_metric([kind, status], count)
        for channel, provider, status, count in _grouped(
            Notification.channel, Notification.provider, Notification.status
        ):
            notifications.add_metric([channel, provider or "none", status], count)
        for outcome, count in _grouped(WebhookDelivery.status):
            webhooks.add_metric([outcome], count)
    except Exception as exc:
        log.warning("metrics: the database could not be read: %s", short_error(exc))
        return [], False
    finally:
        _end_transaction()
    return [mpesa, notifications, webhooks], True


def _grouped(*columns):
    return db.session.execute(select(*columns, func.count()).group_by(*columns)).all()


def _end_transaction() -> None:
    try:
        db.session.rollback()  # ends the read (and its statement_timeout); nothing was written
    except Exception:
        log.debug("rollback after the metrics queries failed", exc_info=True)


# RQ's registries of a queue, by the state their jobs are in.
JOB_STATES = {
    "started": "started_job_registry",
    "scheduled": "scheduled_job_registry",
    "deferred": "deferred_job_registry",
    "failed": "failed_job_registry",
}


def _queue_families() -> tuple[list, bool]:
    jobs = GaugeMetricFamily(
        "daystar_rq_jobs",
        "RQ jobs by queue and state (queued: waiting to run; failed: in the failed registry).",
        labels=["queue", "state"],
    )
    workers = GaugeMetricFamily("daystar_rq_workers", "RQ workers alive (heartbeat).")
    try:
        connection = redis_client()
        connection.ping()  # fails at once when Redis is down (a pipeline retries with back-off)
        labels = []
        with connection.pipeline(transaction=False) as pipe:
            for queue in (get_queue(name) for name in QUEUES):
                pipe.llen(queue.key)
                labels.append([queue.name, "queued"])
                for state, registry in JOB_STATES.items():
                    pipe.zcard(getattr(queue, registry).key)
                    labels.append([queue.name, state])
            counts = pipe.execute()
        for label, count in zip(labels, counts, strict=True):
            jobs.add_metric(label, int(count))
        workers.add_metric([], len(alive_workers(connection)))
    except Exception as exc:
        log.warning("metrics: Redis could not be read: %s", short_error(exc))
        return [], False
    return [jobs, workers], True


class _ProcessMetrics:
    """This process's API metrics (single-process mode)."""

    def collect(self):
        return PROCESS_REGISTRY.collect()


def scrape() -> bytes:
    """The metrics page in Prometheus text format. Never raises for an unreachable database or
    Redis: their metrics are left out and daystar_metrics_source_up says which failed."""
    registry = CollectorRegistry()
    if multiprocess_mode():
        MultiProcessCollector(registry)
    else:
        registry.register(_ProcessMetrics())
    registry.register(StoredFiguresCollector())
    return generate_latest(registry)
