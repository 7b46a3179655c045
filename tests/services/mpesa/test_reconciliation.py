"""Statement reconciliation against our transactions and the M-Pesa ledger: every kind of
discrepancy on one generated statement, repeat runs, progress in batches, the job through a real
RQ worker, sending unmatched receipts to the suspense queue, and the CSV export."""

import csv
import io
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.jobs.mpesa_reconcile import reconcile_statement
from app.models import (
    AuditLog,
    Discrepancy,
    MpesaReconciliation,
    MpesaStatus,
    MpesaTransaction,
    MpesaType,
    ReconciliationItem,
    ReconciliationStatus,
    SuspenseItem,
)
from app.services import contributions, repayments
from app.services.errors import IllegalTransition, ValidationFailed
from app.services.mpesa import reconciliation, suspense
from tests.factories import SYSTEM
from tests.services.mpesa.statement_data import (
    charge,
    mpesa_transaction,
    nairobi,
    paid_in,
    statement,
    withdrawn,
)


@pytest.fixture
def records(member, active_loan):
    """Our side: transactions and ledger rows, some in the statement, some not, some outside
    its period (March 2026)."""
    made = {
        "stk": mpesa_transaction("RCA0000001", "1500", completed_at=nairobi(2026, 3, 2)),
        "c2b": mpesa_transaction("RCA0000002", "2500", MpesaType.C2B, completed_at=nairobi(2026, 3, 3)),
        "b2c": mpesa_transaction("RCA0000004", "5000", MpesaType.B2C, completed_at=nairobi(2026, 3, 4)),
        "pending": mpesa_transaction("RCA0000008", "300", status=MpesaStatus.HELD),
        "unreported": mpesa_transaction("RCA0000009", "400", completed_at=nairobi(2026, 3, 10)),
        "april": mpesa_transaction("RCA0000010", "450", completed_at=nairobi(2026, 4, 2)),
    }  # fmt: skip
    made["repayment"] = repayments.record_repayment(
        active_loan.id, Decimal("700"), "mpesa", "RCA0000005", SYSTEM, date(2026, 3, 6)
    )
    made["contribution"] = contributions.record_contribution(
        member.id, Decimal("900"), "deposit", "mpesa", "RCA0000006", SYSTEM, date(2026, 3, 7)
    )
    made["unreported_repayment"] = repayments.record_repayment(
        active_loan.id, Decimal("650"), "mpesa", "RCA0000011", SYSTEM, date(2026, 3, 15)
    )
    contributions.record_contribution(
        member.id, Decimal("100"), "deposit", "mpesa", "RCA0000012", SYSTEM, date(2026, 2, 10)
    )
    repayments.record_repayment(
        active_loan.id, Decimal("50"), "cash", None, SYSTEM, date(2026, 3, 9)
    )
    return made


def every_discrepancy() -> str:
    return statement(
        [
            paid_in("RCA0000001", "02-03-2026 12:00:00", "1500"),  # matched (STK)
            paid_in("RCA0000002", "2026-03-03 12:00:00", "2000"),  # amount mismatch (C2B 2500)
            paid_in("RCA0000003", "03-03-2026 13:00:00", "12345", account="NOSUCH1"),  # not ours
            withdrawn("RCA0000004", "04-03-2026 12:00:00", "5000"),  # matched (B2C, money out)
            charge("RCC0000004", "04-03-2026 12:00:01", "60", linked="RCA0000004"),
            paid_in("RCA0000005", "06-03-2026 12:00:00", "700"),  # matched (ledger repayment)
            paid_in("RCA0000006", "07-03-2026 12:00:00", "800"),  # mismatch (contribution 900)
            paid_in("RCA0000007", "08-03-2026 12:00:00", "100", status="Failed"),  # skipped
            paid_in("RCA0000001", "02-03-2026 12:00:00", "1500"),  # repeated row
            paid_in("RCA0000008", "09-03-2026 12:00:00", "300"),  # held on our side
            withdrawn(
                "RCW0000001", "10-03-2026 12:00:00", "10000", reason="Withdraw Funds to Bank"
            ),
        ]
    )


def run_statement(text: str, name="ORG_600000_Utility Account_Completed_20260401.csv"):
    started = reconciliation.start(name, text, SYSTEM, enqueue=False)
    return reconciliation.run(started.id)


