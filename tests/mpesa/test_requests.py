"""Validation of STK Push requests before anything is sent, the duplicate window, and
verify-before-credit (over real HTTP with the sandbox)."""

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Contribution, MpesaStatus, MpesaTransaction, Verification
from app.services.errors import ServiceError, ValidationFailed
from app.services.mpesa import payments
from app.services.mpesa.accounts import find_account, loan_account
from tests.mpesa.conftest import settle


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"phone": "0201234567"}, "phone"),  # a landline
        ({"phone": "+255712345678"}, "phone"),  # Tanzania
        ({"amount": "10.50"}, "amount"),
        ({"amount": "0"}, "amount"),
        ({"amount": "250001"}, "amount"),
        ({"amount": "abc"}, "amount"),
        ({"account_reference": "ABCDEFGHIJKLM"}, "account_reference"),  # 13 > 12
        ({"account_reference": "DST#1"}, "account_reference"),
        ({"description": "Fourteen chars"}, "description"),
        ({"payment_purpose": "gift"}, "payment_purpose"),
        ({"member_id": "999999"}, "member_id"),
    ],
)
def test_a_bad_request_is_refused_naming_the_field(member, mpesa_settings, changes, field):
    values = {
        "phone": member.phone, "amount": "100", "account_reference": member.member_number,
        "description": "Deposit", "member_id": member.id, "payment_purpose": "contribution",
    } | changes  # fmt: skip
    with pytest.raises(ValidationFailed) as refused:
        payments.create_request(**values)
    assert field in refused.value.errors
    assert db.session.scalar(select(func.count()).select_from(MpesaTransaction)) == 0


def test_a_repayment_is_refused_above_the_balance_or_on_a_closed_loan(
    member, active_loan, mpesa_settings
):
    with pytest.raises(ValidationFailed, match="balance of KES"):
        payments.create_request(member.phone, int(active_loan.balance) + 1, loan_account(active_loan.id),
                                "Repay", member.id, "loan_repayment", active_loan.id)  # fmt: skip
    with pytest.raises(ValidationFailed) as refused:
        payments.create_request(member.phone, 100, "X", "Repay", member.id, "loan_repayment", None)
    assert "loan_id" in refused.value.errors


def test_the_same_push_twice_within_the_window_is_refused(member, mpesa_settings):
    mpesa_settings["stk_duplicate_window_seconds"] = "120"
    args = (member.phone, 500, member.member_number, "Deposit", member.id, "contribution")
    first = payments.create_request(*args)
    with pytest.raises(ServiceError, match="wait before sending the same request again"):
        payments.create_request(*args)
    payments.create_request(
        member.phone, 600, member.member_number, "Deposit", member.id, "contribution"
    )
    first.status = MpesaStatus.FAILED  # a cancelled prompt may be tried again at once
    db.session.commit()
    assert payments.create_request(*args).status == MpesaStatus.QUEUED


def test_initiate_stk_push_answers_in_the_old_shape(member, mpesa_settings):
    answer = payments.initiate_stk_push(
        member.phone, "12.5", "REF", "Deposit", member.id, "contribution"
    )
    assert answer == {"success": False, "checkout_request_id": None, "message": answer["message"]}
    assert "whole shillings" in answer["message"]


def test_account_numbers_name_members_and_loans(member, active_loan):
    assert find_account(member.member_number.lower()).member.id == member.id
    found = find_account(f" {loan_account(active_loan.id)} ")
    assert (found.member.id, found.loan.id) == (member.id, active_loan.id)
    assert find_account("LN99999999") is None
    assert find_account("LN" + "9" * 40) is None
    assert find_account("DST000000") is None


def test_verify_before_credit_confirms_with_stk_query(app, member, mpesa_live, run_jobs):
    app.config["MPESA_OVERRIDES"]["verify_before_credit"] = "yes"
    result = payments.initiate_stk_push(
        member.phone, 800, member.member_number, "Deposit", member.id, "contribution"
    )
    settle(mpesa_live, run_jobs)  # callback -> verification job -> STK Query -> credit
    txn = db.session.get(MpesaTransaction, result["transaction_id"])
    assert (txn.status, txn.verification) == (MpesaStatus.COMPLETED, Verification.VERIFIED)
    assert db.session.scalar(select(Contribution.amount)) == Decimal("800.00")


def test_verify_before_credit_holds_a_forged_success_callback(
    app, client, member, mpesa_live, run_jobs
):
    from app.services.mpesa import verification
    from tests.mpesa.conftest import callback_path

    app.config["MPESA_OVERRIDES"]["verify_before_credit"] = "yes"
    mpesa_live.set_mode(mode="manual")  # the prompt waits on the virtual phone
    result = payments.initiate_stk_push(
        member.phone, 900, member.member_number, "Deposit", member.id, "contribution"
    )
    txn = db.session.get(MpesaTransaction, result["transaction_id"])
    forged = {"Body": {"stkCallback": {
        "MerchantRequestID": txn.merchant_request_id, "CheckoutRequestID": txn.checkout_request_id,
        "ResultCode": 0, "ResultDesc": "The service request is processed successfully.",
        "CallbackMetadata": {"Item": [
            {"Name": "Amount", "Value": 900}, {"Name": "MpesaReceiptNumber", "Value": "FORGED0001"},
            {"Name": "TransactionDate", "Value": 20261127101010}, {"Name": "PhoneNumber", "Value": int(member.phone)},
        ]},
    }}}  # fmt: skip
    assert client.post(callback_path("stk"), json=forged).status_code == 200
    run_jobs()  # the verification job finds M-Pesa still processing: retried later, nothing credited
    db.session.expire_all()
    assert db.session.get(MpesaTransaction, txn.id).verification == Verification.PENDING
    mpesa_live.press(txn.checkout_request_id, "cancel")
    verification.verify(txn.id)
    db.session.expire_all()
    txn = db.session.get(MpesaTransaction, txn.id)
    assert (txn.status, txn.verification) == (MpesaStatus.HELD, Verification.MISMATCH)
    assert "1032" in txn.hold_reason
    assert db.session.scalar(select(func.count()).select_from(Contribution)) == 0


def test_settings_are_validated_naming_each_bad_field():
    from app.services.mpesa import config

    with pytest.raises(ValidationFailed) as refused:
        config.validate({
            "environment": "staging", "shortcode": "12", "callback_ip_allowlist": "196.201.214.200 not-an-ip",
            "callback_ip_mode": "sometimes", "stk_max_amount": "-5", "b2c_second_approval_above": "lots",
            "certificate": "-----BEGIN CERTIFICATE-----\\ngarbage", "public_base_url": "ftp://x",
        })  # fmt: skip
    assert set(refused.value.errors) == {
        "environment", "shortcode", "callback_ip_allowlist", "callback_ip_mode", "stk_max_amount",
        "b2c_second_approval_above", "certificate", "public_base_url",
    }  # fmt: skip
    assert "'not-an-ip'" in refused.value.errors["callback_ip_allowlist"]
