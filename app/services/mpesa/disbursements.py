"""Loan disbursements by B2C: an approved loan paid to the member's phone, once.

Once is enforced by the database: a partial unique index allows one live disbursement per loan
(waiting for approval, queued, pending, unknown, held or completed), so a second click or a second
officer fails at the insert. Our row's id is the OriginatorConversationID, which Daraja refuses
to see twice. A disbursement whose outcome is unknown is asked about (Transaction Status), never
sent again."""

from decimal import Decimal

from sqlalchemy.exc import IntegrityError

from app import clock
from app.extensions import db
from app.integrations.daraja import DarajaError, DarajaUnavailable
from app.integrations.daraja_payloads import B2CPayment
from app.models import LoanStatus, Member, MpesaStatus, MpesaTransaction, MpesaType, PaymentPurpose
from app.services import audit, loans
from app.services.actor import Actor
from app.services.after_commit import enqueue_after_commit
from app.services.errors import IllegalTransition, ServiceError, ValidationFailed
from app.services.mpesa import config as mpesa_config
from app.services.mpesa.transactions import get_transaction, move
from app.services.validation import normalize_phone

DUPLICATE_ORIGINATOR = "500.002.1001"
SEND_JOB = "app.jobs.mpesa.send_b2c"


def originator_id(transaction_id: int) -> str:
    """Our disbursement's own id as Daraja sees it."""
    return f"DST-B2C-{transaction_id}"


def request_disbursement(loan_id: int, actor: Actor) -> MpesaTransaction:
    """Record the M-Pesa disbursement of an approved loan to its member's phone and enqueue it
    (or leave it for a second staff member above the configured amount). Refused, clearly, if
    the loan is not approved, the amount is not whole shillings, or the loan already has a
    disbursement under way or done. Commits."""
    loan = loans.get_loan(loan_id)
    if loan.status != LoanStatus.APPROVED:
        raise IllegalTransition(
            f"Loan {loan.id} is {loan.status}; only an approved loan is disbursed."
        )
    member = db.session.get(Member, loan.member_id)
    try:
        phone = normalize_phone(member.phone)
    except ValueError:
        raise ValidationFailed(
            {"phone": f"{member.full_name}'s phone number cannot receive M-Pesa."}
        ) from None
    if loan.amount != loan.amount.to_integral_value():
        raise ValidationFailed(
            {"amount": "M-Pesa sends whole shillings only; this loan has cents."}
        )
    settings = mpesa_config.current()
    threshold = settings.second_approval_above
    needs_second = threshold is not None and loan.amount > threshold
    txn = MpesaTransaction(
        transaction_type=MpesaType.B2C,
        status=MpesaStatus.AWAITING_APPROVAL if needs_second else MpesaStatus.QUEUED,
        environment=settings.environment,
        phone_number=phone,
        amount=loan.amount,
        account_reference=f"LN{loan.id:06d}",
        description="Loan disbursement",
        member_id=member.id,
        loan_id=loan.id,
        payment_purpose=PaymentPurpose.DISBURSEMENT,
        requested_by_id=actor.staff_id,
    )
    db.session.add(txn)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        live = loans.live_mpesa_disbursement(loan.id)
        state = f" ({live.status.replace('_', ' ')})" if live else ""
        raise IllegalTransition(
            f"Loan {loan.id} already has an M-Pesa disbursement{state}; it is paid only once."
        ) from None
    txn.originator_conversation_id = originator_id(txn.id)
    audit.record(
        actor,
        "mpesa.disbursement_requested",
        "mpesa_transaction",
        txn.id,
        loan_id=loan.id,
        amount=f"{loan.amount:.2f}",
        second_approval=needs_second,
    )
    if not needs_second:
        enqueue_after_commit(SEND_JOB, txn.id, queue="high")
    db.session.commit()
    return txn


def approve(transaction_id: int, actor: Actor) -> MpesaTransaction:
    """The second staff member's approval of a large disbursement; then it is sent. The person
    who asked for it cannot approve it. Commits."""
    txn = get_transaction(transaction_id)
    if txn.requested_by_id is not None and txn.requested_by_id == actor.staff_id:
        raise IllegalTransition(
            "A second staff member must approve this disbursement, not its requester."
        )
    if not move(
        txn.id, (MpesaStatus.AWAITING_APPROVAL,), MpesaStatus.QUEUED, approved_by_id=actor.staff_id
    ):
        db.session.rollback()
        raise IllegalTransition("This disbursement is no longer waiting for approval.")
    audit.record(
        actor, "mpesa.disbursement_approved", "mpesa_transaction", txn.id, loan_id=txn.loan_id
    )
    enqueue_after_commit(SEND_JOB, txn.id, queue="high")
    db.session.commit()
    return get_transaction(txn.id)


def reject(transaction_id: int, actor: Actor, reason: str) -> MpesaTransaction:
    """Refuse a disbursement waiting for approval; the loan stays approved. Commits."""
    reason = " ".join((reason or "").split())[:300]
    if not reason:
        raise ValidationFailed({"reason": "Say why the disbursement is refused."})
    txn = get_transaction(transaction_id)
    if not move(
        txn.id,
        (MpesaStatus.AWAITING_APPROVAL,),
        MpesaStatus.FAILED,
        result_desc=f"Refused: {reason}",
    ):
        db.session.rollback()
        raise IllegalTransition("This disbursement is no longer waiting for approval.")
    audit.record(actor, "mpesa.disbursement_refused", "mpesa_transaction", txn.id, reason=reason)
    db.session.commit()
    return get_transaction(txn.id)


