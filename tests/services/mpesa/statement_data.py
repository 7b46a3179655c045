"""Statements in the org-portal layout (shared/reference/mpesa.md §10) and the M-Pesa records to
reconcile them against, for the reconciliation tests."""

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

from app.clock import NAIROBI
from app.extensions import db
from app.models import MpesaStatus, MpesaTransaction, MpesaType

HEADER = [
    "Receipt No.", "Completion Time", "Initiation Time", "Details", "Transaction Status",
    "Paid In", "Withdrawn", "Balance", "Balance Confirmed", "Reason Type", "Other Party Info",
    "Linked Transaction ID", "A/C No.",
]  # fmt: skip
LEGACY_HEADER = [
    "Receipt", "Date", "Details", "Status", "Withdrawn", "Paid In", "Balance",
    "Balance Confirmed", "Transaction Type", "Other Party Info", "Transaction Party Details",
]  # fmt: skip
MARCH = ("01-03-2026 00:00:00", "31-03-2026 23:59:59")
PARTY = "2547****5678 - JOHN DOE"


def money(value) -> str:
    """As the portal writes it: thousands separators (so the CSV writer quotes it)."""
    return f"{Decimal(value):,.2f}"


def paid_in(receipt, when, amount, account="", party=PARTY, status="Completed",
            reason="Pay Bill Online", details=None) -> list[str]:  # fmt: skip
    details = details or f"Pay Bill from {party} Acc. {account}"
    return [receipt, when, when, details, status, money(amount), "", "250,000.00", "true",
            reason, party, "", account]  # fmt: skip


def withdrawn(receipt, when, amount, reason="Business Payment to Customer", party=PARTY,
              linked="", details=None) -> list[str]:  # fmt: skip
    details = details or f"{reason} to {party}"
    return [receipt, when, when, details, "Completed", "", "-" + money(amount), "250,000.00",
            "true", reason, party, linked, ""]  # fmt: skip


def charge(receipt, when, amount, linked="") -> list[str]:
    return withdrawn(
        receipt, when, amount, "Business Pay Bill Charge", "", linked, "Pay Bill Charge"
    )


def statement(rows, period=MARCH, organisation="DAYSTAR SACCO") -> str:
    """A statement as the portal exports it: six metadata lines, the header, the rows (CRLF)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["Organization Name", organisation])
    writer.writerow(["Short Code", "600000"])
    writer.writerow(["Account", "Utility Account"])
    if period:
        writer.writerow(["Time Period:", "From", period[0], "To", period[1]])
    writer.writerow(["Report Type", "Completed Transactions"])
    writer.writerow(["Opening Balance:", "1,000.00"])
    writer.writerow(HEADER)
    writer.writerows(rows)
    return buffer.getvalue()


def legacy_statement(rows) -> str:
    """The 2009-2011 layout: a title line, then 11 columns, dates YYYY-MM-DD."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["M-PESA Account Statement"])
    writer.writerow(LEGACY_HEADER)
    writer.writerows(rows)
    return buffer.getvalue()


def nairobi(year, month, day, hour=12, minute=0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=NAIROBI).astimezone(UTC)


def mpesa_transaction(receipt, amount, kind=MpesaType.STK_PUSH, status=MpesaStatus.COMPLETED,
                      completed_at=None, phone_number="254712345678",
                      **values) -> MpesaTransaction:  # fmt: skip
    """A transaction row as the payment services leave it (written directly: those services
    are not what these tests are about)."""
    txn = MpesaTransaction(
        transaction_type=kind,
        status=status,
        environment="simulator",
        mpesa_receipt_number=receipt,
        amount=Decimal(amount),
        phone_number=phone_number,
        completed_at=completed_at,
        **values,
    )
    db.session.add(txn)
    db.session.commit()
    return txn
