"""M-Pesa callbacks through their routes: stored first, processed once by the worker, credited
only when they match a request we sent."""

import json
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import (
    CallbackState,
    Contribution,
    MpesaCallback,
    MpesaStatus,
    MpesaTransaction,
    SuspenseItem,
)
from tests.mpesa.conftest import callback_path, sample, sample_bytes, sent_stk

STK_SUCCESS = (
    "stk_callback_success.json",
    "stk_callback_success_with_balance.json",
    "stk_callback_success_captured_2022.json",
)
STK_FAILURE = {
    "stk_callback_cancelled.json": "1032",
    "stk_callback_cancelled_legacy.json": "1032",
    "stk_callback_wrong_pin.json": "2001",
    "stk_callback_smsc_ack_timeout.json": "1036",
    "stk_callback_ds_timeout.json": "1037",
}


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def post(client, kind: str, body: bytes):
    return client.post(callback_path(kind), data=body, content_type="application/json")


@pytest.mark.parametrize("name", STK_SUCCESS)
def test_a_successful_stk_callback_credits_the_member_once(
    client, member, mpesa_settings, run_jobs, name
):
    body = sample(name)
    txn = sent_stk(member, body)
    for _ in range(5):
        answer = post(client, "stk", sample_bytes(name))
        assert answer.status_code == 200
        assert answer.get_json() == {"ResultCode": 0, "ResultDesc": "Accepted"}
    assert count(MpesaCallback) == 5  # every delivery is stored before it is processed
    run_jobs()
    db.session.expire_all()
    receipt = {
        i["Name"]: i.get("Value") for i in body["Body"]["stkCallback"]["CallbackMetadata"]["Item"]
    }["MpesaReceiptNumber"]
    contributions = db.session.scalars(select(Contribution)).all()
    assert [(c.member_id, c.amount, c.reference) for c in contributions] == [
        (member.id, txn.amount, receipt)
    ]
    txn = db.session.get(MpesaTransaction, txn.id)
    assert (txn.status, txn.mpesa_receipt_number, txn.contribution_id) == (
        MpesaStatus.COMPLETED,
        receipt,
        contributions[0].id,
    )
    states = sorted(db.session.scalars(select(MpesaCallback.state)))
    assert states == [CallbackState.DUPLICATE] * 4 + [CallbackState.PROCESSED]


@pytest.mark.parametrize(("name", "code"), sorted(STK_FAILURE.items()))
def test_a_failed_stk_callback_credits_nothing_and_keeps_the_code(
    client, member, mpesa_settings, run_jobs, name, code
):
    txn = sent_stk(member, sample(name))
    assert post(client, "stk", sample_bytes(name)).status_code == 200
    run_jobs()
    db.session.expire_all()
    txn = db.session.get(MpesaTransaction, txn.id)
    assert (txn.status, txn.result_code) == (MpesaStatus.FAILED, code)
    assert count(Contribution) == 0


def test_an_unknown_checkout_id_credits_nothing_and_goes_to_suspense(
    client, member, mpesa_settings, run_jobs
):
    assert post(client, "stk", sample_bytes("stk_callback_success.json")).status_code == 200
    run_jobs()
    callback = db.session.scalars(select(MpesaCallback)).one()
    assert callback.state == CallbackState.UNMATCHED
    assert count(Contribution) == 0
    item = db.session.scalars(select(SuspenseItem)).one()
    assert (item.receipt, item.amount) == ("NLJ7RT61SV", Decimal("1.00"))


def test_an_amount_mismatch_is_held_not_credited(client, member, mpesa_settings, run_jobs):
    txn = sent_stk(member, sample("stk_callback_success.json"), amount=Decimal("500"))
    post(client, "stk", sample_bytes("stk_callback_success.json"))
    run_jobs()
    db.session.expire_all()
    txn = db.session.get(MpesaTransaction, txn.id)
    assert txn.status == MpesaStatus.HELD
    assert "amount KES 1.00 instead of KES 500.00" in txn.hold_reason
    assert count(Contribution) == 0
    assert db.session.scalars(select(SuspenseItem.receipt)).one() == "NLJ7RT61SV"


