"""B2C results and time-outs, Transaction Status results, and paybill (C2B) validation and
confirmation, through the callback routes with Daraja's own samples."""

import json
from decimal import Decimal

from sqlalchemy import func, select

from app.extensions import db
from app.models import (
    CallbackState,
    Contribution,
    Loan,
    LoanStatus,
    MpesaCallback,
    MpesaStatus,
    MpesaTransaction,
    MpesaType,
    PaymentPurpose,
    Repayment,
    SuspenseItem,
)
from app.services.mpesa.accounts import loan_account
from tests import factories
from tests.mpesa.conftest import callback_path, sample, sample_bytes

B2C_ORIGINATOR = "53e3-4aa8-9fe0-8fb5e4092cdd3533373"  # b2c_result_success.json


def post(client, kind: str, body):
    data = body if isinstance(body, bytes) else json.dumps(body, default=str).encode()
    return client.post(callback_path(kind), data=data, content_type="application/json")


def sent_b2c(
    loan, originator=B2C_ORIGINATOR, amount=None, phone="254705912645", status=MpesaStatus.PENDING
):
    txn = MpesaTransaction(
        transaction_type=MpesaType.B2C,
        status=status,
        environment="simulator",
        originator_conversation_id=originator,
        phone_number=phone,
        amount=amount or loan.amount,
        account_reference=loan_account(loan.id),
        member_id=loan.member_id,
        loan_id=loan.id,
        payment_purpose=PaymentPurpose.DISBURSEMENT,
    )
    db.session.add(txn)
    db.session.commit()
    return txn


def small_loans_product():
    return factories.product(min_amount=Decimal("1"))


def test_a_successful_b2c_result_makes_the_loan_active_once(
    client, member, mpesa_settings, run_jobs
):
    loan = factories.approved_loan(member, small_loans_product(), amount=Decimal("10"), term=6)
    txn = sent_b2c(loan)
    for _ in range(3):
        assert (
            post(client, "b2c/result", sample_bytes("b2c_result_success.json")).status_code == 200
        )
    run_jobs()
    db.session.expire_all()
    loan = db.session.get(Loan, loan.id)
    assert (loan.status, loan.disbursement_method, loan.disbursement_reference) == (
        LoanStatus.ACTIVE,
        "mpesa",
        "SG632NMUAB",
    )
    assert loan.disbursement_date.isoformat() == "2024-07-06"
    txn = db.session.get(MpesaTransaction, txn.id)
    assert (txn.status, txn.recipient_name) == (MpesaStatus.COMPLETED, "NICHOLAS JOHN SONGOK")
    states = sorted(db.session.scalars(select(MpesaCallback.state)))
    assert states == [CallbackState.DUPLICATE, CallbackState.DUPLICATE, CallbackState.PROCESSED]


def test_a_failed_b2c_result_leaves_the_loan_approved_with_the_reason(
    client, member, product, mpesa_settings, run_jobs
):
    loan = factories.approved_loan(member, product)
    failure = sample("b2c_result_failure.json")
    txn = sent_b2c(loan, originator=failure["Result"]["OriginatorConversationID"])
    post(client, "b2c/result", sample_bytes("b2c_result_failure.json"))
    run_jobs()
    db.session.expire_all()
    assert db.session.get(Loan, loan.id).status == LoanStatus.APPROVED
    txn = db.session.get(MpesaTransaction, txn.id)
    assert (txn.status, txn.result_code) == (MpesaStatus.FAILED, "2001")
    assert txn.result_desc == failure["Result"]["ResultDesc"]


def test_a_b2c_amount_mismatch_is_held(client, member, product, mpesa_settings, run_jobs):
    loan = factories.approved_loan(member, product)  # 12,000; the sample reports 10
    txn = sent_b2c(loan)
    post(client, "b2c/result", sample_bytes("b2c_result_success.json"))
    run_jobs()
    db.session.expire_all()
    assert db.session.get(MpesaTransaction, txn.id).status == MpesaStatus.HELD
    assert db.session.get(Loan, loan.id).status == LoanStatus.APPROVED


def test_a_queue_timeout_makes_the_outcome_unknown_never_failed(
    client, member, product, mpesa_settings, redis_conn
):
    loan = factories.approved_loan(member, product)
    timeout = sample("b2c_timeout.json")  # ResultCode 0, yet it says nothing about the payment
    txn = sent_b2c(loan, originator=timeout["Result"]["OriginatorConversationID"])
    post(client, "b2c/timeout", sample_bytes("b2c_timeout.json"))
    from app.jobs.mpesa import process_callback

    process_callback(db.session.scalars(select(MpesaCallback.id)).one())
    db.session.expire_all()
    txn = db.session.get(MpesaTransaction, txn.id)
    assert txn.status == MpesaStatus.UNKNOWN
    assert db.session.get(Loan, loan.id).status == LoanStatus.APPROVED
    queued = [job.func_name for job in _queued_jobs(redis_conn)]
    assert "app.jobs.mpesa.query_status" in queued


def _queued_jobs(redis_conn):
    from app.jobs import QUEUES, get_queue

    return [job for name in QUEUES for job in get_queue(name).get_jobs()]


