"""Periodic jobs, run by RQ's cron scheduler (`python worker.py --cron`, exactly one process).

Cron strings are read in the scheduler's local time: run it with TZ=Africa/Nairobi.
"""

from rq.cron import CronScheduler

from app.jobs.events import sweep_outbox
from app.jobs.loans import mark_overdue_loans_defaulted

PERIODIC = (
    # Events committed while Redis was down are still dispatched.
    {"func": sweep_outbox, "queue_name": "high", "interval": 60},
    # Loans overdue by the configured number of days become `defaulted`, nightly.
    {"func": mark_overdue_loans_defaulted, "queue_name": "low", "cron": "30 0 * * *"},
)


def register_periodic_jobs(scheduler: CronScheduler) -> CronScheduler:
    for job in PERIODIC:
        scheduler.register(**job, job_timeout=600)
    return scheduler
