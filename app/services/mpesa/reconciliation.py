"""Statement reconciliation: an uploaded org-portal statement matched, receipt by receipt, against
our M-Pesa transactions and the M-Pesa rows of the ledger (repayments and contributions).

The report sorts every statement row and every record of ours into one category: matched, in
the statement but not in our records, in our records (within the statement's period) but not in
the statement, amount mismatch, or Safaricom's charge. Amounts on report items are signed as the
statement signs them: negative is money out (a B2C disbursement, a charge, a withdrawal).
"""

import csv
import io
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from itertools import islice

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import defer

from app.clock import NAIROBI
from app.extensions import db
from app.models import (
    Contribution,
    Discrepancy,
    Member,
    MpesaReconciliation,
    MpesaStatus,
    MpesaTransaction,
    MpesaType,
    PaymentMethod,
    ReconciliationItem,
    ReconciliationStatus,
    Repayment,
    SuspenseItem,
)
from app.models.base import utcnow
from app.services import audit
from app.services.actor import Actor
from app.services.errors import IllegalTransition, NotFound, ValidationFailed
from app.services.lookup import ID_MAX, get_or_not_found
from app.services.mpesa import query_receipts, statement, suspense
from app.services.mpesa.statement import StatementError, StatementReader, StatementRow
from app.services.notifications import alerts
from app.services.pagination import Page, paginate

BATCH_SIZE = 500  # rows matched per query round and per commit (one progress step)
MAX_STATEMENT_BYTES = 20 * 1024 * 1024  # a busy paybill's month is a few MB
ITEMS_PER_PAGE = 50
DETAILS_LENGTH = 255  # ReconciliationItem.details
RUN_ACTOR = Actor.system("mpesa-reconciliation")
ZERO = Decimal("0.00")
# The order the report shows its categories in: what needs a person first.
CATEGORIES = (
    Discrepancy.NOT_IN_SYSTEM,
    Discrepancy.NOT_IN_STATEMENT,
    Discrepancy.AMOUNT_MISMATCH,
    Discrepancy.CHARGE,
    Discrepancy.MATCHED,
)
# The categories that need a person (charges and matches do not).
DISCREPANCIES = (
    Discrepancy.NOT_IN_SYSTEM,
    Discrepancy.NOT_IN_STATEMENT,
    Discrepancy.AMOUNT_MISMATCH,
)
CATEGORY_LABELS = {
    Discrepancy.NOT_IN_SYSTEM: "In the statement, not in our records",
    Discrepancy.NOT_IN_STATEMENT: "In our records, not in the statement",
    Discrepancy.AMOUNT_MISMATCH: "Amount mismatch",
    Discrepancy.CHARGE: "Charges",
    Discrepancy.MATCHED: "Matched",
}
EXPORT_COLUMNS = (
    "category",
    "receipt",
    "completed_at",
    "details",
    "other_party",
    "account_number",
    "statement_amount",
    "system_amount",
    "transaction_id",
    "suspense_item_id",
)


# --- upload ------------------------------------------------------------------------------------


def decode_upload(data: bytes) -> str:
    """The uploaded file as text; ValidationFailed (field `statement`) when it is empty, too
    large, or not a text file."""
    if not data:
        raise ValidationFailed({"statement": "Choose the statement file (CSV) to upload."})
    if len(data) > MAX_STATEMENT_BYTES:
        raise ValidationFailed(
            {"statement": f"The file is larger than {MAX_STATEMENT_BYTES // 1024 // 1024} MB."}
        )
    try:
        return statement.decode(data)
    except StatementError as exc:
        raise ValidationFailed({"statement": str(exc)}) from None


def _clean_filename(filename: str | None) -> str:
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:255] or "statement.csv"


