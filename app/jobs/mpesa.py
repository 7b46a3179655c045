"""M-Pesa jobs: they take ids, re-read their rows and check state first, so running one twice
changes nothing the second time."""

from flask import current_app

from app.jobs import try_enqueue
from app.services.mpesa import callbacks, disbursements, payments, status, verification


def send_stk_push(transaction_id: int) -> None:
    """Send a queued STK Push (once)."""
    payments.send(transaction_id)


def send_b2c(transaction_id: int) -> None:
    """Send a queued disbursement (once)."""
    disbursements.send(transaction_id)


def process_callback(callback_id: int) -> None:
    """Apply a stored callback (exactly once)."""
    callbacks.process(callback_id)


def query_status(transaction_id: int) -> None:
    """Ask M-Pesa about a transaction whose outcome is unknown."""
    status.query_status(transaction_id)


def check_open_transactions() -> dict:
    """Hourly: settle what no callback settled (STK Query, Transaction Status)."""
    return status.check_open_transactions()


def sweep_mpesa_callbacks() -> int:
    """Every minute: callbacks stored while Redis was down are processed now."""
    ids = callbacks.waiting_ids(current_app.config["OUTBOX_SWEEP_AFTER_SECONDS"])
    for callback_id in ids:
        # No unique job id: a job Redis still holds but never runs must not block this retry,
        # and process() claims its callback, so a second job for it changes nothing.
        try_enqueue(process_callback, callback_id, queue="high")
    return len(ids)


def verify_payment(transaction_id: int) -> None:
    """Confirm a paid STK request with STK Query before crediting it (verify-before-credit)."""
    verification.verify(transaction_id)
