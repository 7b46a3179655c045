"""Posting money that came in to the member's ledger: a repayment on the loan, or a contribution.

What cannot be posted as it is (the loan was closed meanwhile, the amount exceeds the balance,
the receipt is already on the ledger) is held in the suspense queue, never dropped."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from app import clock
from app.extensions import db
from app.models import (
    Contribution,
    ContributionKind,
    Loan,
    Member,
    MemberStatus,
    MpesaStatus,
    MpesaTransaction,
    PaymentMethod,
    PaymentPurpose,
    Repayment,
)
from app.services.actor import Actor
from app.services.contributions import post_contribution
from app.services.mpesa import suspense
from app.services.mpesa.transactions import move
from app.services.repayments import REPAYABLE, post_repayment


@dataclass(frozen=True)
class Outcome:
    state: str  # a CallbackState
    words: str


def already_on_ledger(receipt: str) -> bool:
    """Whether a staff member (or an earlier callback) already recorded this M-Pesa receipt."""
    for model in (Repayment, Contribution):
        found = db.session.scalar(
            select(model.id).where(model.method == PaymentMethod.MPESA, model.reference == receipt)
        )
        if found is not None:
            return True
    return False


def refusal(txn: MpesaTransaction) -> str | None:
    """Why the transaction's money cannot be posted as requested, or None."""
    if txn.payment_purpose == PaymentPurpose.LOAN_REPAYMENT:
        loan = db.session.get(Loan, txn.loan_id) if txn.loan_id else None
        if loan is None:
            return "No loan is named for this repayment."
        if loan.status not in REPAYABLE:
            return f"Loan {loan.id} is {loan.status}; it takes no repayments."
        if txn.amount > loan.balance:
            return f"KES {txn.amount:,.2f} is more than loan {loan.id}'s balance of KES {loan.balance:,.2f}."
        return None
    if txn.payment_purpose == PaymentPurpose.CONTRIBUTION:
        member = db.session.get(Member, txn.member_id) if txn.member_id else None
        if member is None:
            return "No member is named for this contribution."
        if member.status == MemberStatus.EXITED:
            return f"Member {member.member_number} has exited; contributions are closed."
        return None
    return "The payment has no purpose we can post it to."


def credit(
    txn: MpesaTransaction,
    receipt: str,
    paid_at: datetime | None,
    actor: Actor,
    callback_id: int | None = None,
    **values,
) -> Outcome:
    """Complete the transaction with its receipt and post it to the ledger, or hold it in the
    suspense queue saying why. In the caller's transaction; a transaction settled by someone else
    meanwhile gives a `duplicate` outcome and changes nothing."""
    problem = refusal(txn)
    if problem is None and already_on_ledger(receipt):
        problem = f"Receipt {receipt} is already recorded on the ledger."
    status = MpesaStatus.HELD if problem else MpesaStatus.COMPLETED
    if not move(
        txn.id,
        (MpesaStatus.QUEUED, MpesaStatus.PENDING, MpesaStatus.UNKNOWN),
        status,
        mpesa_receipt_number=receipt,
        completed_at=paid_at,
        hold_reason=problem,
        **values,
    ):
        return Outcome("duplicate", "Already settled: nothing changed.")
    if problem:
        suspense.hold(
            "callback",
            txn.amount,
            problem,
            receipt=receipt,
            phone_number=txn.phone_number,
            account_reference=txn.account_reference,
            paid_at=paid_at,
            transaction_id=txn.id,
            callback_id=callback_id,
        )
        return Outcome("held", f"Held for review: {problem}")
    day = min(paid_at.astimezone(clock.NAIROBI).date(), clock.today()) if paid_at else clock.today()
    if txn.payment_purpose == PaymentPurpose.LOAN_REPAYMENT:
        repayment = post_repayment(
            txn.loan_id, txn.amount, PaymentMethod.MPESA, receipt, actor, day
        )
        txn_values = {"repayment_id": repayment.id}
        words = f"Repayment of KES {txn.amount:,.2f} posted to loan {txn.loan_id}."
    else:
        kind = txn.contribution_kind or ContributionKind.DEPOSIT
        contribution = post_contribution(
            txn.member_id, txn.amount, kind, PaymentMethod.MPESA, receipt, actor, day
        )
        txn_values = {"contribution_id": contribution.id}
        words = f"Contribution ({kind}) of KES {txn.amount:,.2f} posted."
    db.session.execute(
        MpesaTransaction.__table__.update()
        .where(MpesaTransaction.id == txn.id)
        .values(**txn_values)
    )
    return Outcome("processed", words)
