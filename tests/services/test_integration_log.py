"""The integration log: entries commit with the change they describe (or on their own), carry the
request's and job's ids, never hold a secret, and M-Pesa callbacks and audited activity write
them."""

import pytest
from flask import g
from sqlalchemy import select

from app.extensions import db
from app.jobs import enqueue
from app.models import Integration, IntegrationLogEntry, LogLevel
from app.services import api_keys, integration_log
from app.services.actor import Actor
from tests import factories
from tests.mpesa.conftest import callback_path, sample, sample_bytes, sent_stk


def entries(**where) -> list[IntegrationLogEntry]:
    query = select(IntegrationLogEntry).order_by(IntegrationLogEntry.id)
    for name, value in where.items():
        query = query.where(getattr(IntegrationLogEntry, name) == value)
    db.session.expire_all()
    return list(db.session.scalars(query))


def log_from_a_job(member_id: int) -> None:
    integration_log.record(
        Integration.JOBS, "test.from_job", "Written in a job.", member_id=member_id
    )
    db.session.commit()


def test_an_entry_commits_with_its_transaction_and_carries_the_request_id(app):
    with app.test_request_context("/"):
        g.request_id = "req-123"
        integration_log.record(Integration.MPESA, "mpesa.test", "Kept.", LogLevel.WARNING)
        db.session.commit()
        integration_log.record(Integration.MPESA, "mpesa.test", "Rolled back.")
        db.session.rollback()
    [kept] = entries(event="mpesa.test")
    assert (kept.message, kept.level, kept.request_id, kept.job_id) == (
        "Kept.",
        LogLevel.WARNING,
        "req-123",
        None,
    )


def test_record_now_survives_the_callers_rollback(db):
    member = factories.member()
    integration_log.record_now(
        Integration.NOTIFICATIONS, "notify.test", "Provider down.", LogLevel.ERROR,
        error_kind="ProviderFault", member_id=member.id,
    )  # fmt: skip
    db.session.rollback()
    [row] = entries(event="notify.test")
    assert (row.level, row.error_kind, row.member_id) == (
        LogLevel.ERROR,
        "ProviderFault",
        member.id,
    )


def test_a_job_writes_its_job_id(run_jobs):
    member = factories.member()
    job = enqueue("tests.services.test_integration_log.log_from_a_job", member.id)
    run_jobs()
    [row] = entries(event="test.from_job")
    assert (row.job_id, row.member_id) == (job.id, member.id)


def test_secrets_in_the_context_are_never_stored():
    integration_log.record(
        Integration.MPESA,
        "mpesa.test",
        "Token refreshed.",
        context={
            "consumer_secret": "s3cr3t-value",
            "nested": {"Authorization": "Bearer abc.def", "api_key": "dsk_live_x"},
            "items": [{"password": "hunter2"}],
            "amount": "100.00",
        },
    )
    db.session.commit()
    [row] = entries(event="mpesa.test")
    text = str(row.context)
    for secret in ("s3cr3t-value", "abc.def", "dsk_live_x", "hunter2"):
        assert secret not in text
    assert row.context["amount"] == "100.00"
    assert row.context["nested"]["api_key"] == "[REDACTED]"


def test_an_unknown_correlation_id_is_a_programming_error():
    with pytest.raises(TypeError, match="loan_id"):
        integration_log.record(Integration.MPESA, "mpesa.test", "x", loan_id=3)


def test_a_credited_stk_callback_is_activity_and_a_held_one_a_warning(
    client, member, mpesa_settings, run_jobs
):
    credited = sent_stk(member, sample("stk_callback_success_with_balance.json"))
    held = sent_stk(member, sample("stk_callback_success.json"), amount=500)
    for name in ("stk_callback_success_with_balance.json", "stk_callback_success.json"):
        assert client.post(callback_path("stk"), data=sample_bytes(name)).status_code == 200
    run_jobs()
    [received] = entries(event="mpesa.payment_received")
    assert received.activity and received.level == LogLevel.INFO
    assert (received.mpesa_transaction_id, received.member_id) == (credited.id, member.id)
    assert received.message.startswith("Payment received: KES")
    [warning] = entries(event="mpesa.callback_held")
    assert (warning.level, warning.error_kind, warning.activity) == (
        LogLevel.WARNING,
        "mpesa.callback_held",
        False,
    )
    assert warning.mpesa_transaction_id == held.id


def test_an_audited_key_creation_is_accounting_api_activity():
    admin = factories.staff(role="admin")
    key, plaintext = api_keys.create_key("Xero sync", ["read_members"], Actor.staff(admin))
    [row] = entries(event="api_key.created")
    assert (row.integration, row.activity, row.api_key_id) == (
        Integration.ACCOUNTING_API,
        True,
        key.id,
    )
    assert admin.email in row.message
    assert plaintext not in str(row.context) + row.message
