"""Periodic jobs, run by RQ's cron scheduler (`python worker.py --cron`, exactly one process).

Cron strings are read in the scheduler's local time: run it with TZ=Africa/Nairobi.
"""

from rq.cron import CronScheduler

from app.jobs.api import flush_api_request_log
from app.jobs.broadcasts import sweep_broadcasts
from app.jobs.events import sweep_outbox
from app.jobs.loans import mark_overdue_loans_defaulted
from app.jobs.mpesa import check_open_transactions, sweep_mpesa_callbacks
from app.jobs.notifications import (
    check_failed_jobs,
    send_contribution_reminders,
    send_due_notifications,
    send_overdue_notices,
    send_repayment_reminders,
)
from app.jobs.performance import roll_up_performance
from app.jobs.retention import apply_retention
from app.jobs.webhooks import sweep_webhook_deliveries

PERIODIC = (
    # Events committed while Redis was down are still dispatched.
    {"func": sweep_outbox, "queue_name": "high", "interval": 60},
    # Webhook deliveries whose job Redis lost, or whose worker died mid-attempt, are re-queued.
    {"func": sweep_webhook_deliveries, "queue_name": "default", "interval": 60},
    # M-Pesa callbacks stored while Redis was down are processed.
    {"func": sweep_mpesa_callbacks, "queue_name": "high", "interval": 60},
    # Notifications whose time has come (scheduled, after quiet hours, retries) are sent.
    {"func": send_due_notifications, "queue_name": "default", "interval": 60},
    # Broadcasts whose messages have all gone are finished; any whose job was lost restarts.
    {"func": sweep_broadcasts, "queue_name": "default", "interval": 60},
    # A burst of failed jobs (retries used up) alerts the administrators.
    {"func": check_failed_jobs, "queue_name": "high", "interval": 60},
    # Members whose instalments fall due in three days are reminded, each once a day (a second
    # run the same day stores nothing).
    {"func": send_repayment_reminders, "queue_name": "low", "cron": "0 9 * * *"},
    # Members with overdue instalments are told, on the days overdue the settings list.
    {"func": send_overdue_notices, "queue_name": "low", "cron": "15 9 * * *"},
    # Active members who have not contributed since Monday are reminded, on Fridays.
    {"func": send_contribution_reminders, "queue_name": "low", "cron": "0 10 * * 5"},
    # M-Pesa requests no callback settled are asked about (STK Query, Transaction Status).
    {"func": check_open_transactions, "queue_name": "default", "cron": "5 * * * *"},
    # Loans overdue by the configured number of days become `defaulted`, nightly.
    {"func": mark_overdue_loans_defaulted, "queue_name": "low", "cron": "30 0 * * *"},
    # API request log rows still buffered in Redis (the web processes flush as they go) are
    # written to the database.
    {"func": flush_api_request_log, "queue_name": "default", "interval": 60},
    # The minutes just over become performance rollup rows (API latency, callback
    # acknowledgements, job durations, notification delivery) for the Performance page.
    {"func": roll_up_performance, "queue_name": "low", "interval": 60},
    # Integration log entries, API request log rows and notification message bodies older than
    # their configured ages (DAYSTAR_*_RETENTION_DAYS) are deleted or blanked, nightly.
    {"func": apply_retention, "queue_name": "low", "cron": "15 2 * * *"},
)


def register_periodic_jobs(scheduler: CronScheduler) -> CronScheduler:
    for job in PERIODIC:
        scheduler.register(**job, job_timeout=600)
    return scheduler
