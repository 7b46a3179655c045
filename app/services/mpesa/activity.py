"""What M-Pesa writes to the integration log: each processed callback with its outcome, money
that came in or went out as dashboard activity, and failures to reach Daraja."""

from app.extensions import db
from app.models import (
    CallbackState,
    Integration,
    LogLevel,
    MpesaStatus,
    MpesaTransaction,
    MpesaType,
)
from app.services import integration_log
from app.services.mpesa.crediting import Outcome

LEVELS = {
    CallbackState.PROCESSED: LogLevel.INFO,
    CallbackState.DUPLICATE: LogLevel.INFO,
    CallbackState.HELD: LogLevel.WARNING,
    CallbackState.UNMATCHED: LogLevel.WARNING,
    CallbackState.MALFORMED: LogLevel.WARNING,
}


def _money_moved(txn: MpesaTransaction) -> str:
    if txn.transaction_type == MpesaType.B2C:
        return (
            f"Loan {txn.loan_id} disbursed: KES {txn.amount:,.2f} to {txn.phone_number}, "
            f"receipt {txn.mpesa_receipt_number}."
        )
    who = txn.account_reference or txn.phone_number or "an unknown payer"
    return (
        f"Payment received: KES {txn.amount:,.2f} from {who}, receipt {txn.mpesa_receipt_number}."
    )


def callback_processed(kind: str, callback_id: int, outcome: Outcome, txn_id: int | None) -> None:
    """Log a processed callback in the caller's transaction; a callback that completed its
    transaction (money in or out) is also dashboard activity."""
    # Fresh from the database (the handlers move transactions with conditional UPDATEs), after
    # writing what they changed through the ORM.
    db.session.flush()
    txn = db.session.get(MpesaTransaction, txn_id, populate_existing=True) if txn_id else None
    moved = (
        txn is not None
        and outcome.state == CallbackState.PROCESSED
        and txn.status == MpesaStatus.COMPLETED
    )
    integration_log.record(
        Integration.MPESA,
        "mpesa.loan_disbursed" if moved and txn.transaction_type == MpesaType.B2C
        else "mpesa.payment_received" if moved
        else f"mpesa.callback_{outcome.state}",
        _money_moved(txn) if moved else f"{kind} callback {callback_id}: {outcome.words}",
        LEVELS.get(outcome.state, LogLevel.INFO),
        context={
            "callback_id": callback_id,
            "kind": kind,
            "outcome": outcome.words,
            **({"receipt": txn.mpesa_receipt_number, "amount": txn.amount} if txn else {}),
        },
        error_kind=None if outcome.state in (CallbackState.PROCESSED, CallbackState.DUPLICATE)
        else f"mpesa.callback_{outcome.state}",
        activity=moved,
        mpesa_transaction_id=txn_id,
        member_id=txn.member_id if txn else None,
    )  # fmt: skip