def items_of(run, category) -> dict[str, ReconciliationItem]:
    rows = db.session.scalars(
        select(ReconciliationItem).filter_by(reconciliation_id=run.id, category=category)
    )
    return {item.receipt: item for item in rows}


def test_every_kind_of_discrepancy(records):
    run = run_statement(every_discrepancy())
    assert run.status == ReconciliationStatus.FINISHED and run.finished_at
    assert run.rows_total == run.rows_done == 11
    counts = run.counts
    assert {k: counts[k] for k in ("matched", "amount_mismatch", "not_in_system",
                                   "not_in_statement", "charge")} == {
        "matched": 3, "amount_mismatch": 2, "not_in_system": 3, "not_in_statement": 2, "charge": 1,
    }  # fmt: skip
    assert counts["skipped"] == 1 and counts["skipped_reasons"] == {"status Failed": 1}
    assert counts["duplicates"] == 1
    assert counts["totals"]["charge"] == "-60.00"

    matched = items_of(run, Discrepancy.MATCHED)
    assert matched["RCA0000001"].transaction_id == records["stk"].id
    assert matched["RCA0000004"].statement_amount == Decimal("-5000.00")
    assert matched["RCA0000004"].system_amount == Decimal("-5000.00")
    assert f"repayment {records['repayment'].id}" in matched["RCA0000005"].details

    mismatched = items_of(run, Discrepancy.AMOUNT_MISMATCH)
    assert mismatched["RCA0000002"].statement_amount == Decimal("2000.00")
    assert mismatched["RCA0000002"].system_amount == Decimal("2500.00")
    assert mismatched["RCA0000006"].system_amount == Decimal("900.00")

    missing = items_of(run, Discrepancy.NOT_IN_SYSTEM)
    assert missing["RCA0000003"].other_party == "2547****5678 - JOHN DOE"
    assert missing["RCA0000003"].account_number == "NOSUCH1"
    assert missing["RCA0000003"].statement_amount == Decimal("12345.00")
    assert missing["RCA0000008"].transaction_id == records["pending"].id
    assert "is held" in missing["RCA0000008"].details
    assert missing["RCW0000001"].statement_amount == Decimal("-10000.00")

    unreported = items_of(run, Discrepancy.NOT_IN_STATEMENT)
    assert set(unreported) == {"RCA0000009", "RCA0000011"}  # not April's, not February's
    assert unreported["RCA0000009"].transaction_id == records["unreported"].id
    assert unreported["RCA0000009"].system_amount == Decimal("400.00")
    assert "repayment" in unreported["RCA0000011"].details

    charges = items_of(run, Discrepancy.CHARGE)
    assert charges["RCC0000004"].statement_amount == Decimal("-60.00")

    actions = db.session.scalars(select(AuditLog.action).order_by(AuditLog.id)).all()
    assert actions[-2:] == ["mpesa_reconciliation.uploaded", "mpesa_reconciliation.finished"]


def test_running_again_changes_nothing_and_an_interrupted_run_starts_over(records):
    run = run_statement(every_discrepancy())
    item_count = db.session.scalar(select(func.count(ReconciliationItem.id)))
    assert reconciliation.run(run.id).counts == run.counts
    assert db.session.scalar(select(func.count(ReconciliationItem.id))) == item_count

    # A worker died mid-run: status running, half the items written.
    run.status, run.rows_done = ReconciliationStatus.RUNNING, 5
    db.session.delete(db.session.scalars(select(ReconciliationItem).limit(1)).one())
    db.session.commit()
    again = reconciliation.run(run.id)
    assert again.status == ReconciliationStatus.FINISHED and again.counts == run.counts
    assert db.session.scalar(select(func.count(ReconciliationItem.id))) == item_count


def test_progress_is_committed_batch_by_batch(records, monkeypatch):
    seen = []
    real_add_batch = reconciliation._Matcher.add_batch

    def spy(self, rows):
        done = db.session.scalar(
            select(MpesaReconciliation.rows_done).where(
                MpesaReconciliation.id == self.reconciliation_id
            )
        )
        seen.append(done)
        real_add_batch(self, rows)

    monkeypatch.setattr(reconciliation, "BATCH_SIZE", 4)
    monkeypatch.setattr(reconciliation._Matcher, "add_batch", spy)
    run = run_statement(every_discrepancy())
    assert seen == [0, 4, 8]  # what a polling page saw before each batch
    assert run.counts["matched"] == 3 and run.rows_done == 11