def start(filename: str | None, text: str, actor: Actor, enqueue: bool = True):
    """Store the statement (checked whole: ValidationFailed naming the first bad line) as a
    queued reconciliation, commit, then queue its job (unless `enqueue` is false: the caller
    runs it). Audited."""
    if len(text) > MAX_STATEMENT_BYTES:
        raise ValidationFailed({"statement": "The statement is too large."})
    if "\x00" in text:
        raise ValidationFailed({"statement": "This is a binary file, not a CSV statement."})
    try:
        summary = statement.summarize(text)
    except StatementError as exc:
        raise ValidationFailed({"statement": str(exc)}) from None
    if summary.rows_total == 0 and summary.period_start is None:
        raise ValidationFailed({"statement": "The statement has no transactions."})
    reconciliation = MpesaReconciliation(
        filename=_clean_filename(filename),
        statement=text,
        status=ReconciliationStatus.QUEUED,
        rows_total=summary.rows_total,
        rows_done=0,
        period_start=summary.period_start,
        period_end=summary.period_end,
        counts={},
        uploaded_by_id=actor.staff_id,
    )
    db.session.add(reconciliation)
    db.session.flush()
    audit.record(
        actor,
        "mpesa_reconciliation.uploaded",
        "mpesa_reconciliation",
        reconciliation.id,
        filename=reconciliation.filename,
        rows=summary.rows_total,
        layout=summary.layout,
    )
    db.session.commit()
    if enqueue:
        from app.jobs.mpesa_reconcile import enqueue_reconciliation

        enqueue_reconciliation(reconciliation.id)
    return reconciliation


# --- the run -----------------------------------------------------------------------------------


@dataclass
class Tally:
    """What a run found so far, as stored in MpesaReconciliation.counts."""

    categories: Counter = field(default_factory=Counter)
    totals: dict = field(default_factory=lambda: defaultdict(lambda: ZERO))
    skipped: Counter = field(default_factory=Counter)
    duplicates: int = 0

    def add(self, item: dict) -> None:
        self.categories[item["category"]] += 1
        amount = item["statement_amount"]
        self.totals[item["category"]] += item["system_amount"] if amount is None else amount

    def as_dict(self) -> dict:
        counts = {str(c): self.categories[c] for c in CATEGORIES}
        counts["skipped"] = sum(self.skipped.values())
        counts["skipped_reasons"] = dict(sorted(self.skipped.items()))
        counts["duplicates"] = self.duplicates
        counts["totals"] = {str(c): f"{self.totals[c]:.2f}" for c in CATEGORIES}
        return counts


def _signed(transaction_type: str, amount: Decimal) -> Decimal:
    return -amount if transaction_type == MpesaType.B2C else amount


# The columns a run writes, each on every row (one executemany for a whole batch).
ITEM_COLUMNS = dict.fromkeys(
    ("receipt", "completed_at", "details", "other_party", "account_number", "statement_amount",
     "system_amount", "transaction_id")
)  # fmt: skip


def _item(category, row: StatementRow | None = None, **values) -> dict:
    """A report item's column values, from the statement row and what we found."""
    item = ITEM_COLUMNS | {"category": str(category)}
    if row is not None:
        item |= {
            "receipt": row.receipt[:20],
            "completed_at": row.completed_at,
            "details": row.details or None,
            "other_party": row.other_party[:120] or None,
            "account_number": row.account_number[:40] or None,
            "statement_amount": row.signed_amount,
        }
    item |= values
    if item["details"]:
        item["details"] = item["details"][:DETAILS_LENGTH]
    return item


