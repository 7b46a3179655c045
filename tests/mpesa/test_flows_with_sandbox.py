"""Whole M-Pesa flows over real HTTP: our Daraja client calls the sandbox, the sandbox posts its
callbacks to the app served on a loopback port, and a real RQ worker processes them."""

from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from app.clock import NAIROBI
from app.extensions import db
from app.integrations.daraja import token_cache_key
from app.models import (
    AuditLog,
    CallbackState,
    Contribution,
    Discrepancy,
    Loan,
    LoanStatus,
    MpesaCallback,
    MpesaStatus,
    MpesaTransaction,
    ReconciliationItem,
    Repayment,
)
from app.services import crypto
from app.services.errors import IllegalTransition
from app.services.mpesa import config as mpesa_config
from app.services.mpesa import disbursements, payments, reconciliation, status
from app.services.mpesa.accounts import loan_account
from app.services.mpesa.callbacks import apply_stk_result
from tests import factories
from tests.factories import SYSTEM
from tests.mpesa.conftest import settle, staff_actor
from tests.services.mpesa.statement_data import paid_in, statement


def test_stk_push_contribution_paid_and_credited(member, mpesa_live, run_jobs):
    result = payments.initiate_stk_push(
        member.phone, 1500, member.member_number, "Deposit", member.id, "contribution"
    )
    assert result["success"] is True and result["checkout_request_id"].startswith("ws_CO_")
    settle(mpesa_live, run_jobs)
    txn = db.session.get(MpesaTransaction, result["transaction_id"])
    assert txn.status == MpesaStatus.COMPLETED
    contribution = db.session.get(Contribution, txn.contribution_id)
    assert (contribution.amount, contribution.reference) == (
        Decimal("1500.00"),
        txn.mpesa_receipt_number,
    )
    assert mpesa_live.transaction(txn.checkout_request_id)["receipt"] == txn.mpesa_receipt_number


def test_stk_push_loan_repayment_through_the_queue(member, active_loan, mpesa_live, run_jobs):
    txn = payments.create_request(
        member.phone, 2000, loan_account(active_loan.id), "Loan repay", member.id,
        "loan_repayment", active_loan.id, actor=staff_actor(),
    )  # fmt: skip
    assert txn.status == MpesaStatus.QUEUED
    settle(mpesa_live, run_jobs)
    txn = db.session.get(MpesaTransaction, txn.id)
    repayment = db.session.get(Repayment, txn.repayment_id)
    assert (repayment.loan_id, repayment.amount, repayment.method) == (
        active_loan.id,
        Decimal("2000.00"),
        "mpesa",
    )


@pytest.mark.parametrize(
    ("phone", "code"),
    [("0799001032", "1032"), ("0799002001", "2001"), ("0799000001", "1"), ("0799001037", "1037")],
)
def test_stk_push_refused_by_the_member_credits_nothing(mpesa_live, run_jobs, phone, code):
    member = factories.member(phone=phone)
    result = payments.initiate_stk_push(
        phone, 100, member.member_number, "Deposit", member.id, "contribution"
    )
    settle(mpesa_live, run_jobs)
    txn = db.session.get(MpesaTransaction, result["transaction_id"])
    assert (txn.status, txn.result_code) == (MpesaStatus.FAILED, code)
    assert db.session.scalar(select(func.count()).select_from(Contribution)) == 0


def test_a_lost_stk_callback_is_settled_by_the_hourly_query(app, mpesa_live, run_jobs):
    member = factories.member(phone="0799009999")  # the sandbox never sends this callback
    result = payments.initiate_stk_push(
        member.phone, 300, member.member_number, "Deposit", member.id, "contribution"
    )
    delivered = settle(mpesa_live, run_jobs)
    assert [d for d in delivered if not d.get("dropped")] == []  # the callback never comes
    assert db.session.get(MpesaTransaction, result["transaction_id"]).status == MpesaStatus.PENDING
    app.config["MPESA_OVERRIDES"]["stk_callback_window_minutes"] = "0"
    counts = status.check_open_transactions()
    assert counts["stk_queried"] == 1
    db.session.expire_all()
    txn = db.session.get(MpesaTransaction, result["transaction_id"])
    assert txn.status == MpesaStatus.COMPLETED
    assert db.session.scalar(select(func.count()).select_from(Contribution)) == 1


def _credited_on_stk_query(app, mpesa_live, run_jobs, amount=300):
    """An STK payment whose callback never came, credited by the hourly STK Query (which gives
    no receipt); (the transaction, M-Pesa's receipt for it as the sandbox recorded it)."""
    member = factories.member(phone="0799009999")  # the sandbox never sends this callback
    result = payments.initiate_stk_push(
        member.phone, amount, member.member_number, "Deposit", member.id, "contribution"
    )
    settle(mpesa_live, run_jobs)
    app.config["MPESA_OVERRIDES"]["stk_callback_window_minutes"] = "0"
    assert status.check_open_transactions()["stk_queried"] == 1
    db.session.expire_all()
    txn = db.session.get(MpesaTransaction, result["transaction_id"])
    receipt = mpesa_live.transaction(txn.checkout_request_id)["receipt"]
    assert txn.status == MpesaStatus.COMPLETED and receipt
    assert txn.mpesa_receipt_number == txn.checkout_request_id[-20:]  # a stand-in, for now
    return txn, receipt


