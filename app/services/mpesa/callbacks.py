"""Callbacks from Safaricom: stored exactly as they came before anything reads them, answered at
once, and processed by a job exactly once.

Exactly once: the job claims its callback row with a conditional UPDATE in the same transaction
as everything it changes, and each transaction moves forward only (a conditional UPDATE on its
status), so a repeated or concurrent callback finds nothing left to do. Receipts are unique
across STK, C2B and B2C. Only callbacks matching a request we sent (ids, amount, phone) credit
anything; the rest are kept and shown, and their money goes to the suspense queue."""

import json
import logging
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select, update

from app.extensions import db
from app.integrations import daraja_payloads as payloads
from app.models import (
    CallbackKind,
    CallbackState,
    MpesaCallback,
    MpesaStatus,
    MpesaTransaction,
    MpesaType,
)
from app.models.base import utcnow
from app.services.actor import Actor
from app.services.after_commit import enqueue_after_commit
from app.services.mpesa import activity, paybill, query_receipts, results, suspense, verification
from app.services.mpesa import config as mpesa_config
from app.services.mpesa.crediting import Outcome, credit
from app.services.mpesa.transactions import find_locked, move
from app.services.notifications import alerts
from app.services.prompt_write import commit_promptly

log = logging.getLogger(__name__)

PROCESS_JOB = "app.jobs.mpesa.process_callback"
KEPT_HEADERS = ("Content-Type", "User-Agent", "X-Forwarded-For", "BusinessShortCode")
PATHS = {
    "stk": CallbackKind.STK,
    "b2c/result": CallbackKind.B2C_RESULT,
    "b2c/timeout": CallbackKind.B2C_TIMEOUT,
    "status/result": CallbackKind.STATUS_RESULT,
    "status/timeout": CallbackKind.STATUS_TIMEOUT,
    "balance/result": CallbackKind.BALANCE_RESULT,
    "balance/timeout": CallbackKind.BALANCE_TIMEOUT,
    "c2b/validation": CallbackKind.C2B_VALIDATION,
    "c2b/confirmation": CallbackKind.C2B_CONFIRMATION,
}
PARSERS = {
    CallbackKind.STK: payloads.parse_stk_callback,
    CallbackKind.C2B_VALIDATION: payloads.parse_c2b,
    CallbackKind.C2B_CONFIRMATION: payloads.parse_c2b,
}


def _decode(raw: bytes):
    """The JSON body (floats as Decimal), or PayloadError saying why it is not."""
    try:
        return json.loads(raw.decode("utf-8"), parse_float=Decimal)
    except (UnicodeDecodeError, ValueError) as exc:
        raise payloads.PayloadError({"body": f"is not JSON: {exc}"[:200]}) from None


def _correlation(kind: str, parsed) -> str | None:
    if kind == CallbackKind.STK:
        return parsed.checkout_request_id
    if kind in (CallbackKind.C2B_VALIDATION, CallbackKind.C2B_CONFIRMATION):
        return parsed.trans_id
    if kind == CallbackKind.STATUS_RESULT:
        return parsed.param("OriginatorConversationID") or parsed.conversation_id
    return parsed.originator_conversation_id or parsed.conversation_id


