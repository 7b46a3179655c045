"""Periodic jobs, run by RQ's cron scheduler (`python worker.py --cron`, exactly one process).

Cron strings are read in the scheduler's local time: run it with TZ=Africa/Nairobi.
"""

from rq.cron import CronScheduler

from app.jobs.api import flush_api_request_log, prune_api_request_log
from app.jobs.events import sweep_outbox
from app.jobs.loans import mark_overdue_loans_defaulted
from app.jobs.mpesa import check_open_transactions, sweep_mpesa_callbacks
from app.jobs.webhooks import sweep_webhook_deliveries

PERIODIC = (
    # Events committed while Redis was down are still dispatched.
    {"func": sweep_outbox, "queue_name": "high", "interval": 60},
    # Webhook deliveries whose job Redis lost, or whose worker died mid-attempt, are re-queued.
    {"func": sweep_webhook_deliveries, "queue_name": "default", "interval": 60},
    # M-Pesa callbacks stored while Redis was down are processed.
    {"func": sweep_mpesa_callbacks, "queue_name": "high", "interval": 60},
    # M-Pesa requests no callback settled are asked about (STK Query, Transaction Status).
    {"func": check_open_transactions, "queue_name": "default", "cron": "5 * * * *"},
    # Loans overdue by the configured number of days become `defaulted`, nightly.
    {"func": mark_overdue_loans_defaulted, "queue_name": "low", "cron": "30 0 * * *"},
    # API request log rows still buffered in Redis (the web processes flush as they go) are
    # written to the database.
    {"func": flush_api_request_log, "queue_name": "default", "interval": 60},
    # API request log rows older than DAYSTAR_API_LOG_RETENTION_DAYS are deleted, nightly.
    {"func": prune_api_request_log, "queue_name": "low", "cron": "45 1 * * *"},
)


def register_periodic_jobs(scheduler: CronScheduler) -> CronScheduler:
    for job in PERIODIC:
        scheduler.register(**job, job_timeout=600)
    return scheduler