class _Matcher:
    """Sorts statement rows into report items, one batch at a time, remembering what it saw."""

    def __init__(self, reconciliation_id: int, tally: Tally):
        self.reconciliation_id = reconciliation_id
        self.tally = tally
        self.seen: set[tuple] = set()
        self.receipts: set[str] = set()

    def _save(self, items: list[dict]) -> None:
        for item in items:
            item["reconciliation_id"] = self.reconciliation_id
            self.tally.add(item)
        if items:
            # A Core insert: the ORM's bulk insert splits rows by which values are None, which
            # here alternates row by row, and would send one statement per row.
            db.session.execute(insert(ReconciliationItem.__table__), items)

    def add_batch(self, rows: list[StatementRow]) -> None:
        """Judge a batch of statement rows: three queries and one insert, whatever its size."""
        items, payments = [], []
        for row in rows:
            if not row.counts:
                self.tally.skipped[row.skipped] += 1
                continue
            # An export that overlaps another repeats rows; the same receipt, details and amount
            # twice is one movement of money.
            key = (row.receipt, row.details, row.reason_type, row.signed_amount)
            if key in self.seen:
                self.tally.duplicates += 1
                continue
            self.seen.add(key)
            if row.is_charge:
                items.append(_item(Discrepancy.CHARGE, row))
            else:
                self.receipts.add(row.receipt)
                payments.append(row)
        transactions, ledger = _records_for({row.receipt for row in payments})
        unrecorded = [r for r in payments if r.receipt not in transactions and not ledger.get(r.receipt)]  # fmt: skip
        notes, supplied = self._receipts_for_stk_queries(unrecorded)
        if supplied:  # their transactions now hold these receipts
            found, on_ledger = _records_for(supplied)
            transactions |= found
            ledger.update(on_ledger)
        for row in payments:
            item = _judge(row, transactions.get(row.receipt), ledger.get(row.receipt))
            if row.receipt in notes:
                note = f"[{notes[row.receipt]}]"
                shown = (item["details"] or "")[: DETAILS_LENGTH - len(note) - 1]
                item["details"] = f"{shown} {note}".lstrip()
            items.append(item)
        self._save(items)

    def _receipts_for_stk_queries(self, rows: list[StatementRow]) -> tuple[dict[str, str], set]:
        """Give the statement's receipts to the STK payments credited on a query answer without
        one (query_receipts), where a row pairs with one such payment only. Returns a note by
        receipt for the report (also where the pairing is ambiguous: left to a person), and the
        receipts given."""
        matched, ambiguous = query_receipts.match_statement_rows(rows)
        paid_at = {row.receipt: row.completed_at for row in rows}
        notes, supplied = {}, set()
        for receipt, txn_id in matched.items():
            if query_receipts.supply(txn_id, receipt, paid_at[receipt], RUN_ACTOR, "statement"):
                supplied.add(receipt)
                notes[receipt] = f"receipt recorded for transaction {txn_id}, credited on STK Query"
        for receipt, ids in ambiguous.items():
            listed = ", ".join(str(txn_id) for txn_id in ids)
            notes[receipt] = f"may be transaction {listed}, credited on STK Query without a receipt"
        return notes, supplied

    def add_missing(self, start: datetime | None, end: datetime | None) -> None:
        """Our completed transactions of the period, and the M-Pesa ledger rows of its whole
        days that no transaction explains, whose receipt the statement does not have."""
        if start is None or end is None:
            return
        items = []
        completed = select(
            MpesaTransaction.id,
            MpesaTransaction.mpesa_receipt_number,
            MpesaTransaction.amount,
            MpesaTransaction.transaction_type,
            MpesaTransaction.completed_at,
            MpesaTransaction.account_reference,
        ).where(
            MpesaTransaction.status == MpesaStatus.COMPLETED,
            MpesaTransaction.mpesa_receipt_number.is_not(None),
            MpesaTransaction.completed_at.between(start, end),
        )
        for txn_id, receipt, amount, kind, completed_at, account in db.session.execute(
            completed.order_by(MpesaTransaction.completed_at, MpesaTransaction.id)
        ):
            if receipt not in self.receipts:
                items.append(
                    _item(
                        Discrepancy.NOT_IN_STATEMENT,
                        receipt=receipt,
                        completed_at=completed_at,
                        details=f"{_TYPE_LABELS.get(kind, kind)} {txn_id}",
                        account_number=account,
                        system_amount=_signed(kind, amount),
                        transaction_id=txn_id,
                    )
                )
        days = full_days(start, end)
        if days is not None:
            items.extend(
                _item(Discrepancy.NOT_IN_STATEMENT, **values)
                for values in _ledger_rows_between(*days)
                if values["receipt"] not in self.receipts
            )
        self._save(items)


_TYPE_LABELS = {
    MpesaType.STK_PUSH: "STK Push transaction",
    MpesaType.C2B: "Paybill transaction",
    MpesaType.B2C: "B2C disbursement",
}


def _records_for(receipts: set[str]) -> tuple[dict, dict]:
    """Our transactions by receipt, and the M-Pesa ledger rows by reference: three queries."""
    if not receipts:
        return {}, {}
    transactions = {
        row.mpesa_receipt_number: row
        for row in db.session.execute(
            select(
                MpesaTransaction.id,
                MpesaTransaction.mpesa_receipt_number,
                MpesaTransaction.amount,
                MpesaTransaction.status,
                MpesaTransaction.transaction_type,
            ).where(MpesaTransaction.mpesa_receipt_number.in_(receipts))
        )
    }
    ledger = defaultdict(list)
    for model, label in ((Repayment, "repayment"), (Contribution, "contribution")):
        query = select(model.id, model.reference, model.amount).where(
            model.method == PaymentMethod.MPESA, model.reference.in_(receipts)
        )
        for row_id, reference, amount in db.session.execute(query):
            ledger[reference].append((label, row_id, amount))
    return transactions, ledger


