"""Administrator alerts: to every active admin by email and to the alert phones by SMS, after
the commit of the work that raised them, at most one of a kind per interval."""

from decimal import Decimal

from sqlalchemy import select

from app.extensions import db
from app.jobs import get_queue
from app.models import Notification, Role
from app.services import webhook_deliveries, webhooks
from app.services.notifications import alerts
from tests import factories
from tests.mpesa.conftest import callback_path, sample, sample_bytes, sent_stk
from tests.services.mpesa.statement_data import mpesa_transaction, nairobi, paid_in, statement

SYSTEM = factories.SYSTEM


def _alerts() -> list[Notification]:
    return list(
        db.session.scalars(
            select(Notification)
            .where(Notification.notification_type == "admin_alert")
            .order_by(Notification.id)
        )
    )


def test_an_alert_reaches_every_active_admin_by_email_and_the_alert_phones_by_sms(app, monkeypatch):
    monkeypatch.setitem(
        app.config, "NOTIFY_OVERRIDES", {"admin_alert_phones": "0712 345 678, not-a-number"}
    )
    first = factories.staff(Role.ADMIN)
    second = factories.staff(Role.ADMIN)
    retired = factories.staff(Role.ADMIN)
    retired.active = False
    factories.staff(Role.LOAN_OFFICER)
    db.session.commit()

    rows = alerts.alert_admins(
        "mpesa_mismatch", "STK payment 7 held: amount KES 1.00 instead of KES 500.00.",
        {"transaction": 7, "receipt": "NLJ7RT61SV"},
    )  # fmt: skip

    assert [(r.channel, r.recipient_contact) for r in rows] == [
        ("email", first.email),
        ("email", second.email),
        ("sms", "254712345678"),
    ]
    for row in rows:
        assert (row.recipient_id, row.priority, row.template) == (None, "high", "admin_alert")
    email, sms = rows[0], rows[2]
    assert email.subject == "[Daystar SACCO alert] M-Pesa payment does not match our request"
    assert "receipt: NLJ7RT61SV\ntransaction: 7" in email.message
    assert "Sent to the administrators" in email.html_message
    assert sms.message == (
        "Daystar SACCO ALERT: M-Pesa payment does not match our request. "
        "STK payment 7 held: amount KES 1.00 instead of KES 500.00."
    )
    queued = sorted(job.args for job in get_queue("high").get_jobs())
    assert queued == sorted((row.id,) for row in rows)  # each send enqueued, at high priority


def test_a_burst_sends_one_alert_per_kind_and_interval_and_counts_the_rest(redis_conn):
    factories.staff(Role.ADMIN)
    assert len(alerts.alert_admins("mpesa_mismatch", "First")) == 1
    assert alerts.alert_admins("mpesa_mismatch", "Second") == []
    assert alerts.alert_admins("mpesa_mismatch", "Third") == []
    assert len(alerts.alert_admins("webhook_endpoint_disabled", "Another kind")) == 1
    redis_conn.delete("daystar:notify:alert:mpesa_mismatch")  # as if the interval had passed
    (later,) = alerts.alert_admins("mpesa_mismatch", "Fourth")
    assert "2 similar alerts in the last interval were not sent separately." in later.message
    assert [r.message.split("\n\n")[1] for r in _alerts()] == ["First", "Another kind", "Fourth"]


def test_a_retried_alert_job_is_not_held_back_by_its_own_slot():
    factories.staff(Role.ADMIN)
    assert len(alerts.alert_admins("mpesa_mismatch", "Once", token="abc")) == 1
    # The job ran again (say it failed after storing): its own slot lets it in, and the dedupe
    # keys keep it from storing the messages twice.
    assert alerts.alert_admins("mpesa_mismatch", "Once", token="abc") == []
    assert len(_alerts()) == 1


def test_raise_alert_waits_for_the_commit_and_forgets_a_rollback(run_jobs):
    admin = factories.staff(Role.ADMIN)
    admin.full_name = "Changed, then rolled back"
    db.session.flush()
    alerts.raise_alert("webhook_endpoint_disabled", "Rolled back", {})
    db.session.rollback()
    alerts.raise_alert("webhook_endpoint_disabled", "Committed", {"endpoint": 3})
    assert [job for job in get_queue("high").get_jobs() if "alert" in job.id] == []
    db.session.commit()
    (job,) = [job for job in get_queue("high").get_jobs() if job.id.startswith("admin-alert-")]
    assert job.args[:3] == ("webhook_endpoint_disabled", "Committed", {"endpoint": 3})
    run_jobs()
    assert [(r.recipient_contact, r.message.split("\n\n")[1]) for r in _alerts()] == [
        (admin.email, "Committed")
    ]


def test_a_disabled_webhook_endpoint_alerts_the_admins(run_jobs):
    admin = factories.staff(Role.ADMIN)
    endpoint, _ = webhooks.register_endpoint("http://127.0.0.1:9/hooks", ["member.created"], SYSTEM)
    webhooks.mark_disabled(endpoint, SYSTEM, "The endpoint answered 410 Gone.")
    db.session.commit()
    webhook_deliveries.notify_staff_endpoint_disabled(endpoint.id)
    run_jobs()
    (row,) = _alerts()
    assert row.recipient_contact == admin.email
    assert row.subject == "[Daystar SACCO alert] Webhook endpoint disabled"
    assert f"Webhook endpoint {endpoint.id} (127.0.0.1) was disabled" in row.message
    assert "The endpoint answered 410 Gone." in row.message


def test_an_mpesa_amount_mismatch_alerts_the_admins(client, member, mpesa_settings, run_jobs):
    admin = factories.staff(Role.ADMIN)
    txn = sent_stk(member, sample("stk_callback_success.json"), amount=Decimal("500"))
    answer = client.post(
        callback_path("stk"),
        data=sample_bytes("stk_callback_success.json"),
        content_type="application/json",
    )
    assert answer.status_code == 200
    run_jobs()
    (row,) = _alerts()
    assert row.recipient_contact == admin.email
    assert (
        f"STK payment {txn.id} held: The callback does not match our request: amount KES 1.00 "
        "instead of KES 500.00." in row.message
    )
    assert "receipt: NLJ7RT61SV" in row.message


def test_reconciliation_discrepancies_alert_the_admins_and_a_clean_run_does_not(
    member, active_loan, run_jobs
):
    from app.services.mpesa import reconciliation

    factories.staff(Role.ADMIN)
    mpesa_transaction("RCA0000001", "1500", completed_at=nairobi(2026, 3, 2))
    clean = statement([paid_in("RCA0000001", "02-03-2026 12:00:00", "1500")])
    started = reconciliation.start("clean.csv", clean, SYSTEM, enqueue=False)
    reconciliation.run(started.id)
    run_jobs()
    assert _alerts() == []

    odd = statement(
        [
            paid_in("RCA0000001", "02-03-2026 12:00:00", "1400"),
            paid_in("RCA0000003", "03-03-2026 13:00:00", "12345", account="NOSUCH1"),
        ]
    )
    started = reconciliation.start("odd.csv", odd, SYSTEM, enqueue=False)
    reconciliation.run(started.id)
    run_jobs()
    (row,) = _alerts()
    assert f"Reconciliation {started.id} of odd.csv found 2 discrepancies to review." in row.message
    assert "Amount mismatch: 1" in row.message
    assert "In the statement, not in our records: 1" in row.message
