"""Payments in by STK Push: a prompt on the member's phone for a loan repayment or a contribution.

A request is recorded first (status `queued`), then sent by a job (`pending`), then settled by its
callback or by an STK Query (`completed` / `failed`). A request that may have reached M-Pesa is
never sent again."""

import re
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from sqlalchemy import select

from app.extensions import db
from app.integrations.daraja import DarajaError, DarajaUnavailable
from app.models import (
    ContributionKind,
    Loan,
    Member,
    MpesaStatus,
    MpesaTransaction,
    MpesaType,
    PaymentPurpose,
)
from app.models.base import utcnow
from app.services import audit
from app.services.actor import Actor
from app.services.after_commit import enqueue_after_commit
from app.services.errors import ServiceError, ValidationFailed
from app.services.mpesa import config as mpesa_config
from app.services.mpesa.accounts import loan_account
from app.services.mpesa.transactions import get_transaction, move
from app.services.repayments import REPAYABLE
from app.services.validation import normalize_phone

SAFE_TEXT = re.compile(r"[A-Za-z0-9 \-]*")
PURPOSES = (PaymentPurpose.LOAN_REPAYMENT, PaymentPurpose.CONTRIBUTION)


def _whole_shillings(amount, maximum: int, errors: dict) -> Decimal | None:
    try:
        value = Decimal(str(amount).strip().replace(",", ""))
    except (InvalidOperation, AttributeError):
        value = None
    if value is None or not value.is_finite():
        errors["amount"] = "Enter an amount in whole shillings."
    elif value != value.to_integral_value():
        errors["amount"] = "M-Pesa takes whole shillings only."
    elif not 1 <= value <= maximum:
        errors["amount"] = f"Enter from KES 1 to KES {maximum:,}."
    else:
        return value.quantize(Decimal("0.01"))
    return None


def _safe_text(value, field: str, limit: int, errors: dict, required: bool = True) -> str:
    text = " ".join((value or "").split())
    if required and not text:
        errors[field] = "Enter it."
    elif len(text) > limit:
        errors[field] = f"Use at most {limit} characters."
    elif not SAFE_TEXT.fullmatch(text):
        errors[field] = "Use letters, digits, spaces and hyphens only."
    return text


def create_request(
    phone,
    amount,
    account_reference,
    description,
    member_id=None,
    payment_purpose=None,
    loan_id=None,
    contribution_kind=None,
    actor: Actor | None = None,
) -> MpesaTransaction:
    """Validate and record an STK Push request (status `queued`) and enqueue its sending after
    the commit. ValidationFailed names each bad field; a second push for the same member,
    purpose and amount within the configured window is refused. Commits."""
    settings = mpesa_config.current()
    errors: dict[str, str] = {}
    try:
        phone = normalize_phone(str(phone or ""))
    except ValueError as exc:
        errors["phone"] = str(exc)
    money = _whole_shillings(amount, settings.max_amount, errors)
    account_reference = _safe_text(account_reference, "account_reference", 12, errors)
    description = _safe_text(description, "description", 13, errors, required=False) or "Payment"
    member = loan = None
    if member_id not in (None, ""):
        member = db.session.get(Member, int(member_id)) if str(member_id).isdigit() else None
        if member is None:
            errors["member_id"] = "There is no such member."
    if payment_purpose not in (None, "", *PURPOSES):
        errors["payment_purpose"] = "Choose loan repayment or contribution."
    if payment_purpose == PaymentPurpose.LOAN_REPAYMENT:
        loan = db.session.get(Loan, int(loan_id)) if str(loan_id or "").isdigit() else None
        if loan is None or (member is not None and loan.member_id != member.id):
            errors["loan_id"] = "Choose one of the member's loans."
        elif loan.status not in REPAYABLE:
            errors["loan_id"] = (
                f"This loan is {loan.status}; only active or defaulted loans take repayments."
            )
        elif money is not None and money > loan.balance:
            errors["amount"] = f"This is more than the loan's balance of KES {loan.balance:,.2f}."
        if member is None and loan is not None:
            member = db.session.get(Member, loan.member_id)
    if payment_purpose == PaymentPurpose.CONTRIBUTION:
        contribution_kind = contribution_kind or ContributionKind.DEPOSIT
        if contribution_kind not in set(ContributionKind):
            errors["contribution_kind"] = "Choose deposit or share capital."
        if member is None and "member_id" not in errors:
            errors["member_id"] = "Say which member the contribution is for."
    if errors:
        raise ValidationFailed(errors)
    if member is not None:  # serialise pushes per member, so the duplicate check holds
        db.session.scalar(select(Member.id).where(Member.id == member.id).with_for_update())
    duplicate = _recent_duplicate(member, phone, payment_purpose, money, settings)
    if duplicate is not None:
        raise ServiceError(
            f"A request for KES {money:,.0f} ({duplicate.payment_purpose or 'payment'}) was sent to "
            f"this member {_ago(duplicate)}; wait before sending the same request again.",
            {"amount": "Same request sent moments ago."},
        )
    txn = MpesaTransaction(
        transaction_type=MpesaType.STK_PUSH,
        status=MpesaStatus.QUEUED,
        environment=settings.environment,
        phone_number=phone,
        amount=money,
        account_reference=account_reference,
        description=description,
        member_id=member.id if member else None,
        loan_id=loan.id if loan else None,
        payment_purpose=payment_purpose or None,
        contribution_kind=contribution_kind
        if payment_purpose == PaymentPurpose.CONTRIBUTION
        else None,
        requested_by_id=actor.staff_id if actor else None,
    )
    db.session.add(txn)
    db.session.flush()
    audit.record(
        actor or Actor.system(),
        "mpesa.stk_requested",
        "mpesa_transaction",
        txn.id,
        amount=f"{money:.2f}",
        purpose=payment_purpose,
        member_id=txn.member_id,
        loan_id=txn.loan_id,
    )
    enqueue_after_commit("app.jobs.mpesa.send_stk_push", txn.id, queue="high")
    db.session.commit()
    return txn