def send(transaction_id: int) -> MpesaTransaction:
    """Send a queued disbursement to Daraja, once (moved to `pending` and committed before the
    call). A request that may have reached M-Pesa becomes `unknown` and is asked about. Commits."""
    txn = get_transaction(transaction_id)
    if not move(txn.id, (MpesaStatus.QUEUED,), MpesaStatus.PENDING):
        db.session.rollback()
        return txn
    db.session.commit()
    try:
        accepted = mpesa_config.client().b2c_payment(
            txn.originator_conversation_id,
            txn.phone_number,
            int(txn.amount),
            f"Loan {txn.account_reference} disbursement",
            mpesa_config.callback_url("b2c_result"),
            mpesa_config.callback_url("b2c_timeout"),
            occasion=txn.account_reference,
        )
    except DarajaUnavailable as exc:
        move(txn.id, (MpesaStatus.PENDING,), MpesaStatus.QUEUED, result_desc=str(exc)[:500])
        db.session.commit()
        raise  # never reached M-Pesa: RQ retries with the same OriginatorConversationID
    except DarajaError as exc:
        if exc.maybe_sent or exc.error_code == DUPLICATE_ORIGINATOR:
            status, words = MpesaStatus.UNKNOWN, f"Outcome unknown, asking M-Pesa: {exc}"
        else:
            status, words = MpesaStatus.FAILED, str(exc)
        move(
            txn.id,
            (MpesaStatus.PENDING,),
            status,
            result_code=exc.error_code,
            result_desc=words[:500],
        )
        db.session.commit()
        return get_transaction(txn.id)
    except ServiceError as exc:
        move(txn.id, (MpesaStatus.PENDING,), MpesaStatus.FAILED, result_desc=exc.message)
        db.session.commit()
        return get_transaction(txn.id)
    txn = get_transaction(txn.id)
    txn.conversation_id = accepted.conversation_id
    txn.result_desc = accepted.response_description
    db.session.commit()
    return txn


def complete(
    txn: MpesaTransaction, payment: B2CPayment, result_code: str, result_desc: str
) -> bool:
    """Settle a disbursement M-Pesa says was paid: the loan becomes active with the receipt, the
    date and the recipient's name, and its schedule starts that day. False when already settled.
    In the caller's transaction."""
    paid_at = payment.completed_at
    if not move(
        txn.id,
        (MpesaStatus.PENDING, MpesaStatus.UNKNOWN),
        MpesaStatus.COMPLETED,
        mpesa_receipt_number=payment.receipt,
        result_code=result_code,
        result_desc=result_desc,
        recipient_name=(payment.recipient_name or "")[:120] or None,
        completed_at=paid_at,
        transaction_id=payment.receipt,
    ):
        return False
    day = paid_at.astimezone(clock.NAIROBI).date() if paid_at else clock.today()
    loans.disburse(
        txn.loan_id, Actor.callback("mpesa:b2c"), "mpesa", payment.receipt, min(day, clock.today())
    )
    return True


def fail(txn: MpesaTransaction, result_code: str, result_desc: str) -> bool:
    """M-Pesa says the money was not sent: the loan stays approved, the reason is kept for the
    officer. False when already settled. In the caller's transaction."""
    return move(
        txn.id,
        (MpesaStatus.PENDING, MpesaStatus.UNKNOWN),
        MpesaStatus.FAILED,
        result_code=result_code,
        result_desc=result_desc,
    )


def mark_unknown(txn: MpesaTransaction, reason: str) -> bool:
    """A queue time-out: M-Pesa may or may not have paid. In the caller's transaction."""
    return move(txn.id, (MpesaStatus.PENDING,), MpesaStatus.UNKNOWN, result_desc=reason)


def initiate_b2c_payment(
    phone,
    amount,
    remarks,
    occasion=None,
    member_id=None,
    loan_id=None,
    actor: Actor | None = None,
) -> dict:
    """The previous system's call: disburse loan `loan_id` now to `phone`; the phone, amount and
    member must be the loan's. Returns {"success", "conversation_id", "message"} (and our
    transaction id). `remarks` and `occasion` are kept for compatibility: the remarks sent are the
    loan's account, so the statement names it."""
    try:
        if loan_id in (None, ""):
            raise ValidationFailed({"loan_id": "B2C pays out loans only: name the loan."})
        loan = loans.get_loan(int(loan_id) if str(loan_id).isdigit() else 0)
        member = db.session.get(Member, loan.member_id)
        errors = {}
        try:
            if normalize_phone(str(phone or "")) != normalize_phone(member.phone):
                errors["phone"] = "This is not the borrower's phone number."
        except ValueError as exc:
            errors["phone"] = str(exc)
        try:
            if Decimal(str(amount)) != loan.amount:
                errors["amount"] = f"The loan is for KES {loan.amount:,.2f}."
        except ArithmeticError:
            errors["amount"] = "Enter the loan's amount."
        if member_id not in (None, "") and str(member_id) != str(member.id):
            errors["member_id"] = "This loan belongs to another member."
        if errors:
            raise ValidationFailed(errors)
        txn = request_disbursement(loan.id, actor or Actor.system())
    except ServiceError as exc:
        return {"success": False, "conversation_id": None, "message": exc.message}
    if txn.status == MpesaStatus.QUEUED:
        txn = send(txn.id)
    return {
        "success": txn.status in (MpesaStatus.PENDING, MpesaStatus.AWAITING_APPROVAL),
        "conversation_id": txn.conversation_id,
        "message": txn.result_desc
        or (
            "Waiting for a second approval."
            if txn.status == MpesaStatus.AWAITING_APPROVAL
            else txn.status
        ),
        "transaction_id": txn.id,
    }