def _judge(row: StatementRow, txn, ledger: list | None) -> dict:
    """The report item for one statement payment, given what we hold under its receipt."""
    if txn is not None and txn.status == MpesaStatus.COMPLETED:
        system = _signed(txn.transaction_type, txn.amount)
        category = (
            Discrepancy.MATCHED if system == row.signed_amount else Discrepancy.AMOUNT_MISMATCH
        )
        return _item(category, row, system_amount=system, transaction_id=txn.id)
    if ledger:
        system = sum((amount for _, _, amount in ledger), ZERO)
        category = (
            Discrepancy.MATCHED if system == row.signed_amount else Discrepancy.AMOUNT_MISMATCH
        )
        found = ", ".join(f"{label} {row_id}" for label, row_id, _ in ledger)
        return _item(
            category,
            row,
            details=f"{row.details} [{found}]",
            system_amount=system,
            transaction_id=txn.id if txn is not None else None,
        )
    if txn is not None:
        return _item(
            Discrepancy.NOT_IN_SYSTEM,
            row,
            details=f"{row.details} [our transaction {txn.id} is {txn.status}]",
            transaction_id=txn.id,
        )
    return _item(Discrepancy.NOT_IN_SYSTEM, row)


def full_days(start: datetime, end: datetime) -> tuple[date, date] | None:
    """The first and last Nairobi dates the period covers from midnight to midnight, or None:
    ledger rows carry only a date, so a part-covered day cannot say whether they belong."""
    local_start, local_end = start.astimezone(NAIROBI), end.astimezone(NAIROBI)
    first = local_start.date() + (timedelta(0) if local_start.time() == time(0) else timedelta(1))
    covers_end = local_end.time() >= time(23, 59, 59)
    last = local_end.date() - (timedelta(0) if covers_end else timedelta(1))
    return (first, last) if first <= last else None


def _ledger_rows_between(first: date, last: date) -> Iterator[dict]:
    """Report values of the M-Pesa repayments and contributions paid from `first` to `last`
    whose receipt belongs to no M-Pesa transaction of ours (those are judged as transactions)."""
    for model, describe in (
        (Repayment, lambda r: f"repayment {r.id} on loan {r.loan_id}, paid {r.paid_on}"),
        (Contribution, lambda c: f"{c.kind} contribution {c.id}, paid {c.paid_on}"),
    ):
        known = select(MpesaTransaction.id).where(
            MpesaTransaction.mpesa_receipt_number == model.reference
        )
        query = (
            select(model, Member.member_number)
            .join(Member, Member.id == model.member_id)
            .where(
                model.method == PaymentMethod.MPESA,
                model.paid_on.between(first, last),
                ~known.exists(),
            )
            .order_by(model.paid_on, model.id)
        )
        for record, member_number in db.session.execute(query):
            yield {
                "receipt": (record.reference or "")[:20],
                "details": describe(record),
                "account_number": member_number,
                "system_amount": record.amount,
            }


def _batches(rows: Iterable, size: int) -> Iterator[list]:
    iterator = iter(rows)
    while batch := list(islice(iterator, size)):
        yield batch


def _reset(reconciliation: MpesaReconciliation) -> None:
    """Start the run from the first row: an interrupted run's items are dropped. Commits."""
    db.session.execute(
        delete(ReconciliationItem).where(ReconciliationItem.reconciliation_id == reconciliation.id)
    )
    reconciliation.status = ReconciliationStatus.RUNNING
    reconciliation.rows_done = 0
    reconciliation.counts = {}
    reconciliation.error = None
    reconciliation.finished_at = None
    db.session.commit()


def _fail(reconciliation_id: int, message: str) -> None:
    reconciliation = db.session.get(MpesaReconciliation, reconciliation_id)
    reconciliation.status = ReconciliationStatus.FAILED
    reconciliation.error = message
    db.session.commit()