def test_a_transaction_status_result_settles_an_unknown_disbursement(
    client, member, mpesa_settings, run_jobs
):
    loan = factories.approved_loan(member, small_loans_product(), amount=Decimal("300"), term=6)
    status = sample("transaction_status_result.json")
    original = status["Result"]["ResultParameters"]["ResultParameter"][2]["Value"]
    txn = sent_b2c(loan, originator=original, status=MpesaStatus.UNKNOWN, phone="254708374149")
    post(client, "status/result", sample_bytes("transaction_status_result.json"))
    run_jobs()
    db.session.expire_all()
    assert db.session.get(MpesaTransaction, txn.id).status == MpesaStatus.COMPLETED
    loan = db.session.get(Loan, loan.id)
    assert (loan.status, loan.disbursement_reference) == (LoanStatus.ACTIVE, "MBN31H462N")


def c2b(bill_ref: str, trans_id="RKL51ZDR4F", amount="500.00") -> dict:
    body = sample("c2b_confirmation.json")
    body.update(BillRefNumber=bill_ref, TransID=trans_id, TransAmount=amount)
    return body


def test_paybill_validation_accepts_our_accounts_and_rejects_others(
    client, member, active_loan, mpesa_settings
):
    for account in (
        member.member_number,
        loan_account(active_loan.id),
        member.member_number.lower(),
    ):
        answer = post(client, "c2b/validation", c2b(account))
        assert answer.get_json() == {"ResultCode": "0", "ResultDesc": "Accepted"}
    answer = post(
        client, "c2b/validation", sample_bytes("c2b_confirmation.json")
    )  # "Sample Transaction"
    assert answer.get_json() == {"ResultCode": "C2B00012", "ResultDesc": "Rejected"}
    mpesa_settings["c2b_accept_all"] = "yes"
    answer = post(client, "c2b/validation", sample_bytes("c2b_confirmation.json"))
    assert answer.get_json()["ResultCode"] == "0"
    assert db.session.scalar(select(func.count()).select_from(MpesaCallback)) == 5


def test_paybill_confirmations_post_deposits_and_repayments_once(
    client, member, active_loan, mpesa_settings, run_jobs
):
    post(client, "c2b/confirmation", c2b(member.member_number, "RKL51ZDR4F", "700.00"))
    post(client, "c2b/confirmation", c2b(member.member_number, "RKL51ZDR4F", "700.00"))
    post(client, "c2b/confirmation", c2b(loan_account(active_loan.id), "RKL51ZDR5G", "1000.00"))
    post(client, "c2b/confirmation", c2b("NOBODY", "RKL51ZDR6H", "50.00"))
    run_jobs()
    contributions = db.session.scalars(select(Contribution)).all()
    assert [(c.amount, c.kind, c.reference) for c in contributions] == [
        (Decimal("700.00"), "deposit", "RKL51ZDR4F")
    ]
    repayments = db.session.scalars(select(Repayment).where(Repayment.method == "mpesa")).all()
    assert [(r.loan_id, r.amount, r.reference) for r in repayments] == [
        (active_loan.id, Decimal("1000.00"), "RKL51ZDR5G")
    ]
    item = db.session.scalars(select(SuspenseItem)).one()
    assert (item.receipt, item.amount, item.account_reference) == (
        "RKL51ZDR6H",
        Decimal("50.00"),
        "NOBODY",
    )


def test_a_stk_payment_also_reported_by_c2b_is_credited_once(
    client, member, mpesa_settings, run_jobs
):
    from tests.mpesa.conftest import sent_stk

    sent_stk(member, sample("stk_callback_success.json"))
    post(client, "stk", sample_bytes("stk_callback_success.json"))
    post(client, "c2b/confirmation", c2b(member.member_number, "NLJ7RT61SV", "1.00"))
    run_jobs()
    assert db.session.scalar(select(func.count()).select_from(Contribution)) == 1
    assert CallbackState.DUPLICATE in set(db.session.scalars(select(MpesaCallback.state)))


def test_an_unknown_account_paid_from_a_members_hashed_number_is_their_deposit(
    client, mpesa_settings, run_jobs
):
    member = factories.member(phone="0705912645")  # the number hashed in Daraja's sample
    body = sample("c2b_confirmation_hashed_msisdn.json")
    assert post(client, "c2b/confirmation", body).status_code == 200
    run_jobs()
    contribution = db.session.scalars(select(Contribution)).one()
    assert (contribution.member_id, contribution.kind, contribution.reference) == (
        member.id,
        "deposit",
        body["TransID"],
    )
    txn = db.session.scalars(select(MpesaTransaction)).one()
    assert txn.result_desc == "Paybill payment matched by the payer's phone"


def test_a_masked_number_names_nobody(client, mpesa_settings, run_jobs):
    factories.member(phone="0705912126")  # fits the mask "2547 ***** 126", but so do many others
    post(client, "c2b/confirmation", sample_bytes("c2b_confirmation.json"))
    run_jobs()
    assert db.session.scalar(select(func.count()).select_from(Contribution)) == 0
    assert db.session.scalars(select(SuspenseItem.receipt)).one() == "RKL51ZDR4F"
