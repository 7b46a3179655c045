"""Result callbacks (the `Result` envelope): B2C results and queue time-outs, Transaction
Status results and Account Balance results, each applied to the transaction it names."""

from app.integrations import daraja_payloads as payloads
from app.models import CallbackState, MpesaCallback, MpesaStatus, MpesaTransaction, MpesaType
from app.services.after_commit import enqueue_after_commit
from app.services.mpesa import balance, disbursements
from app.services.mpesa.crediting import Outcome
from app.services.mpesa.transactions import find_locked, move
from app.services.notifications import alerts


def b2c_result(callback: MpesaCallback, data) -> tuple[int | None, Outcome]:
    result = payloads.parse_result(data)
    txn = find_locked(
        originator_conversation_id=result.originator_conversation_id, transaction_type=MpesaType.B2C
    )
    if txn is None and result.conversation_id:
        txn = find_locked(conversation_id=result.conversation_id, transaction_type=MpesaType.B2C)
    if txn is None:
        return None, Outcome(
            CallbackState.UNMATCHED, "No disbursement of ours has these ids; nothing changed."
        )
    return txn.id, apply_b2c_result(txn, result)


def apply_b2c_result(txn: MpesaTransaction, result) -> Outcome:
    if not txn.is_open:
        return Outcome(CallbackState.DUPLICATE, f"Already {txn.status}: nothing changed.")
    if not result.succeeded:
        if disbursements.fail(txn, result.result_code, result.result_desc):
            return Outcome(
                CallbackState.PROCESSED, f"Not paid: {result.result_desc} ({result.result_code})."
            )
        return Outcome(CallbackState.DUPLICATE, "Already settled: nothing changed.")
    payment = payloads.b2c_payment(result)
    if payment.amount != txn.amount or (
        payment.recipient_phone
        and not payloads.msisdn_matches(payment.recipient_phone, txn.phone_number)
    ):
        reason = (
            f"M-Pesa reports KES {payment.amount:,.2f} to {payment.recipient_phone or 'an unnamed phone'}; "
            f"we sent KES {txn.amount:,.2f} to {txn.phone_number}."
        )
        if move(txn.id, (MpesaStatus.PENDING, MpesaStatus.UNKNOWN), MpesaStatus.HELD, hold_reason=reason,
                mpesa_receipt_number=payment.receipt, result_code=result.result_code):  # fmt: skip
            alerts.raise_alert(
                "mpesa_mismatch",
                f"Disbursement {txn.id} held: {reason}",
                {"transaction": txn.id, "receipt": payment.receipt},
            )
            return Outcome(CallbackState.HELD, f"Held for review: {reason}")
        return Outcome(CallbackState.DUPLICATE, "Already settled: nothing changed.")
    if disbursements.complete(txn, payment, result.result_code, result.result_desc):
        return Outcome(
            CallbackState.PROCESSED,
            f"Disbursed: receipt {payment.receipt}; loan {txn.loan_id} is active.",
        )
    return Outcome(CallbackState.DUPLICATE, "Already settled: nothing changed.")


def b2c_timeout(callback: MpesaCallback, data) -> tuple[int | None, Outcome]:
    result = payloads.parse_result(data)
    txn = find_locked(
        originator_conversation_id=result.originator_conversation_id, transaction_type=MpesaType.B2C
    )
    if txn is None:
        return None, Outcome(CallbackState.UNMATCHED, "No disbursement of ours has these ids.")
    if disbursements.mark_unknown(
        txn, "M-Pesa's queue timed out: outcome unknown, asking Transaction Status."
    ):
        enqueue_after_commit("app.jobs.mpesa.query_status", txn.id, queue="default")
        return txn.id, Outcome(CallbackState.PROCESSED, "Outcome unknown: a status query follows.")
    return txn.id, Outcome(CallbackState.DUPLICATE, f"Already {txn.status}: nothing changed.")


def status_result(callback: MpesaCallback, data) -> tuple[int | None, Outcome]:
    result = payloads.parse_result(data)
    original = result.param("OriginatorConversationID")
    txn = find_locked(originator_conversation_id=original) if original else None
    if txn is None and result.conversation_id:
        txn = find_locked(status_query_id=result.conversation_id)
    if txn is None:
        return None, Outcome(
            CallbackState.UNMATCHED, "The status result names no transaction of ours."
        )
    if not result.succeeded:
        # The query itself failed (for example the transaction is not found yet): ask again later.
        return txn.id, Outcome(
            CallbackState.PROCESSED,
            f"Status query failed: {result.result_desc}; asked again later.",
        )
    report = payloads.transaction_status(result)
    if txn.transaction_type == MpesaType.B2C:
        if report.completed:
            payment = payloads.B2CPayment(
                receipt=report.receipt, amount=report.amount or txn.amount,
                recipient_phone=None, recipient_name=payloads.split_public_name(
                    report.credit_party_name or (report.debit_party_names[-1:] or [None])[0])[1],
                completed_at=report.finalised_at, recipient_registered=None,
                utility_balance=None, working_balance=None, charges_paid_balance=None,
            )  # fmt: skip
            if payment.amount != txn.amount:
                alerts.raise_alert(
                    "mpesa_mismatch",
                    f"Transaction Status reports KES {payment.amount:,.2f} for disbursement "
                    f"{txn.id} of KES {txn.amount:,.2f}; left for review.",
                    {"transaction": txn.id, "receipt": payment.receipt},
                )
                return txn.id, Outcome(
                    CallbackState.HELD, "Status reports a different amount; left for review."
                )
            if disbursements.complete(
                txn, payment, "0", f"Confirmed by Transaction Status: {report.status}"
            ):
                return txn.id, Outcome(
                    CallbackState.PROCESSED, f"Confirmed paid: receipt {report.receipt}."
                )
            return txn.id, Outcome(CallbackState.DUPLICATE, "Already settled: nothing changed.")
        if disbursements.fail(txn, "status", f"Transaction Status: {report.status}"):
            return txn.id, Outcome(
                CallbackState.PROCESSED, f"Confirmed not paid ({report.status})."
            )
        return txn.id, Outcome(CallbackState.DUPLICATE, "Already settled: nothing changed.")
    return txn.id, Outcome(
        CallbackState.PROCESSED, f"Status: {report.status}, receipt {report.receipt}."
    )


def timeout_only(callback: MpesaCallback, data) -> tuple[int | None, Outcome]:
    payloads.parse_result(data)
    return None, Outcome(
        CallbackState.PROCESSED, "M-Pesa's queue timed out; the hourly check asks again."
    )


def balance_result(callback: MpesaCallback, data) -> tuple[int | None, Outcome]:
    return None, balance.record(payloads.parse_result(data))
