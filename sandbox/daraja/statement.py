"""The organisation portal statement of the Utility Account as CSV (mpesa.md §10): six metadata
lines, the 13-column header, rows newest first, amounts with thousands separators, Withdrawn
negative, masked Other Party Info, failed rows and charge rows linked to their payment."""

import csv
import io
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time
from decimal import Decimal

from sandbox.daraja import ids
from sandbox.daraja.clock import NAIROBI, now
from sandbox.daraja.state import DarajaState, LedgerRow

HEADER = (
    "Receipt No.",
    "Completion Time",
    "Initiation Time",
    "Details",
    "Transaction Status",
    "Paid In",
    "Withdrawn",
    "Balance",
    "Balance Confirmed",
    "Reason Type",
    "Other Party Info",
    "Linked Transaction ID",
    "A/C No.",
)
DATE_FORMATS = {"portal": "%d-%m-%Y %H:%M:%S", "iso": "%Y-%m-%d %H:%M:%S"}


@dataclass
class Discrepancies:
    """Changes a test can ask for, so the app's reconciliation has something to find."""

    omit: set[str] = field(default_factory=set)  # receipts left out of the statement
    amend: dict[str, Decimal] = field(default_factory=dict)  # receipt -> the amount shown
    extra: int = 0  # pay-ins only the statement knows about


def money(value: Decimal | None) -> str:
    return "" if value is None else f"{value:,.2f}"


def filename(shortcode: str, at: datetime) -> str:
    return f"ORG_{shortcode}_Utility Account_Completed_{at:%Y%m%d%H%M%S}.csv"


def _amended(row: LedgerRow, amount: Decimal) -> LedgerRow:
    if row.paid_in is not None:
        return replace(row, paid_in=amount)
    return replace(row, withdrawn=-abs(amount))


def _extra_rows(shortcode: str, count: int, balance: Decimal, at: datetime) -> list[LedgerRow]:
    rows = []
    for n in range(count):
        amount = Decimal(100 * (n + 1))
        balance += amount
        party = f"2547****{n:04d} - UNKNOWN PAYER"
        rows.append(
            LedgerRow(
                shortcode=shortcode,
                receipt=ids.receipt(at),
                completed_at=at,
                initiated_at=at,
                details=f"Pay Bill from {party} Acc. X{n:04d}",
                status="Completed",
                paid_in=amount,
                withdrawn=None,
                balance=balance,
                reason_type="Pay Bill",
                other_party=party,
                account_no=f"X{n:04d}",
            )
        )
    return rows


def build(
    state: DarajaState,
    shortcode: str,
    *,
    start: date | None = None,
    end: date | None = None,
    date_format: str = "portal",
    changes: Discrepancies | None = None,
) -> tuple[str, str]:
    """(file name, CSV text) of the shortcode's statement between two dates (inclusive)."""
    changes = changes or Discrepancies()
    stamp = DATE_FORMATS[date_format]
    generated = now()
    start_at = datetime.combine(start, time.min, NAIROBI) if start else None
    end_at = datetime.combine(end, time.max, NAIROBI) if end else None
    with state.lock:
        all_rows = [r for r in state.ledger if r.shortcode == shortcode]
        opening = state.opening_balances[shortcode]
    before = [r for r in all_rows if start_at and r.completed_at < start_at]
    if before:
        opening = before[-1].balance
    rows = [
        r
        for r in all_rows
        if (not start_at or r.completed_at >= start_at) and (not end_at or r.completed_at <= end_at)
    ]
    closing = rows[-1].balance if rows else opening
    rows = [r for r in rows if r.receipt not in changes.omit]
    rows = [
        _amended(r, changes.amend[r.receipt]) if r.receipt in changes.amend else r for r in rows
    ]
    rows += _extra_rows(shortcode, changes.extra, closing, generated)
    period_from = start_at or (rows[0].completed_at if rows else generated)
    period_to = end_at or generated

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["Organization Name", state.config["SANDBOX_DARAJA_ORGANIZATION_NAME"]])
    writer.writerow(["Organization Short Code", shortcode])
    writer.writerow(["Account", "Utility Account"])
    writer.writerow(
        ["Time Period:", "From", period_from.strftime(stamp), "To", period_to.strftime(stamp)]
    )
    writer.writerow(["Opening Balance:", money(opening)])
    writer.writerow(["Closing Balance:", money(closing)])
    writer.writerow(HEADER)
    for row in reversed(rows):  # newest first, as the portal lists them
        writer.writerow(
            [
                row.receipt,
                row.completed_at.strftime(stamp),
                row.initiated_at.strftime(stamp),
                row.details,
                row.status,
                money(row.paid_in),
                money(row.withdrawn),
                money(row.balance),
                "true",
                row.reason_type,
                row.other_party,
                row.linked_id,
                row.account_no,
            ]
        )
    return filename(shortcode, generated), out.getvalue()