def run(reconciliation_id: int) -> MpesaReconciliation | None:
    """Write the reconciliation's report. Safe to repeat: a finished run is left as it is, any
    other starts again from the first row. Commits once per batch of rows (rows_done shows the
    progress). A statement that cannot be read marks the run failed; any other error marks it
    failed too and is raised again, so that the job is retried. None for an unknown id."""
    # The statement is read once; each commit reloads only the small columns.
    reconciliation = db.session.get(
        MpesaReconciliation, reconciliation_id, options=[defer(MpesaReconciliation.statement)]
    )
    if reconciliation is None or reconciliation.status == ReconciliationStatus.FINISHED:
        return reconciliation
    _reset(reconciliation)
    text = db.session.scalar(
        select(MpesaReconciliation.statement).where(MpesaReconciliation.id == reconciliation_id)
    )
    tally = Tally()
    matcher = _Matcher(reconciliation.id, tally)
    try:
        for batch in _batches(StatementReader(text), BATCH_SIZE):
            matcher.add_batch(batch)
            reconciliation.rows_done += len(batch)
            reconciliation.counts = tally.as_dict()
            db.session.commit()
        matcher.add_missing(reconciliation.period_start, reconciliation.period_end)
        reconciliation.counts = tally.as_dict()
        reconciliation.status = ReconciliationStatus.FINISHED
        reconciliation.finished_at = utcnow()
        audit.record(
            RUN_ACTOR,
            "mpesa_reconciliation.finished",
            "mpesa_reconciliation",
            reconciliation.id,
            **{str(c): tally.categories[c] for c in CATEGORIES},
        )
        _alert_discrepancies(reconciliation, tally)
        db.session.commit()
    except StatementError as exc:
        db.session.rollback()
        _fail(reconciliation_id, str(exc))
    except Exception as exc:
        db.session.rollback()
        _fail(reconciliation_id, f"The run stopped ({type(exc).__name__}); it is tried again.")
        raise
    return get_reconciliation(reconciliation_id)


def _alert_discrepancies(reconciliation: MpesaReconciliation, tally: Tally) -> None:
    """Alert the administrators (after the commit) when the run found anything to look into."""
    found = {CATEGORY_LABELS[c]: tally.categories[c] for c in DISCREPANCIES if tally.categories[c]}
    if found:
        alerts.raise_alert(
            "reconciliation_discrepancies",
            f"Reconciliation {reconciliation.id} of {reconciliation.filename} found "
            f"{sum(found.values())} discrepancies to review.",
            {"reconciliation": reconciliation.id, **found},
        )


# --- after the run -----------------------------------------------------------------------------


def _credited_message(receipt: str, credited: str) -> str:
    return f"Receipt {receipt} is already credited ({credited}); it needs no suspense item."


def send_to_suspense(item_id: int, actor: Actor) -> SuspenseItem:
    """Put a receipt that is in the statement but not in our records (money in only) into the
    suspense queue, linked to this report item. Safe to repeat: the same suspense item is
    returned, and a receipt already in the queue is linked rather than added twice. Commits."""
    item = get_item(item_id)
    if item.suspense_item_id is not None:
        return db.session.get(SuspenseItem, item.suspense_item_id)
    if item.category != Discrepancy.NOT_IN_SYSTEM:
        raise IllegalTransition(
            "Only a receipt that is in the statement but not in our records can go to the "
            "suspense queue."
        )
    if item.statement_amount is None or item.statement_amount <= 0:
        raise IllegalTransition(
            f"Receipt {item.receipt} is money paid out; only money paid in can be credited."
        )
    credited = suspense.credited_as(item.receipt)
    if credited:
        raise IllegalTransition(_credited_message(item.receipt, credited))
    try:
        return _hold(item, actor)
    except IntegrityError:
        # Another request put the same receipt in the queue at this moment: link to that one.
        db.session.rollback()
        return _hold(get_item(item_id), actor)


