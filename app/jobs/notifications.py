"""Notification jobs: they take ids and check the notification's state first, so running one
twice sends nothing twice."""

from app.jobs import try_enqueue
from app.services.notifications import (
    alerts,
    delivery,
    events,
    failed_jobs,
    receipt_batches,
    receipts,
    reminders,
)


def deliver(notification_id: int) -> None:
    """Send one pending notification through the providers of its channel, in order."""
    delivery.deliver(notification_id)


def apply_delivery_reports() -> int:
    """Apply the delivery reports the callback routes stored since the last run, in batches
    (receipt_batches: one such job at a time, enqueued by the first report); how many applied."""
    return receipt_batches.drain(receipts.apply_stored)


def send_due_notifications() -> int:
    """Every minute: notifications whose time has come (scheduled, held for quiet hours, or
    waiting for a retry) are enqueued; ones a dead worker left mid-send are failed, not resent;
    delivery reports whose batch was lost are applied."""
    delivery.abandon_stale_sending()
    receipts.apply_left_waiting()
    ids = delivery.due_ids()
    for notification_id in ids:
        try_enqueue(deliver, notification_id, queue="default")  # deliver() claims: never twice
    return len(ids)


def deliver_batch(notification_ids: list[int]) -> None:
    """Send each of a batch of stored notifications (a bulk run's) as deliver() does, reading the
    rules and the providers' settings once for the batch. One that raises does not stop the rest;
    the job then raises so that RQ retries it, and the retry finds the others done (each is
    claimed before any provider is called)."""
    delivery.deliver_many(notification_ids)


def notify_event(event_id: int) -> None:
    """Store and send the member's message for one outbox event (once, however often it runs)."""
    events.notify_for_event(event_id)


def send_repayment_reminders() -> int:
    """Daily: members whose instalments fall due in three days (the setting) are reminded, once
    a day however often this runs; how many notifications were stored."""
    return reminders.repayment_due().stored


def send_overdue_notices() -> int:
    """Daily: members with overdue instalments are told, on the days the settings list."""
    return reminders.overdue().stored


def send_contribution_reminders() -> int:
    """Weekly: active members who have not contributed since Monday are reminded."""
    return reminders.contribution().stored


def send_admin_alert(kind: str, message: str, details: dict, token: str) -> int:
    """Send one administrator alert by email and SMS, unless one of its kind went within the
    interval (then it is counted and mentioned in the next); how many notifications stored."""
    return len(alerts.alert_admins(kind, message, details, token))


def check_failed_jobs() -> int:
    """Every minute: alert the admins when at least the threshold of jobs failed within the
    window (each failure in one alert at most); how many failed in the window."""
    return failed_jobs.check().failed
