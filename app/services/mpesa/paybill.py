"""Paybill (C2B) payments: members pay the SACCO's paybill with their member number (a deposit)
or a loan account number (a repayment) as the account."""

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.integrations.daraja import DarajaError
from app.integrations.daraja_payloads import C2BPayment
from app.models import (
    CallbackState,
    ContributionKind,
    MpesaCallback,
    MpesaStatus,
    MpesaTransaction,
    MpesaType,
    PaymentPurpose,
)
from app.services import audit
from app.services.actor import Actor
from app.services.errors import ServiceError
from app.services.mpesa import config as mpesa_config
from app.services.mpesa import suspense
from app.services.mpesa.accounts import Account, find_account, member_by_msisdn
from app.services.mpesa.crediting import Outcome, credit

ACCEPT = {"ResultCode": "0", "ResultDesc": "Accepted"}
REJECT_ACCOUNT = {"ResultCode": "C2B00012", "ResultDesc": "Rejected"}
REJECT_AMOUNT = {"ResultCode": "C2B00013", "ResultDesc": "Rejected"}
REJECT_OTHER = {"ResultCode": "C2B00016", "ResultDesc": "Rejected"}


def validation_answer(payment: C2BPayment) -> tuple[dict, str]:
    """Daraja's answer to a validation request, and what we decided in words."""
    if mpesa_config.current().accepts_all_paybill_payments:
        return ACCEPT, "Accepted: the settings accept every paybill payment."
    if payment.amount < 1:
        return REJECT_AMOUNT, "Rejected: invalid amount."
    account = find_account(payment.bill_ref_number)
    if account is None:
        return (
            REJECT_ACCOUNT,
            f"Rejected: account {payment.bill_ref_number!r} is no member or loan of ours.",
        )
    return ACCEPT, f"Accepted for {account.member.member_number}."


def confirm(payment: C2BPayment, callback: MpesaCallback) -> tuple[int | None, Outcome]:
    """Record a confirmed paybill payment once per receipt and post it: a loan account number
    makes a repayment, a member number a deposit; anything else goes to the suspense queue.
    In the caller's transaction."""
    existing = db.session.scalar(
        select(MpesaTransaction).where(MpesaTransaction.mpesa_receipt_number == payment.trans_id)
    )
    if existing is not None:
        return existing.id, Outcome(
            CallbackState.DUPLICATE,
            f"Receipt {payment.trans_id} is already recorded ({existing.transaction_type}): nothing changed.",
        )
    account = find_account(payment.bill_ref_number)
    matched_by_phone = False
    if account is None and (member := member_by_msisdn(payment.msisdn)) is not None:
        account, matched_by_phone = Account(member), True  # a deposit for the payer
    loan = account.loan if account else None
    txn = MpesaTransaction(
        transaction_type=MpesaType.C2B,
        status=MpesaStatus.PENDING,
        environment=mpesa_config.current().environment,
        transaction_id=payment.trans_id,
        phone_number=payment.msisdn[:64] or None,
        amount=payment.amount,
        account_reference=payment.bill_ref_number[:40] or None,
        description=(payment.payer_name or payment.transaction_type)[:100] or None,
        member_id=account.member.id if account else None,
        loan_id=loan.id if loan else None,
        payment_purpose=(
            PaymentPurpose.LOAN_REPAYMENT
            if loan
            else PaymentPurpose.CONTRIBUTION
            if account
            else None
        ),
        contribution_kind=ContributionKind.DEPOSIT if account and not loan else None,
        recipient_name=payment.payer_name[:120] or None,
    )
    db.session.add(txn)
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError:
        return None, Outcome(
            CallbackState.DUPLICATE, f"Receipt {payment.trans_id} arrived twice at once."
        )
    if account is None:
        reason = f"Paybill payment to account {payment.bill_ref_number!r}, which names no member or loan."
        txn.status, txn.hold_reason, txn.mpesa_receipt_number = (
            MpesaStatus.HELD,
            reason,
            payment.trans_id,
        )
        txn.completed_at = payment.trans_time
        suspense.hold(
            "c2b", payment.amount, reason, receipt=payment.trans_id, phone_number=payment.msisdn[:64],
            account_reference=payment.bill_ref_number[:40], paid_at=payment.trans_time,
            transaction_id=txn.id, callback_id=callback.id,
        )  # fmt: skip
        return txn.id, Outcome(CallbackState.HELD, f"Held for review: {reason}")
    how = "matched by the payer's phone" if matched_by_phone else "confirmed"
    return txn.id, credit(
        txn, payment.trans_id, payment.trans_time, Actor.callback("mpesa:c2b"), callback.id,
        result_code="0", result_desc=f"Paybill payment {how}",
    )  # fmt: skip


def register_urls(actor: Actor) -> dict:
    """Register our validation and confirmation URLs with Daraja (the settings' version and
    default action); Daraja's answer. ServiceError with Daraja's words when it refuses."""
    settings = mpesa_config.current()
    try:
        answer = mpesa_config.client(settings).register_c2b_urls(
            mpesa_config.callback_url("c2b_confirmation"),
            mpesa_config.callback_url("c2b_validation"),
            response_type=settings.c2b_response_type,
            version=settings.c2b_register_version,
        )
    except DarajaError as exc:
        raise ServiceError(f"M-Pesa refused the URL registration: {exc}") from None
    audit.record(
        actor, "mpesa.c2b_urls_registered", "settings", None, version=settings.c2b_register_version
    )
    db.session.commit()
    return answer