def test_a_wrong_secret_is_refused_and_stores_nothing(client, member, mpesa_settings, run_jobs):
    sent_stk(member, sample("stk_callback_success.json"))
    answer = client.post(
        "/callbacks/mpesa/not-the-secret/stk",
        data=sample_bytes("stk_callback_success.json"),
        content_type="application/json",
    )
    assert answer.status_code == 403
    run_jobs()
    assert count(MpesaCallback) == 0
    assert count(Contribution) == 0


def test_the_routes_reuse_the_settings_briefly_and_at_once_forget_a_secret_saved_here(
    app, client, monkeypatch
):
    """Production caches the settings per process for CALLBACK_SETTINGS_CACHE_SECONDS; a secret
    stored by another process (here: straight into the table) counts once the copy is that old."""
    from sqlalchemy import update

    from app.models import Setting
    from app.services import settings as stored_settings
    from app.services.actor import Actor
    from app.services.crypto import encrypt
    from app.services.mpesa import config as mpesa_config

    monkeypatch.setitem(app.config, "CALLBACK_SETTINGS_CACHE_SECONDS", 5)
    clock = [1000.0]
    monkeypatch.setattr(stored_settings.time, "monotonic", lambda: clock[0])
    stored_settings.forget_copies()
    try:
        mpesa_config.save({"callback_secret": "first-secret-value"}, Actor.system())
        assert post(client, "stk", b"{not json").status_code == 403  # no secret in the path
        first = client.post("/callbacks/mpesa/first-secret-value/stk", data=b"{}")
        assert first.status_code == 400  # the secret counted; the body did not
        db.session.execute(
            update(Setting)
            .where(Setting.key == "mpesa.callback_secret")
            .values(value=encrypt("second-secret-value"))
        )
        db.session.commit()  # as another process's save would
        clock[0] += 4
        assert (
            client.post("/callbacks/mpesa/second-secret-value/stk", data=b"{}").status_code == 403
        )
        clock[0] += 1
        assert (
            client.post("/callbacks/mpesa/second-secret-value/stk", data=b"{}").status_code == 400
        )
        mpesa_config.save({"callback_secret": "third-secret-value"}, Actor.system())
        assert client.post("/callbacks/mpesa/third-secret-value/stk", data=b"{}").status_code == 400
        assert (
            client.post("/callbacks/mpesa/second-secret-value/stk", data=b"{}").status_code == 403
        )
    finally:
        stored_settings.forget_copies()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "body"),
        (b"[]", "body"),
        (json.dumps({"Body": {"stkCallback": {"ResultCode": 0}}}).encode(), "MerchantRequestID"),
        ("\u00ff".encode("latin-1"), "body"),
    ],
)
def test_a_malformed_callback_is_stored_flagged_and_answered_400(
    client, mpesa_settings, body, field
):
    answer = post(client, "stk", body)
    assert answer.status_code == 400
    assert answer.get_json()["ResultCode"] == 1
    assert field in answer.get_json()["ResultDesc"]
    callback = db.session.scalars(select(MpesaCallback)).one()
    assert callback.state == CallbackState.MALFORMED
    assert field in callback.outcome


def test_a_callback_stored_while_redis_is_down_is_processed_by_the_sweep(
    app, client, member, mpesa_settings, run_jobs, monkeypatch
):
    from redis import Redis

    from app.jobs import mpesa as mpesa_jobs

    txn = sent_stk(member, sample("stk_callback_success.json"))
    # The app's Redis client pointed at a port where nothing listens: Redis is really unreachable.
    down = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    with monkeypatch.context() as patch:
        patch.setitem(app.extensions, "redis", down)
        assert post(client, "stk", sample_bytes("stk_callback_success.json")).status_code == 200
    run_jobs()
    assert db.session.get(MpesaTransaction, txn.id).status == MpesaStatus.PENDING
    app.config["OUTBOX_SWEEP_AFTER_SECONDS"] = 0
    try:
        assert mpesa_jobs.sweep_mpesa_callbacks() == 1
    finally:
        app.config["OUTBOX_SWEEP_AFTER_SECONDS"] = 60
    run_jobs()
    db.session.expire_all()
    assert db.session.get(MpesaTransaction, txn.id).status == MpesaStatus.COMPLETED
    assert count(Contribution) == 1