def test_the_statement_gives_an_stk_query_credit_its_receipt(app, mpesa_live, run_jobs):
    """Without it the statement's row looked like money we never recorded, and crediting it
    from the suspense queue would have paid the member twice."""
    txn, receipt = _credited_on_stk_query(app, mpesa_live, run_jobs)
    paid = txn.created_at.astimezone(NAIROBI) + timedelta(seconds=20)
    text = statement(
        [paid_in(receipt, paid.strftime("%d-%m-%Y %H:%M:%S"), "300", party="2547****9999 - J D")],
        period=None,
    )
    run = reconciliation.run(reconciliation.start("statement.csv", text, SYSTEM, False).id)
    item = db.session.scalars(select(ReconciliationItem).filter_by(reconciliation_id=run.id)).one()
    assert (item.category, item.transaction_id) == (Discrepancy.MATCHED, txn.id)
    assert f"receipt recorded for transaction {txn.id}, credited on STK Query" in item.details
    db.session.expire_all()
    txn = db.session.get(MpesaTransaction, txn.id)
    contribution = db.session.get(Contribution, txn.contribution_id)
    assert txn.mpesa_receipt_number == contribution.reference == receipt
    entry = db.session.scalars(select(AuditLog).filter_by(action="mpesa.receipt_recorded")).one()
    assert (entry.target_id, entry.details["receipt"], entry.details["source"]) == (
        txn.id, receipt, "statement",
    )  # fmt: skip
    with pytest.raises(IllegalTransition):
        reconciliation.send_to_suspense(item.id, SYSTEM)
    assert db.session.scalar(select(func.count()).select_from(Contribution)) == 1


def test_a_late_callback_gives_an_stk_query_credit_its_receipt_once(app, mpesa_live, run_jobs):
    txn, receipt = _credited_on_stk_query(app, mpesa_live, run_jobs)
    late = SimpleNamespace(
        succeeded=True, result_code="0", result_desc="Processed", amount=Decimal("300"),
        phone=txn.phone_number, transaction_date=None, receipt=receipt,
    )  # fmt: skip
    outcome = apply_stk_result(db.session.get(MpesaTransaction, txn.id), late, None)
    db.session.commit()
    assert outcome.state == CallbackState.PROCESSED
    again = apply_stk_result(db.session.get(MpesaTransaction, txn.id), late, None)
    assert again.state == CallbackState.DUPLICATE
    db.session.expire_all()
    txn = db.session.get(MpesaTransaction, txn.id)
    assert txn.mpesa_receipt_number == db.session.get(Contribution, txn.contribution_id).reference
    assert txn.mpesa_receipt_number == receipt
    assert db.session.scalar(select(func.count()).select_from(Contribution)) == 1


def test_duplicate_stk_callbacks_from_the_sandbox_credit_once(member, mpesa_live, run_jobs):
    mpesa_live.set_mode(duplicate_callbacks=True)
    payments.initiate_stk_push(
        member.phone, 700, member.member_number, "Deposit", member.id, "contribution"
    )
    delivered = settle(mpesa_live, run_jobs)
    assert len(delivered) >= 2
    assert db.session.scalar(select(func.count()).select_from(Contribution)) == 1
    assert CallbackState.DUPLICATE in set(db.session.scalars(select(MpesaCallback.state)))


def test_b2c_disbursement_activates_the_loan_once(member, product, mpesa_live, run_jobs):
    loan = factories.approved_loan(member, product, amount=Decimal("15000"), term=6)
    officer = staff_actor()
    txn = disbursements.request_disbursement(loan.id, officer)
    with pytest.raises(IllegalTransition, match="already has an M-Pesa disbursement"):
        disbursements.request_disbursement(loan.id, staff_actor())
    settle(mpesa_live, run_jobs)
    loan = db.session.get(Loan, loan.id)
    txn = db.session.get(MpesaTransaction, txn.id)
    assert (txn.status, loan.status, loan.disbursement_reference) == (
        MpesaStatus.COMPLETED, LoanStatus.ACTIVE, txn.mpesa_receipt_number,
    )  # fmt: skip
    assert txn.originator_conversation_id == f"DST-B2C-{txn.id}"
    assert len(mpesa_live.transactions("b2c")) == 1  # paid once
    with pytest.raises(IllegalTransition):
        disbursements.request_disbursement(loan.id, officer)