def _ago(txn: MpesaTransaction) -> str:
    seconds = int((utcnow() - txn.created_at).total_seconds())
    return f"{seconds} seconds ago" if seconds < 120 else f"{seconds // 60} minutes ago"


def _recent_duplicate(member, phone, purpose, money, settings) -> MpesaTransaction | None:
    window = settings.duplicate_window_seconds
    if not window:
        return None
    query = select(MpesaTransaction).where(
        MpesaTransaction.transaction_type == MpesaType.STK_PUSH,
        MpesaTransaction.amount == money,
        MpesaTransaction.status != MpesaStatus.FAILED,
        MpesaTransaction.created_at >= utcnow() - timedelta(seconds=window),
    )
    if member is not None:
        query = query.where(MpesaTransaction.member_id == member.id)
    else:
        query = query.where(MpesaTransaction.phone_number == phone)
    query = query.where(
        MpesaTransaction.payment_purpose == purpose
        if purpose
        else MpesaTransaction.payment_purpose.is_(None)
    )
    return db.session.scalars(query.order_by(MpesaTransaction.id.desc()).limit(1)).first()


def send(transaction_id: int) -> MpesaTransaction:
    """Send a queued STK Push to Daraja, once: the row moves to `pending` (committed) before the
    call, so a crash or a second job can never prompt the member twice. Commits."""
    txn = get_transaction(transaction_id)
    if not move(txn.id, (MpesaStatus.QUEUED,), MpesaStatus.PENDING):
        db.session.rollback()
        return txn  # already sent (or settled) by someone else
    db.session.commit()
    try:
        accepted = mpesa_config.client().stk_push(
            txn.phone_number,
            int(txn.amount),
            txn.account_reference,
            txn.description,
            mpesa_config.callback_url("stk"),
        )
    except DarajaUnavailable as exc:
        # Never reached M-Pesa: safe to send again, so put it back for RQ's retry.
        move(txn.id, (MpesaStatus.PENDING,), MpesaStatus.QUEUED, result_desc=str(exc)[:500])
        db.session.commit()
        raise
    except DarajaError as exc:
        status = MpesaStatus.UNKNOWN if exc.maybe_sent else MpesaStatus.FAILED
        move(
            txn.id,
            (MpesaStatus.PENDING,),
            status,
            result_code=exc.error_code,
            result_desc=str(exc)[:500],
        )
        db.session.commit()
        return get_transaction(txn.id)
    except ServiceError as exc:  # our own settings are incomplete: nothing was sent
        move(txn.id, (MpesaStatus.PENDING,), MpesaStatus.FAILED, result_desc=exc.message)
        db.session.commit()
        return get_transaction(txn.id)
    txn = get_transaction(txn.id)
    txn.merchant_request_id = accepted.merchant_request_id
    txn.checkout_request_id = accepted.checkout_request_id
    txn.result_desc = accepted.customer_message or accepted.response_description
    db.session.commit()
    return txn


def initiate_stk_push(
    phone,
    amount,
    account_reference,
    description,
    member_id=None,
    payment_purpose=None,
    loan_id=None,
    contribution_kind=None,
    actor: Actor | None = None,
) -> dict:
    """The previous system's call: record and send an STK Push now; returns
    {"success", "checkout_request_id", "message"} (and our transaction id)."""
    try:
        txn = create_request(
            phone, amount, account_reference, description, member_id, payment_purpose,
            loan_id, contribution_kind, actor,
        )  # fmt: skip
    except ServiceError as exc:
        return {"success": False, "checkout_request_id": None, "message": exc.message}
    txn = send(txn.id)
    sent = txn.checkout_request_id is not None
    return {
        "success": sent,
        "checkout_request_id": txn.checkout_request_id,
        "message": txn.result_desc or ("Request sent." if sent else "Not sent."),
        "transaction_id": txn.id,
    }


def default_reference(member: Member, loan: Loan | None) -> str:
    """What the member sees as the account on the prompt: the loan account or member number."""
    return loan_account(loan.id) if loan is not None else member.member_number
