"""Finding out what happened when no callback says: STK Query for payment requests, Transaction
Status for disbursements. Answers are applied exactly as a callback would be."""

import logging
from datetime import timedelta

from sqlalchemy import select

from app.extensions import db
from app.integrations.daraja import DarajaError
from app.models import CallbackState, MpesaStatus, MpesaTransaction, MpesaType
from app.models.base import utcnow
from app.services import audit
from app.services.actor import Actor
from app.services.after_commit import enqueue_after_commit
from app.services.errors import IllegalTransition
from app.services.mpesa import config as mpesa_config
from app.services.mpesa import query_receipts
from app.services.mpesa.callbacks import apply_stk_result
from app.services.mpesa.crediting import Outcome
from app.services.mpesa.transactions import get_transaction, locked, move

log = logging.getLogger(__name__)

QUEUED_LOST_AFTER = timedelta(minutes=2)
B2C_SILENT_AFTER = timedelta(minutes=30)


class _QueryResult:
    """An STK Query answer in the shape of a callback (no receipt: the query does not give one)."""

    def __init__(self, answer):
        self.result_code = answer.result_code
        self.result_desc = f"{answer.result_desc} (STK Query)"
        self.amount = None
        self.phone = None
        self.transaction_date = None
        self.receipt = None

    @property
    def succeeded(self) -> bool:
        return self.result_code == "0"


def query_stk(txn: MpesaTransaction) -> Outcome:
    """Ask STK Query about a sent request and settle it if M-Pesa knows the outcome. Commits."""
    try:
        answer = mpesa_config.client().stk_query(txn.checkout_request_id)
    except DarajaError as exc:
        _checked(txn.id)
        db.session.commit()
        return Outcome(CallbackState.RECEIVED, f"STK Query failed: {exc}")
    _checked(txn.id)
    if answer.pending:
        db.session.commit()
        return Outcome(CallbackState.RECEIVED, "M-Pesa is still processing the request.")
    txn = locked(txn.id)
    result = _QueryResult(answer)
    if result.succeeded:
        # Paid, but the callback with the receipt never came: credited under a stand-in until a
        # late callback or the statement reconciliation brings the receipt (query_receipts).
        result.receipt = query_receipts.stand_in(txn)
    outcome = apply_stk_result(txn, result, None)
    db.session.commit()
    return outcome


def query_b2c(txn: MpesaTransaction) -> Outcome:
    """Ask Transaction Status about a disbursement; the answer comes by callback. Commits."""
    try:
        accepted = mpesa_config.client().transaction_status(
            mpesa_config.callback_url("status_result"),
            mpesa_config.callback_url("status_timeout"),
            original_conversation_id=txn.originator_conversation_id,
            remarks="Disbursement status",
        )
    except DarajaError as exc:
        _checked(txn.id)
        db.session.commit()
        return Outcome(CallbackState.RECEIVED, f"Transaction Status failed: {exc}")
    _checked(txn.id, status_query_id=accepted.conversation_id)
    db.session.commit()
    return Outcome(CallbackState.RECEIVED, "Asked M-Pesa; the answer comes by callback.")


def _checked(transaction_id: int, **values) -> None:
    db.session.execute(
        MpesaTransaction.__table__.update()
        .where(MpesaTransaction.id == transaction_id)
        .values(
            status_checks=MpesaTransaction.status_checks + 1, last_checked_at=utcnow(), **values
        )
    )


def query_status(transaction_id: int, actor: Actor | None = None) -> Outcome:
    """Ask M-Pesa about one open transaction now (the portal's button, and after a time-out)."""
    txn = get_transaction(transaction_id)
    if actor is not None:
        audit.record(actor, "mpesa.status_queried", "mpesa_transaction", txn.id)
    if txn.transaction_type == MpesaType.STK_PUSH and txn.status in (
        MpesaStatus.PENDING,
        MpesaStatus.UNKNOWN,
    ):
        if not txn.checkout_request_id:
            raise IllegalTransition(
                "M-Pesa never gave this request a checkout id, so it cannot be asked about."
            )
        return query_stk(txn)
    if txn.transaction_type == MpesaType.B2C and txn.status in (
        MpesaStatus.PENDING,
        MpesaStatus.UNKNOWN,
    ):
        return query_b2c(txn)
    raise IllegalTransition(f"This transaction is {txn.status}; there is nothing to ask M-Pesa.")


def check_open_transactions(now=None) -> dict:
    """The hourly check: STK requests past the callback window get an STK Query; disbursements
    whose outcome is unknown (or silent too long) get a Transaction Status query; requests whose
    sending job was lost are enqueued again; requests that may have been sent without an id
    become unknown. Returns counts."""
    now = now or utcnow()
    settings = mpesa_config.current()
    window = timedelta(minutes=settings.callback_window_minutes)
    counts = {"requeued": 0, "stk_queried": 0, "b2c_queried": 0, "unknown": 0}
    for txn in _open(MpesaStatus.QUEUED, None, now - QUEUED_LOST_AFTER):
        job = (
            "app.jobs.mpesa.send_stk_push"
            if txn.transaction_type == MpesaType.STK_PUSH
            else "app.jobs.mpesa.send_b2c"
        )
        enqueue_after_commit(job, txn.id, queue="high")
        counts["requeued"] += 1
    for txn in _open(MpesaStatus.PENDING, MpesaType.STK_PUSH, now - window):
        if txn.checkout_request_id:
            query_stk(txn)
            counts["stk_queried"] += 1
        elif move(txn.id, (MpesaStatus.PENDING,), MpesaStatus.UNKNOWN,
                  result_desc="Sent, but M-Pesa's answer never came: it may have prompted the member."):  # fmt: skip
            counts["unknown"] += 1
    for txn in _open(MpesaStatus.UNKNOWN, MpesaType.B2C, now) + _open(
        MpesaStatus.PENDING, MpesaType.B2C, now - B2C_SILENT_AFTER
    ):
        query_b2c(txn)
        counts["b2c_queried"] += 1
    db.session.commit()
    return counts


def _open(status, kind, before) -> list[MpesaTransaction]:
    query = select(MpesaTransaction).where(
        MpesaTransaction.status == status, MpesaTransaction.created_at < before
    )
    if kind:
        query = query.where(MpesaTransaction.transaction_type == kind)
    return list(db.session.scalars(query.order_by(MpesaTransaction.id).limit(500)))