def receive(
    kind: str, raw: bytes, headers, remote_addr: str | None
) -> tuple[MpesaCallback, dict | None]:
    """Store a callback as it came (with the few headers worth keeping) and, if it is readable,
    enqueue its processing after the commit. Returns the row and, for an unreadable body, the
    errors naming each bad field (the row is kept, flagged `malformed`). Commits."""
    text = raw.decode("utf-8", errors="replace")
    callback = MpesaCallback(
        kind=kind,
        body=text.replace("\x00", "\ufffd"),
        headers={name: headers.get(name)[:300] for name in KEPT_HEADERS if headers.get(name)},
        remote_addr=(remote_addr or "")[:45] or None,
    )
    errors = None
    try:
        parsed = PARSERS.get(kind, payloads.parse_result)(_decode(raw))
        callback.correlation_id = (_correlation(kind, parsed) or "")[:100] or None
    except payloads.PayloadError as exc:
        errors = dict(exc.errors)
        callback.state = CallbackState.MALFORMED
        callback.outcome = "Not processed: " + "; ".join(f"{k} {v}" for k, v in errors.items())
        callback.processed_at = utcnow()

    def save() -> None:
        db.session.add(callback)
        db.session.flush()
        if errors is None and kind != CallbackKind.C2B_VALIDATION:
            enqueue_after_commit(
                PROCESS_JOB, callback.id, queue="high", job_id=f"mpesa-callback-{callback.id}"
            )
        db.session.commit()

    commit_promptly(save)  # Daraja waits for our answer
    if errors:
        log.warning("M-Pesa %s callback %s is malformed: %s", kind, callback.id, sorted(errors))
    return callback, errors


def validate_paybill(raw: bytes, headers, remote_addr: str | None) -> dict:
    """Store a C2B validation request and answer it at once: accepted when the account number
    names a member or a loan (or when the settings accept every payment), else Daraja's reject
    code. Commits."""
    callback, errors = receive(CallbackKind.C2B_VALIDATION, raw, headers, remote_addr)
    if errors:
        return paybill.REJECT_OTHER
    answer, words = paybill.validation_answer(payloads.parse_c2b(_decode(raw)))
    db.session.execute(
        update(MpesaCallback)
        .where(MpesaCallback.id == callback.id)
        .values(state=CallbackState.PROCESSED, outcome=words, processed_at=utcnow())
    )
    db.session.commit()
    return answer


def process(callback_id: int) -> str | None:
    """Apply one stored callback, exactly once; returns its final state (None if there was
    nothing to do). Commits once."""
    callback = db.session.get(MpesaCallback, callback_id)
    if callback is None or callback.state != CallbackState.RECEIVED:
        return None
    claimed = db.session.execute(
        update(MpesaCallback)
        .where(MpesaCallback.id == callback_id, MpesaCallback.state == CallbackState.RECEIVED)
        .values(processed_at=utcnow())
    ).rowcount
    if not claimed:
        db.session.rollback()
        return None
    try:
        data = _decode(callback.body.encode("utf-8"))
        txn_id, outcome = HANDLERS[callback.kind](callback, data)
    except payloads.PayloadError as exc:
        txn_id, outcome = (
            None,
            Outcome(CallbackState.MALFORMED, f"Not processed: {dict(exc.errors)}"),
        )
    db.session.execute(
        update(MpesaCallback)
        .where(MpesaCallback.id == callback_id)
        .values(state=outcome.state, outcome=outcome.words[:2000], transaction_id=txn_id)
    )
    activity.callback_processed(callback.kind, callback_id, outcome, txn_id)
    db.session.commit()
    return outcome.state


def _stk(callback: MpesaCallback, data) -> tuple[int | None, Outcome]:
    result = payloads.parse_stk_callback(data)
    txn = find_locked(
        checkout_request_id=result.checkout_request_id, transaction_type=MpesaType.STK_PUSH
    )
    if txn is None or (
        txn.merchant_request_id and txn.merchant_request_id != result.merchant_request_id
    ):
        if result.succeeded:
            suspense.hold(
                "callback", result.amount, "An STK payment for a request we never sent.",
                receipt=result.receipt, phone_number=result.phone, paid_at=result.transaction_date,
                callback_id=callback.id,
            )  # fmt: skip
        return None, Outcome(
            CallbackState.UNMATCHED,
            f"No STK request of ours has CheckoutRequestID {result.checkout_request_id}; nothing credited.",
        )
    if not txn.is_open or txn.status == MpesaStatus.HELD:
        return txn.id, Outcome(CallbackState.DUPLICATE, f"Already {txn.status}: nothing changed.")
    return txn.id, apply_stk_result(txn, result, callback.id)