def _hold(item: ReconciliationItem, actor: Actor) -> SuspenseItem:
    reconciliation = get_reconciliation(item.reconciliation_id)
    phone = (item.other_party or "").partition(" - ")[0]
    paid_by = f" Paid by {item.other_party}." if item.other_party else ""
    account = f" Account {item.account_number}." if item.account_number else ""
    held = suspense.hold(
        "statement",
        item.statement_amount,
        f"In the M-Pesa statement {reconciliation.filename} but not in our records."
        f"{paid_by}{account}",
        receipt=item.receipt,
        phone_number=phone.strip()[:64] or None,
        account_reference=item.account_number,
        paid_at=item.completed_at,
        transaction_id=item.transaction_id,
        reconciliation_id=item.reconciliation_id,
    )
    item.suspense_item_id = held.id
    audit.record(
        actor,
        "mpesa_reconciliation.sent_to_suspense",
        "mpesa_suspense_item",
        held.id,
        receipt=item.receipt,
        amount=f"{item.statement_amount:.2f}",
        reconciliation_id=item.reconciliation_id,
        reconciliation_item_id=item.id,
    )
    db.session.commit()
    return held


def get_reconciliation(reconciliation_id: int) -> MpesaReconciliation:
    """The reconciliation, without its statement text (loaded only when read); NotFound."""
    found = None
    if isinstance(reconciliation_id, int) and 1 <= reconciliation_id <= ID_MAX:
        found = db.session.get(
            MpesaReconciliation, reconciliation_id, options=[defer(MpesaReconciliation.statement)]
        )
    if found is None:
        raise NotFound(f"There is no reconciliation {reconciliation_id}.")
    return found


def reconciliations_query():
    """Every reconciliation, newest first, without the statements' text."""
    return (
        select(MpesaReconciliation)
        .options(defer(MpesaReconciliation.statement))
        .order_by(MpesaReconciliation.id.desc())
    )


def get_item(item_id: int) -> ReconciliationItem:
    return get_or_not_found(ReconciliationItem, item_id, f"There is no report item {item_id}.")


def check_category(category: str | None) -> Discrepancy:
    """The category named, or NotFound."""
    try:
        return Discrepancy(category)
    except ValueError:
        raise NotFound(f"There is no report category {str(category)[:30]}.") from None


def items_page(
    reconciliation_id: int, category: str, page: int, per_page: int = ITEMS_PER_PAGE
) -> Page:
    """One page of the report's items of one category, in statement order."""
    query = (
        select(ReconciliationItem)
        .where(
            ReconciliationItem.reconciliation_id == reconciliation_id,
            ReconciliationItem.category == check_category(category),
        )
        .order_by(ReconciliationItem.id)
    )
    return paginate(query, page, per_page)


def default_category(reconciliation: MpesaReconciliation) -> Discrepancy:
    """The first category with items, in report order (what needs a person first)."""
    counts = reconciliation.counts or {}
    return next((c for c in CATEGORIES if counts.get(str(c))), Discrepancy.NOT_IN_SYSTEM)


def totals(reconciliation: MpesaReconciliation) -> dict[str, Decimal]:
    """The report's money per category (statement amounts, or ours where the statement has
    none), as Decimal."""
    stored = (reconciliation.counts or {}).get("totals", {})
    return {str(c): Decimal(stored.get(str(c), "0.00")) for c in CATEGORIES}


def _csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, datetime):
        return value.astimezone(NAIROBI).isoformat()
    text = str(value)
    # A spreadsheet runs a cell starting with = + - @ as a formula; text never should.
    return "'" + text if isinstance(value, str) and text.startswith(("=", "+", "-", "@")) else text


def export_csv(reconciliation_id: int) -> Iterator[str]:
    """The report as CSV text chunks (header first), category by category in report order,
    reading the items in pages so that a large report is never held in memory."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    for category in CATEGORIES:
        last_id = 0
        while True:
            items = list(
                db.session.execute(
                    select(
                        *(getattr(ReconciliationItem, name) for name in EXPORT_COLUMNS),
                        ReconciliationItem.id,
                    )
                    .where(
                        ReconciliationItem.reconciliation_id == reconciliation_id,
                        ReconciliationItem.category == category,
                        ReconciliationItem.id > last_id,
                    )
                    .order_by(ReconciliationItem.id)
                    .limit(1000)
                )
            )
            if not items:
                break
            for item in items:
                writer.writerow([_csv_cell(value) for value in item[:-1]])
            last_id = items[-1].id
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
