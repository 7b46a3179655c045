"""STK payments credited on an STK Query answer, which gives no M-Pesa receipt: they are
credited under a stand-in (the checkout id's last 20 characters) until the real receipt comes,
from a late callback or from a statement reconciliation, and then replaces it on the transaction
and on its ledger row, audited. Until it does, the statement's row for that payment looks like
money we never recorded, and crediting it from the suspense queue would pay the member twice."""

from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import select, update

from app.extensions import db
from app.integrations.daraja_payloads import msisdn_matches
from app.models import Contribution, MpesaStatus, MpesaTransaction, MpesaType, Repayment
from app.services import audit
from app.services.actor import Actor
from app.services.mpesa import suspense
from app.services.mpesa.statement import StatementRow
from app.services.mpesa.transactions import locked

# When the member can have paid, around our request's creation: a prompt times out in a minute
# or two; the margin allows for the two clocks.
PAID_FROM = timedelta(minutes=5)
PAID_UNTIL = timedelta(minutes=30)


def stand_in(txn: MpesaTransaction) -> str:
    """The receipt an STK Query credit records in place of the one it is not given."""
    return (txn.checkout_request_id or "")[-20:]


def awaits_receipt(txn: MpesaTransaction) -> bool:
    return (
        txn.transaction_type == MpesaType.STK_PUSH
        and txn.status == MpesaStatus.COMPLETED
        and bool(txn.checkout_request_id)
        and txn.mpesa_receipt_number == stand_in(txn)
    )


def supply(
    transaction_id: int, receipt: str, paid_at: datetime | None, actor: Actor, source: str
) -> bool:
    """Record M-Pesa's `receipt` for a payment credited on an STK Query answer, on the
    transaction and its ledger row, in place of the stand-in; False (nothing changed) when the
    transaction does not await one, or the receipt already credits something (then the two are
    different payments). In the caller's transaction."""
    txn = locked(transaction_id)
    if not receipt or not awaits_receipt(txn) or suspense.credited_as(receipt):
        return False
    before = txn.mpesa_receipt_number
    txn.mpesa_receipt_number = receipt
    txn.completed_at = txn.completed_at or paid_at
    for model, row_id in ((Repayment, txn.repayment_id), (Contribution, txn.contribution_id)):
        if row_id is not None:
            db.session.execute(
                update(model)
                .where(model.id == row_id, model.reference == before)
                .values(reference=receipt)
            )
    audit.record(
        actor, "mpesa.receipt_recorded", "mpesa_transaction", txn.id,
        receipt=receipt, replaced=before, source=source,
    )  # fmt: skip
    return True


def match_statement_rows(rows: list[StatementRow]) -> tuple[dict[str, int], dict[str, list[int]]]:
    """Statement rows of money paid in that no record of ours has under their receipt, paired
    with the STK payments awaiting a receipt: the same amount, the statement's phone fitting
    the member's, paid within minutes of our request. Only a pair with no other candidate on
    either side counts. Returns (transaction id by receipt, the ambiguous: candidates by
    receipt)."""
    rows = [row for row in rows if row.signed_amount > 0 and row.completed_at is not None]
    if not rows:
        return {}, {}
    waiting = db.session.scalars(
        select(MpesaTransaction).where(
            MpesaTransaction.transaction_type == MpesaType.STK_PUSH,
            MpesaTransaction.status == MpesaStatus.COMPLETED,
            MpesaTransaction.amount.in_({row.signed_amount for row in rows}),
            MpesaTransaction.created_at >= min(row.completed_at for row in rows) - PAID_UNTIL,
            MpesaTransaction.created_at <= max(row.completed_at for row in rows) + PAID_FROM,
        )
    ).all()
    waiting = [txn for txn in waiting if awaits_receipt(txn)]
    candidates = {row.receipt: [txn.id for txn in waiting if _fits(row, txn)] for row in rows}
    claims = defaultdict(int)
    for ids in candidates.values():
        for txn_id in ids:
            claims[txn_id] += 1
    matched = {
        receipt: ids[0]
        for receipt, ids in candidates.items()
        if len(ids) == 1 and claims[ids[0]] == 1
    }
    ambiguous = {
        receipt: ids for receipt, ids in candidates.items() if ids and receipt not in matched
    }
    return matched, ambiguous


def _fits(row: StatementRow, txn: MpesaTransaction) -> bool:
    created = txn.created_at
    phone = row.other_party.split(" - ")[0].strip()
    return (
        txn.amount == row.signed_amount
        and created - PAID_FROM <= row.completed_at <= created + PAID_UNTIL
        and (not phone or msisdn_matches(phone, txn.phone_number or ""))
    )