def test_a_b2c_queue_timeout_is_resolved_by_a_status_query(member, product, mpesa_live, run_jobs):
    member.phone = "254799009001"  # the sandbox times this disbursement out (and pays it)
    db.session.commit()
    loan = factories.approved_loan(member, product)
    txn = disbursements.request_disbursement(loan.id, staff_actor())
    settle(mpesa_live, run_jobs)  # the time-out callback: outcome unknown, status query queued
    settle(mpesa_live, run_jobs)  # the status query's result
    txn = db.session.get(MpesaTransaction, txn.id)
    assert txn.status == MpesaStatus.COMPLETED
    assert db.session.get(Loan, loan.id).status == LoanStatus.ACTIVE
    assert len(mpesa_live.transactions("b2c")) == 1  # asked, never sent again


def test_a_failed_b2c_leaves_the_loan_approved_and_can_be_retried(
    member, product, mpesa_live, run_jobs
):
    member.phone = "254799000003"  # SFC_IC0003: not an M-Pesa number
    db.session.commit()
    loan = factories.approved_loan(member, product)
    txn = disbursements.request_disbursement(loan.id, staff_actor())
    settle(mpesa_live, run_jobs)
    txn = db.session.get(MpesaTransaction, txn.id)
    assert (txn.status, txn.result_code) == (MpesaStatus.FAILED, "SFC_IC0003")
    assert db.session.get(Loan, loan.id).status == LoanStatus.APPROVED
    assert disbursements.request_disbursement(loan.id, staff_actor()).status == MpesaStatus.QUEUED


def test_a_large_disbursement_needs_a_second_staff_member(
    app, member, product, mpesa_live, run_jobs
):
    app.config["MPESA_OVERRIDES"]["b2c_second_approval_above"] = "10000"
    loan = factories.approved_loan(member, product, amount=Decimal("50000"), term=12)
    requester = staff_actor()
    txn = disbursements.request_disbursement(loan.id, requester)
    assert txn.status == MpesaStatus.AWAITING_APPROVAL
    run_jobs()
    assert mpesa_live.transactions("b2c") == []
    with pytest.raises(IllegalTransition, match="second staff member"):
        disbursements.approve(txn.id, requester)
    disbursements.approve(txn.id, staff_actor("admin"))
    settle(mpesa_live, run_jobs)
    assert db.session.get(Loan, loan.id).status == LoanStatus.ACTIVE


def test_a_paybill_payment_posts_a_repayment(member, active_loan, mpesa_live, run_jobs):
    from app.services.mpesa import paybill

    paybill.register_urls(staff_actor("admin"))
    mpesa_live.simulate_c2b(member.phone, 1200, loan_account(active_loan.id))
    settle(mpesa_live, run_jobs)
    repayment = db.session.scalars(select(Repayment).where(Repayment.method == "mpesa")).one()
    assert (repayment.loan_id, repayment.amount) == (active_loan.id, Decimal("1200.00"))
    kinds = sorted(db.session.scalars(select(MpesaCallback.kind)))
    assert kinds == ["c2b_confirmation", "c2b_validation"]


def test_a_paybill_payment_to_an_unknown_account_is_rejected(member, mpesa_live, run_jobs):
    from app.services.mpesa import paybill

    paybill.register_urls(staff_actor("admin"))
    mpesa_live.simulate_c2b(member.phone, 1200, "WHO-IS-THIS")
    settle(mpesa_live, run_jobs)
    assert db.session.scalar(select(func.count()).select_from(MpesaTransaction)) == 0
    assert db.session.scalars(select(MpesaCallback.outcome)).one().startswith("Rejected")


def test_initiate_b2c_payment_answers_in_the_old_shape(member, product, mpesa_live, run_jobs):
    loan = factories.approved_loan(member, product, amount=Decimal("20000"), term=6)
    wrong = disbursements.initiate_b2c_payment(member.phone, 25000, "Loan", loan_id=loan.id)
    assert wrong == {"success": False, "conversation_id": None, "message": wrong["message"]}
    assert "KES 20,000.00" in wrong["message"]
    answer = disbursements.initiate_b2c_payment(
        member.phone, 20000, "Loan disbursement", loan_id=loan.id
    )
    assert answer["success"] is True and answer["conversation_id"]
    settle(mpesa_live, run_jobs)
    assert db.session.get(Loan, loan.id).status == LoanStatus.ACTIVE


def test_the_shared_oauth_token_is_encrypted_in_redis(app, mpesa_live, redis_conn):
    with app.app_context():
        client = mpesa_config.client()
        key = token_cache_key(client.config)
        redis_conn.delete(key)
        token = client.access_token()  # from the sandbox over HTTP
        stored = redis_conn.get(key).decode()
        assert token and token not in stored
        assert crypto.decrypt(stored) == token
        assert mpesa_config.client().access_token() == token  # another process reads it

        redis_conn.set(key, "sealed-with-another-key", ex=600)  # DAYSTAR_ENCRYPTION_KEY changed
        fresh = mpesa_config.client().access_token()
        assert fresh and crypto.decrypt(redis_conn.get(key).decode()) == fresh
