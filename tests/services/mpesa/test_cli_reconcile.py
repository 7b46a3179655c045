"""`flask mpesa reconcile STATEMENT.csv`: runs in the process (no worker) and prints the counts
as JSON; a file that is not a statement is a clear error and a non-zero exit."""

import json

from sqlalchemy import func, select

from app.extensions import db
from app.models import MpesaReconciliation
from tests.services.mpesa.statement_data import (
    charge,
    mpesa_transaction,
    nairobi,
    paid_in,
    statement,
)


def test_reconcile_prints_the_counts(app, tmp_path):
    mpesa_transaction("RCA0000001", "1500", completed_at=nairobi(2026, 3, 2))
    mpesa_transaction("RCA0000009", "400", completed_at=nairobi(2026, 3, 9))
    path = tmp_path / "ORG_600000_Utility Account_Completed_20260401000000.csv"
    path.write_text(
        statement(
            [
                paid_in("RCA0000001", "02-03-2026 12:00:00", "1500"),
                paid_in("RCA0000002", "02-03-2026 13:00:00", "2000"),
                charge("RCC0000001", "02-03-2026 13:00:01", "34"),
            ]
        ),
        newline="",
    )
    result = app.test_cli_runner().invoke(args=["mpesa", "reconcile", str(path)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["status"] == "finished" and report["rows"] == 3
    counts = report["counts"]
    assert (counts["matched"], counts["not_in_system"], counts["not_in_statement"]) == (1, 1, 1)
    assert counts["charge"] == 1 and counts["totals"]["charge"] == "-34.00"
    stored = db.session.get(MpesaReconciliation, report["reconciliation_id"])
    assert stored.filename == path.name and stored.uploaded_by_id is None


def test_a_file_that_is_not_a_statement_is_refused(app, tmp_path):
    path = tmp_path / "members.csv"
    path.write_text("name,phone\nWanjiku,0712345678\n")
    result = app.test_cli_runner().invoke(args=["mpesa", "reconcile", str(path)])
    assert result.exit_code == 1
    assert "No column row" in result.output
    missing = app.test_cli_runner().invoke(args=["mpesa", "reconcile", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 2 and "nope.csv" in missing.output
    assert db.session.scalar(select(func.count(MpesaReconciliation.id))) == 0