def test_the_same_callback_processed_concurrently_credits_once(app, client, member, mpesa_settings):
    """Five deliveries processed by five threads at once (each its own app context and database
    connection, as five workers would be): one credit, four no-ops."""
    import threading

    from sqlalchemy.exc import OperationalError

    from app.services.mpesa import callbacks

    sent_stk(member, sample("stk_callback_success.json"))
    for _ in range(5):
        post(client, "stk", sample_bytes("stk_callback_success.json"))
    ids = list(db.session.scalars(select(MpesaCallback.id)))
    start = threading.Barrier(len(ids))
    errors = []

    def work(callback_id):
        with app.app_context():
            start.wait()
            for _ in range(
                20
            ):  # SQLite allows one writer: a locked database is retried, as RQ would
                try:
                    callbacks.process(callback_id)
                    return
                except OperationalError:
                    db.session.rollback()
            errors.append(callback_id)

    threads = [threading.Thread(target=work, args=(i,)) for i in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    db.session.expire_all()
    assert count(Contribution) == 1
    states = sorted(db.session.scalars(select(MpesaCallback.state)))
    assert states == [CallbackState.DUPLICATE] * 4 + [CallbackState.PROCESSED]


def test_resolving_a_held_payment_credits_it_and_settles_the_transaction(
    client, member, mpesa_settings, run_jobs
):
    from app.models import Role
    from app.services.actor import Actor
    from app.services.mpesa import suspense
    from tests import factories

    txn = sent_stk(member, sample("stk_callback_success.json"), amount=Decimal("500"))
    post(client, "stk", sample_bytes("stk_callback_success.json"))  # amount mismatch: held
    run_jobs()
    item = db.session.scalars(select(SuspenseItem)).one()
    suspense.resolve(
        item.id,
        Actor.staff(factories.staff(role=Role.ACCOUNTANT)),
        member_id=member.id,
        note="Checked",
    )
    db.session.expire_all()
    txn = db.session.get(MpesaTransaction, txn.id)
    contribution = db.session.scalars(select(Contribution)).one()
    assert (contribution.amount, contribution.reference) == (Decimal("1.00"), "NLJ7RT61SV")
    assert (txn.status, txn.contribution_id) == (MpesaStatus.COMPLETED, contribution.id)


def test_the_address_allow_list_logs_or_refuses_unknown_senders(
    client, member, mpesa_settings, run_jobs, caplog
):
    sent_stk(member, sample("stk_callback_success.json"))
    mpesa_settings["callback_ip_mode"] = "log"  # the test client comes from 127.0.0.1
    assert post(client, "stk", sample_bytes("stk_callback_success.json")).status_code == 200
    assert "not on the allow-list" in caplog.text
    mpesa_settings["callback_ip_mode"] = "enforce"
    assert post(client, "stk", sample_bytes("stk_callback_success.json")).status_code == 403
    mpesa_settings["callback_ip_allowlist"] = "196.201.214.200 127.0.0.0/8"
    assert post(client, "stk", sample_bytes("stk_callback_success.json")).status_code == 200
    assert count(MpesaCallback) == 2  # the refused one was not stored


def test_the_previous_systems_callback_url_takes_stk_callbacks(
    client, member, mpesa_settings, run_jobs
):
    txn = sent_stk(member, sample("stk_callback_success.json"))
    answer = client.post(
        "/wp-json/daystar/v1/mpesa/callback",
        data=sample_bytes("stk_callback_success.json"),
        content_type="application/json",
    )
    assert answer.get_json() == {"ResultCode": 0, "ResultDesc": "Accepted"}
    run_jobs()
    assert db.session.get(MpesaTransaction, txn.id).status == MpesaStatus.COMPLETED
    assert count(Contribution) == 1