def test_upload_is_refused_when_it_is_not_a_statement(db):
    with pytest.raises(ValidationFailed) as refused:
        reconciliation.start("x.csv", "name,amount\nJohn,100\n", SYSTEM)
    assert "No column row" in refused.value.errors["statement"]
    bad_line = statement([paid_in("RCA0000001", "02-03-2026 12:00:00", "1")]).replace("1.00", "x")
    with pytest.raises(ValidationFailed, match="Line 8"):
        reconciliation.start("x.csv", bad_line, SYSTEM)
    with pytest.raises(ValidationFailed, match="no transactions"):
        reconciliation.start("x.csv", statement([], period=None), SYSTEM)
    with pytest.raises(ValidationFailed, match="Excel"):
        reconciliation.decode_upload(b"PK\x03\x04...")
    with pytest.raises(ValidationFailed, match="Choose the statement"):
        reconciliation.decode_upload(b"")
    assert db.session.scalar(select(func.count(MpesaReconciliation.id))) == 0


def test_a_stored_statement_that_cannot_be_read_fails_the_run(db):
    started = reconciliation.start("x.csv", every_discrepancy(), SYSTEM, enqueue=False)
    started.statement = "garbage"
    db.session.commit()
    failed = reconciliation.run(started.id)
    assert failed.status == ReconciliationStatus.FAILED and "No column row" in failed.error
    assert reconciliation.run(10**6) is None


def test_the_job_runs_in_a_real_worker(records, run_jobs, redis_conn):
    started = reconciliation.start("march.csv", every_discrepancy(), SYSTEM)
    assert started.status == ReconciliationStatus.QUEUED
    run_jobs()
    db.session.expire_all()
    done = reconciliation.get_reconciliation(started.id)
    assert done.status == ReconciliationStatus.FINISHED and done.counts["not_in_system"] == 3
    reconcile_statement(started.id)  # a second delivery of the job: nothing changes
    assert db.session.scalar(select(func.count(ReconciliationItem.id))) == sum(
        done.counts[str(c)] for c in reconciliation.CATEGORIES
    )


def test_full_days_of_a_period():
    full = reconciliation.full_days
    assert full(nairobi(2026, 3, 1, 0, 0), nairobi(2026, 3, 31, 23, 59).replace(second=59)) == (
        date(2026, 3, 1),
        date(2026, 3, 31),
    )
    assert full(nairobi(2026, 3, 1, 22, 40), nairobi(2026, 3, 3, 9, 0)) == (
        date(2026, 3, 2),
        date(2026, 3, 2),
    )
    assert full(nairobi(2026, 3, 1, 22, 40), nairobi(2026, 3, 1, 23, 59)) is None


def test_part_days_leave_ledger_rows_out(member, active_loan):
    repayments.record_repayment(
        active_loan.id, Decimal("700"), "mpesa", "RCA0000005", SYSTEM, date(2026, 3, 1)
    )
    evening = statement([], period=("01-03-2026 22:40:01", "01-03-2026 23:59:59"))
    run = run_statement(evening)
    assert run.counts["not_in_statement"] == 0  # its time of day is unknown: not claimed missing


def test_send_to_suspense(records):
    run = run_statement(every_discrepancy())
    missing = items_of(run, Discrepancy.NOT_IN_SYSTEM)
    held = reconciliation.send_to_suspense(missing["RCA0000003"].id, SYSTEM)
    assert (held.source, held.receipt, held.amount) == (
        "statement",
        "RCA0000003",
        Decimal("12345.00"),
    )
    assert held.status == "open" and held.reconciliation_id == run.id
    assert held.phone_number == "2547****5678" and held.account_reference == "NOSUCH1"
    assert "JOHN DOE" in held.reason and held.paid_at == nairobi(2026, 3, 3, 13, 0)
    again = reconciliation.send_to_suspense(missing["RCA0000003"].id, SYSTEM)
    assert again.id == held.id
    assert db.session.scalar(select(func.count(SuspenseItem.id))) == 1
    assert db.session.get(ReconciliationItem, missing["RCA0000003"].id).suspense_item_id == held.id

    with pytest.raises(IllegalTransition, match="paid out"):
        reconciliation.send_to_suspense(missing["RCW0000001"].id, SYSTEM)
    matched = items_of(run, Discrepancy.MATCHED)["RCA0000001"]
    with pytest.raises(IllegalTransition, match="not in our records"):
        reconciliation.send_to_suspense(matched.id, SYSTEM)
    audit = db.session.scalars(
        select(AuditLog).filter_by(action="mpesa_reconciliation.sent_to_suspense")
    ).all()
    assert [a.target_id for a in audit] == [held.id]


