"""Verify before credit (optional, on the settings page): a successful STK callback is confirmed
with an STK Query before anything is posted, so a forged callback that guessed our ids still
credits nothing."""

from sqlalchemy import update

from app.extensions import db
from app.integrations.daraja import DarajaError
from app.models import CallbackState, MpesaStatus, MpesaTransaction, Verification
from app.models.base import utcnow
from app.models.mpesa import OPEN_STATUSES
from app.services.actor import Actor
from app.services.after_commit import enqueue_after_commit
from app.services.mpesa import config as mpesa_config
from app.services.mpesa import suspense
from app.services.mpesa.crediting import Outcome, credit
from app.services.mpesa.transactions import get_transaction, move

VERIFY_JOB = "app.jobs.mpesa.verify_payment"


class StillProcessing(Exception):
    """M-Pesa has not finished the request: the job is retried later."""


def hold_for_verification(txn: MpesaTransaction, result) -> Outcome:
    """Keep what the callback says and ask STK Query before crediting (in the caller's
    transaction). A second callback while the first waits changes nothing."""
    claimed = db.session.execute(
        update(MpesaTransaction)
        .where(
            MpesaTransaction.id == txn.id,
            MpesaTransaction.status.in_(OPEN_STATUSES),
            MpesaTransaction.verification != Verification.PENDING,
        )
        .values(
            verification=Verification.PENDING,
            mpesa_receipt_number=result.receipt,
            completed_at=result.transaction_date,
            result_code=result.result_code,
            result_desc=result.result_desc,
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if not claimed:
        return Outcome(
            CallbackState.DUPLICATE, "Already being verified or settled: nothing changed."
        )
    enqueue_after_commit(VERIFY_JOB, txn.id, queue="high", job_id=f"mpesa-verify-{txn.id}")
    return Outcome(
        CallbackState.PROCESSED, "Paid, says the callback; confirming with STK Query first."
    )


def verify(transaction_id: int) -> Outcome | None:
    """Confirm a payment waiting for verification with STK Query, then credit it or hold it.
    StillProcessing while M-Pesa has no answer yet. Commits."""
    txn = get_transaction(transaction_id)
    if txn.verification != Verification.PENDING or not txn.is_open:
        return None
    try:
        answer = mpesa_config.client().stk_query(txn.checkout_request_id)
    except DarajaError as exc:
        if exc.maybe_sent or exc.http_status is None or exc.http_status >= 500:
            raise StillProcessing(str(exc)) from None
        answer = None
        reason = f"STK Query refused: {exc}"
    else:
        if answer.pending:
            raise StillProcessing(answer.result_desc)
        reason = (
            None
            if answer.succeeded
            else f"STK Query says {answer.result_code}: {answer.result_desc}"
        )
    if reason is None:
        db.session.execute(
            update(MpesaTransaction)
            .where(MpesaTransaction.id == txn.id)
            .values(verification=Verification.VERIFIED)
        )
        outcome = credit(
            txn, txn.mpesa_receipt_number, txn.completed_at, Actor.callback("mpesa:stk")
        )
    else:
        held = move(
            txn.id,
            tuple(OPEN_STATUSES),
            MpesaStatus.HELD,
            verification=Verification.MISMATCH,
            hold_reason=reason,
        )
        if held:
            suspense.hold(
                "callback", txn.amount, reason, receipt=txn.mpesa_receipt_number,
                phone_number=txn.phone_number, account_reference=txn.account_reference,
                paid_at=txn.completed_at, transaction_id=txn.id,
            )  # fmt: skip
        outcome = Outcome(CallbackState.HELD, f"Not confirmed: {reason}")
    db.session.commit()
    return outcome