def apply_stk_result(txn: MpesaTransaction, result, callback_id: int | None) -> Outcome:
    """Settle an STK request from its callback (or an equivalent query answer)."""
    if not result.succeeded:
        moved = move(
            txn.id,
            (MpesaStatus.QUEUED, MpesaStatus.PENDING, MpesaStatus.UNKNOWN),
            MpesaStatus.FAILED,
            result_code=result.result_code,
            result_desc=result.result_desc,
        )
        if not moved:
            return Outcome(CallbackState.DUPLICATE, "Already settled: nothing changed.")
        return Outcome(
            CallbackState.PROCESSED, f"Not paid: {result.result_desc} ({result.result_code})."
        )
    mismatch = []
    if result.amount is not None and result.amount != txn.amount:
        mismatch.append(f"amount KES {result.amount:,.2f} instead of KES {txn.amount:,.2f}")
    if (
        result.phone
        and txn.phone_number
        and not payloads.msisdn_matches(result.phone, txn.phone_number)
    ):
        mismatch.append(f"phone {result.phone} instead of {txn.phone_number}")
    if mismatch:
        reason = "The callback does not match our request: " + ", ".join(mismatch) + "."
        if not move(
            txn.id,
            (MpesaStatus.QUEUED, MpesaStatus.PENDING, MpesaStatus.UNKNOWN),
            MpesaStatus.HELD,
            hold_reason=reason,
            mpesa_receipt_number=result.receipt,
            result_code=result.result_code,
            result_desc=result.result_desc,
        ):
            return Outcome(CallbackState.DUPLICATE, "Already settled: nothing changed.")
        suspense.hold(
            "callback", result.amount or txn.amount, reason, receipt=result.receipt,
            phone_number=result.phone, account_reference=txn.account_reference,
            paid_at=result.transaction_date, transaction_id=txn.id, callback_id=callback_id,
        )  # fmt: skip
        alerts.raise_alert(
            "mpesa_mismatch",
            f"STK payment {txn.id} held: {reason}",
            {"transaction": txn.id, "receipt": result.receipt},
        )
        return Outcome(CallbackState.HELD, f"Held for review: {reason}")
    if query_receipts.awaits_receipt(txn):
        if query_receipts.supply(txn.id, result.receipt, result.transaction_date,
                                 Actor.callback("mpesa:stk"), "callback"):  # fmt: skip
            return Outcome(
                CallbackState.PROCESSED,
                f"Receipt {result.receipt} recorded for the payment credited on STK Query.",
            )
        return Outcome(CallbackState.DUPLICATE, "Already settled: nothing changed.")
    if callback_id is not None and mpesa_config.current().verifies_before_credit:
        return verification.hold_for_verification(txn, result)
    return credit(
        txn,
        result.receipt,
        result.transaction_date,
        Actor.callback("mpesa:stk"),
        callback_id,
        result_code=result.result_code,
        result_desc=result.result_desc,
    )


def _c2b_confirmation(callback: MpesaCallback, data) -> tuple[int | None, Outcome]:
    return paybill.confirm(payloads.parse_c2b(data), callback)


HANDLERS = {
    CallbackKind.STK: _stk,
    CallbackKind.B2C_RESULT: results.b2c_result,
    CallbackKind.B2C_TIMEOUT: results.b2c_timeout,
    CallbackKind.STATUS_RESULT: results.status_result,
    CallbackKind.STATUS_TIMEOUT: results.timeout_only,
    CallbackKind.BALANCE_RESULT: results.balance_result,
    CallbackKind.BALANCE_TIMEOUT: results.timeout_only,
    CallbackKind.C2B_CONFIRMATION: _c2b_confirmation,
}


def waiting_ids(older_than_seconds: int = 60, limit: int = 500) -> list[int]:
    """Callbacks stored but never processed (their job was lost while Redis was down)."""
    return list(
        db.session.scalars(
            select(MpesaCallback.id)
            .where(
                MpesaCallback.state == CallbackState.RECEIVED,
                MpesaCallback.received_at < utcnow() - timedelta(seconds=older_than_seconds),
            )
            .order_by(MpesaCallback.id)
            .limit(limit)
        )
    )
