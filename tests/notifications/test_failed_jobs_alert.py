"""A burst of failed jobs alerts the administrators: real jobs fail in a real RQ worker (burst
SimpleWorker on the test Redis) and the periodic check reads RQ's failed-job registries."""

import time

import pytest
from rq.registry import FailedJobRegistry
from sqlalchemy import select

from app.extensions import db
from app.jobs import enqueue, get_queue
from app.jobs.notifications import check_failed_jobs
from app.jobs.schedule import PERIODIC
from app.models import Notification, Role
from app.services.notifications import failed_jobs
from tests import factories


def refuse_payment(reason: str) -> None:
    """A job that fails as a real one would: its exception propagates to RQ."""
    raise ValueError(reason)


def lose_record(key: str) -> None:
    raise KeyError(key)


@pytest.fixture
def alerting(app, monkeypatch):
    """One active admin, and an alert once 3 jobs failed within 15 minutes."""
    monkeypatch.setitem(
        app.config,
        "NOTIFY_OVERRIDES",
        {"failed_jobs_alert_threshold": "3", "failed_jobs_alert_window_minutes": "15"},
    )
    return factories.staff(Role.ADMIN, email="admin@daystar.co.ke")


def fail(run_jobs, *jobs) -> None:
    """Enqueue each (function, argument, queue) without retries and let the worker fail them."""
    for func, argument, queue in jobs:
        enqueue(func, argument, queue=queue, retry=None)
    run_jobs()


def alert_emails() -> list[Notification]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(Notification)
            .where(Notification.notification_type == "admin_alert")
            .order_by(Notification.id)
        )
    )


def failed_count() -> int:
    return sum(len(FailedJobRegistry(name, connection=get_queue(name).connection)) for name in ("high", "default", "low"))  # fmt: skip


def test_the_check_runs_every_minute_on_the_high_queue():
    [job] = [job for job in PERIODIC if job["func"] is check_failed_jobs]
    assert (job["interval"], job["queue_name"]) == (60, "high")


def test_failures_below_the_threshold_alert_nobody(alerting, run_jobs):
    fail(run_jobs, (refuse_payment, "one", "default"), (refuse_payment, "two", "low"))
    assert failed_count() == 2

    found = failed_jobs.check()

    assert (found.failed, found.alerted, found.per_queue) == (2, False, {"default": 1, "low": 1})
    assert alert_emails() == []


def test_a_burst_alerts_the_admins_with_counts_per_queue_and_the_common_errors(alerting, run_jobs):
    fail(
        run_jobs,
        (refuse_payment, "amount mismatch", "default"),
        (refuse_payment, "amount mismatch", "default"),
        (refuse_payment, "no such loan", "high"),
        (lose_record, "member 7", "low"),
    )

    enqueue(check_failed_jobs, queue="high")  # the periodic job, run by the worker
    run_jobs()

    [email] = alert_emails()
    assert email.recipient_contact == "admin@daystar.co.ke"
    assert email.subject == "[Daystar SACCO alert] A burst of failed background jobs"
    assert (
        "4 background jobs failed in the last 15 minutes (alert threshold 3): default 2, high 1, "
        "low 1. Most common errors: ValueError (3), KeyError (1)."
    ) in email.message
    assert "failed on queue default: 2" in email.message
    assert "error 1: ValueError (3)" in email.message


def test_failures_are_in_one_alert_only_and_a_second_burst_waits_for_the_interval(
    alerting, run_jobs, redis_conn
):
    fail(run_jobs, *[(refuse_payment, f"first {n}", "default") for n in range(3)])
    assert failed_jobs.check().alerted
    assert len(alert_emails()) == 1

    again = failed_jobs.check()  # the same failures: already reported
    assert (again.failed, again.alerted) == (0, False)

    fail(run_jobs, *[(lose_record, f"second {n}", "low") for n in range(3)])
    second = failed_jobs.check()
    assert (second.failed, second.alerted) == (3, True)
    assert len(alert_emails()) == 1  # held back: one alert of a kind per interval
    assert failed_jobs.check().failed == 0  # and not raised again every minute

    redis_conn.delete("daystar:notify:alert:failed_jobs")  # as if the interval had passed
    fail(run_jobs, *[(refuse_payment, f"third {n}", "high") for n in range(3)])
    assert failed_jobs.check().alerted
    emails = alert_emails()
    assert len(emails) == 2
    assert "high 3" in emails[1].message and "low" not in emails[1].message
    assert "1 similar alert in the last interval were not sent separately." in emails[1].message


def test_failures_older_than_the_window_do_not_count(alerting, run_jobs):
    fail(run_jobs, *[(refuse_payment, f"old {n}", "default") for n in range(3)])

    later = failed_jobs.check(now=time.time() + 16 * 60)

    assert (later.failed, later.alerted) == (0, False)
    assert alert_emails() == []


def test_failures_already_in_the_registry_when_the_check_first_runs_are_judged_by_their_time(
    alerting, run_jobs
):
    fail(run_jobs, *[(refuse_payment, f"n {n}", "default") for n in range(3)])
    # The check never ran while they failed; they failed within the window, so they count.
    assert failed_jobs.check().failed == 3


def test_a_threshold_of_zero_turns_the_alert_off(app, alerting, run_jobs):
    app.config["NOTIFY_OVERRIDES"]["failed_jobs_alert_threshold"] = "0"
    fail(run_jobs, *[(refuse_payment, f"n {n}", "default") for n in range(4)])

    assert failed_jobs.check().alerted is False
    assert alert_emails() == []


def test_a_stored_value_that_is_no_number_falls_back_to_the_default(app, alerting, run_jobs):
    app.config["NOTIFY_OVERRIDES"]["failed_jobs_alert_threshold"] = "ten"
    fail(run_jobs, *[(refuse_payment, f"n {n}", "default") for n in range(4)])

    found = failed_jobs.check()

    assert (found.threshold, found.failed, found.alerted) == (10, 4, False)
