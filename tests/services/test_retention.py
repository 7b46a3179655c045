"""Retention: integration log entries and API request log rows past their ages are deleted, old
finished notifications lose their bodies but keep their row and status, batch by batch, and a
second run finds nothing to do. The nightly job runs it through a real RQ worker."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.jobs import enqueue
from app.jobs.retention import apply_retention
from app.jobs.schedule import PERIODIC
from app.models import ApiRequestLog, IntegrationLogEntry, Notification
from app.services import retention

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def ages(app, monkeypatch):
    """The defaults, stated: 180 days of log, 90 of API requests, 365 of message bodies."""
    for name, days in (("DAYSTAR_INTEGRATION_LOG_RETENTION_DAYS", 180),
                       ("DAYSTAR_API_LOG_RETENTION_DAYS", 90),
                       ("DAYSTAR_NOTIFICATION_BODY_RETENTION_DAYS", 365)):  # fmt: skip
        monkeypatch.setitem(app.config, name, days)


def days_ago(days: float, now: datetime = NOW) -> datetime:
    return now - timedelta(days=days)


def log_entry(age_days: float) -> IntegrationLogEntry:
    row = IntegrationLogEntry(integration="mpesa", level="info", event="mpesa.test",
                              message=f"{age_days} days old", context={"age": age_days},
                              created_at=days_ago(age_days))  # fmt: skip
    db.session.add(row)
    return row


def api_request(age_days: float) -> ApiRequestLog:
    row = ApiRequestLog(method="GET", path="/api/accounting/v1/loans", status=200, duration_ms=5,
                        created_at=days_ago(age_days))  # fmt: skip
    db.session.add(row)
    return row


def notification(age_days: float, status: str = "delivered") -> Notification:
    row = Notification(notification_type="statement", channel="email", status=status,
                       subject="Your statement", message="Balance KES 1,000.00",
                       html_message="<p>Balance</p>", provider_response='{"id": "abc"}',
                       recipient_contact="member@example.co.ke", created_at=days_ago(age_days))  # fmt: skip
    db.session.add(row)
    return row


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_the_defaults_are_configured(app):
    assert app.config["DAYSTAR_INTEGRATION_LOG_RETENTION_DAYS"] == 180
    assert app.config["DAYSTAR_NOTIFICATION_BODY_RETENTION_DAYS"] == 365


def test_each_kind_goes_at_its_own_age_and_a_rerun_does_nothing(db, ages):
    kept_entries = [log_entry(1), log_entry(179.9)]
    for age in (180.1, 200, 1000):
        log_entry(age)
    kept_requests = [api_request(0), api_request(89)]
    for age in (91, 400):
        api_request(age)
    recent = notification(364)
    old = [notification(366, "delivered"), notification(500, "failed"),
           notification(400, "skipped"), notification(370, "sent")]  # fmt: skip
    waiting = notification(400, "pending")  # may still be sent: keeps its body
    db.session.commit()

    pruned = retention.apply(now=NOW)
    assert pruned == retention.Pruned(integration_log=3, api_requests=2, notification_bodies=4)
    db.session.expire_all()
    left = db.session.scalars(select(IntegrationLogEntry.id).order_by(IntegrationLogEntry.id))
    assert list(left) == [row.id for row in kept_entries]
    assert {r.id for r in db.session.scalars(select(ApiRequestLog))} == {
        r.id for r in kept_requests
    }
    for row in old:
        db.session.refresh(row)
        assert (row.message, row.html_message, row.provider_response) == ("", None, None)
    assert [row.status for row in old] == ["delivered", "failed", "skipped", "sent"]  # kept
    assert old[0].subject == "Your statement" and old[0].recipient_contact  # the row stays
    for row in (recent, waiting):
        db.session.refresh(row)
        assert row.message == "Balance KES 1,000.00" and row.html_message == "<p>Balance</p>"
    assert count(Notification) == 6

    assert retention.apply(now=NOW) == retention.Pruned()  # idempotent


def test_work_goes_in_batches(db, ages):
    for n in range(5):
        log_entry(200 + n)
        notification(400 + n)
    log_entry(1)
    db.session.commit()
    cutoff = retention.cutoff("DAYSTAR_INTEGRATION_LOG_RETENTION_DAYS", NOW)
    assert cutoff == NOW - timedelta(days=180)
    sizes = [retention.prune_integration_log_batch(cutoff, 2) for _ in range(4)]
    assert sizes == [2, 2, 1, 0]  # each batch its own short transaction
    body_cutoff = retention.cutoff("DAYSTAR_NOTIFICATION_BODY_RETENTION_DAYS", NOW)
    sizes = [retention.blank_notification_bodies_batch(body_cutoff, 2) for _ in range(4)]
    assert sizes == [2, 2, 1, 0]
    assert count(IntegrationLogEntry) == 1


def test_apply_runs_batches_until_done(db, ages, monkeypatch):
    for n in range(7):
        log_entry(181 + n)
    db.session.commit()
    calls = []
    batch = retention.prune_integration_log_batch
    monkeypatch.setattr(retention, "prune_integration_log_batch",
                        lambda before, size: calls.append(size) or batch(before, size))  # fmt: skip
    assert retention.apply(now=NOW, batch_size=3).integration_log == 7
    assert calls == [3, 3, 3]
    assert count(IntegrationLogEntry) == 0


def test_an_age_of_zero_keeps_for_ever(db, app, ages, monkeypatch):
    monkeypatch.setitem(app.config, "DAYSTAR_INTEGRATION_LOG_RETENTION_DAYS", 0)
    monkeypatch.setitem(app.config, "DAYSTAR_NOTIFICATION_BODY_RETENTION_DAYS", 0)
    log_entry(5000)
    notification(5000)
    db.session.commit()
    assert retention.apply(now=NOW) == retention.Pruned()
    assert count(IntegrationLogEntry) == 1


def test_the_nightly_job_prunes_through_a_worker(db, ages, run_jobs):
    now = datetime.now(UTC)
    db.session.add_all([
        IntegrationLogEntry(integration="jobs", level="error", event="job.failed", message="old",
                            context={}, created_at=days_ago(181, now)),
        IntegrationLogEntry(integration="jobs", level="error", event="job.failed", message="new",
                            context={}, created_at=days_ago(1, now)),
    ])  # fmt: skip
    db.session.commit()
    job = enqueue(apply_retention, queue="low")
    run_jobs()
    assert job.return_value() == {"integration_log": 1, "api_requests": 0,
                                  "notification_bodies": 0}  # fmt: skip
    assert [e.message for e in db.session.scalars(select(IntegrationLogEntry))] == ["new"]
    [entry] = [job for job in PERIODIC if job["func"] is apply_retention]
    assert entry["queue_name"] == "low" and entry["cron"] == "15 2 * * *"