def test_a_receipt_already_queued_or_credited_is_not_queued_twice(records, member):
    run = run_statement(every_discrepancy())
    missing = items_of(run, Discrepancy.NOT_IN_SYSTEM)
    from_paybill = suspense.hold("c2b", Decimal("12345.00"), "Unknown account", "RCA0000003")
    db.session.commit()
    linked = reconciliation.send_to_suspense(missing["RCA0000003"].id, SYSTEM)
    assert linked.id == from_paybill.id and linked.source == "c2b"

    # RCA0000008 was credited by hand after the run: the queue must not credit it again.
    contributions.record_contribution(
        member.id, Decimal("300"), "deposit", "mpesa", "RCA0000008", SYSTEM
    )
    with pytest.raises(IllegalTransition, match="already credited"):
        reconciliation.send_to_suspense(missing["RCA0000008"].id, SYSTEM)


def test_csv_export(records):
    run = run_statement(every_discrepancy())
    text = "".join(reconciliation.export_csv(run.id))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 11
    assert list(rows[0]) == list(reconciliation.EXPORT_COLUMNS)
    assert [r["category"] for r in rows][:3] == ["not_in_system"] * 3  # what needs a person first
    mismatch = next(r for r in rows if r["receipt"] == "RCA0000002")
    assert (mismatch["statement_amount"], mismatch["system_amount"]) == ("2000.00", "2500.00")
    assert mismatch["completed_at"] == "2026-03-03T12:00:00+03:00"
    charge_row = next(r for r in rows if r["category"] == "charge")
    assert charge_row["statement_amount"] == "-60.00"  # a number, not escaped as a formula


def test_csv_export_escapes_formulas(db):
    run = run_statement(
        statement([paid_in("RCA0000001", "02-03-2026 12:00:00", "10", party="=HYPERLINK(1)")])
    )
    text = "".join(reconciliation.export_csv(run.id))
    assert "'=HYPERLINK(1)" in text


def _credited_on_query(amount, created_at, phone="254712345678"):
    """An STK payment credited on an STK Query answer: its receipt a stand-in (query_receipts)."""
    checkout = f"ws_CO_{created_at:%d%m%H%M}{amount}{phone[-8:]}"
    return mpesa_transaction(checkout[-20:], amount, checkout_request_id=checkout,
                             created_at=created_at, phone_number=phone)  # fmt: skip


def test_only_a_statement_row_that_fits_one_stk_query_credit_gives_it_a_receipt(app):
    """Same amount, a phone that fits the statement's mask, paid within minutes of the request,
    and no other candidate: otherwise the row is left to a person, with the candidates named."""
    twins = [_credited_on_query("500", nairobi(2026, 3, 20), phone) for phone in
             ("254712345678", "254722225678")]  # both fit 2547****5678  # fmt: skip
    other_phone = _credited_on_query("800", nairobi(2026, 3, 20))
    hours_before = _credited_on_query("900", nairobi(2026, 3, 21, 9))
    stand_ins = {txn.id: txn.mpesa_receipt_number for txn in [*twins, other_phone, hours_before]}
    run = run_statement(statement([
        paid_in("RCQ0000001", "20-03-2026 12:01:00", "500", details="Pay Bill Online " * 20),
        paid_in("RCQ0000002", "20-03-2026 12:01:00", "800", party="2547****0000 - JANE DOE"),
        paid_in("RCQ0000003", "21-03-2026 12:01:00", "900"),
    ]))  # fmt: skip
    items = items_of(run, Discrepancy.NOT_IN_SYSTEM)
    assert set(items) == {"RCQ0000001", "RCQ0000002", "RCQ0000003"}
    long_details = items["RCQ0000001"].details  # shortened to fit, the note kept whole
    assert long_details.startswith("Pay Bill Online") and len(long_details) <= 255
    assert long_details.endswith(
        f"[may be transaction {twins[0].id}, {twins[1].id}, credited on STK Query without a "
        "receipt]"
    )
    assert "STK Query" not in items["RCQ0000002"].details + items["RCQ0000003"].details
    db.session.expire_all()
    assert {
        txn.id: txn.mpesa_receipt_number for txn in db.session.scalars(select(MpesaTransaction))
    } == stand_ins
