"""The M-Pesa organisation portal statement (CSV), read row by row.

The export has a few metadata lines (organisation, time period, opening balance...) before its
column row, whose position varies, so the header is found by its content. Both column layouts
are read: the current 13 columns (`Receipt No.`, `Completion Time`, ... `A/C No.`) and the legacy
11 (`Receipt`, `Date`, ... `Transaction Party Details`). Times are Nairobi time, written
`DD-MM-YYYY HH:MM:SS` or `YYYY-MM-DD HH:MM:SS`; amounts may carry thousands separators and
`Withdrawn` may be negative. Only `Completed` rows count; the others are yielded marked skipped.
Facts: shared/reference/mpesa.md §10.
"""

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import TextIO

from app.clock import NAIROBI
from app.models.base import CENT

IN, OUT = "in", "out"
HEADER_SEARCH_LINES = 50  # the metadata before the column row is a handful of lines
MAX_AMOUNT = Decimal("9999999999999.99")  # what Numeric(15, 2) holds
RECEIPT = re.compile(r"[A-Z0-9]{1,20}")
NOT_A_TRANSACTION = "not a transaction row"

# Column names as the exports spell them (lower case, spaces collapsed) -> our field.
COLUMNS = {
    "receipt no.": "receipt",
    "receipt no": "receipt",
    "receipt": "receipt",
    "completion time": "completed_at",
    "date": "completed_at",
    "details": "details",
    "transaction status": "status",
    "status": "status",
    "paid in": "paid_in",
    "withdrawn": "withdrawn",
    "balance": "balance",
    "reason type": "reason_type",
    "transaction type": "reason_type",
    "other party info": "other_party",
    "linked transaction id": "linked_transaction_id",
    "a/c no.": "account_number",
    "a/c no": "account_number",
}
REQUIRED = ("receipt", "completed_at", "status", "paid_in", "withdrawn")
TIME_FORMATS = (
    "%d-%m-%Y %H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%d-%m-%Y %H:%M",
    "%Y-%m-%d %H:%M",
    "%d/%m/%Y %H:%M:%S",  # the same export after a spreadsheet saved it again
    "%d/%m/%Y %H:%M",
)
DATE_FORMATS = ("%d-%m-%Y", "%Y-%m-%d", "%d/%m/%Y")


class StatementError(ValueError):
    """The file is not a statement we can read; the message names the line when there is one."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(f"Line {line}: {message}" if line else message)
        self.line = line


@dataclass(frozen=True)
class StatementRow:
    """One transaction row. `amount` is positive and `direction` says which way the money went;
    `skipped` says why a row does not count (not Completed, or not a transaction), else None."""

    line: int
    receipt: str
    completed_at: datetime | None  # UTC
    details: str
    status: str
    amount: Decimal | None
    direction: str | None
    reason_type: str
    other_party: str  # as printed, often masked: "2547****5678 - JOHN DOE"
    account_number: str
    linked_transaction_id: str
    balance: Decimal | None
    skipped: str | None = None

    @property
    def counts(self) -> bool:
        return self.skipped is None

    @property
    def is_charge(self) -> bool:
        return "charge" in self.reason_type.lower()

    @property
    def signed_amount(self) -> Decimal:
        """The amount as the statement means it: negative for money out."""
        return self.amount if self.direction == IN else -self.amount


@dataclass(frozen=True)
class StatementSummary:
    rows_total: int  # transaction rows, counted or skipped
    completed: int
    skipped: int
    period_start: datetime | None
    period_end: datetime | None
    layout: str


def _name(cell: str) -> str:
    return " ".join(cell.replace("\ufeff", "").strip().lower().split())


def parse_time(text: str) -> datetime | None:
    """A statement time (Nairobi) as UTC, in either of the export's formats; None if it is none."""
    text = " ".join(text.strip().split())
    for fmt in TIME_FORMATS:
        try:
            local = datetime.strptime(text, fmt)  # Nairobi time: the zone is set below
        except ValueError:
            continue
        return local.replace(tzinfo=NAIROBI).astimezone(UTC)
    return None


def _parse_day(text: str, end: bool) -> datetime | None:
    """A period bound: a time, or a bare date meaning the start (or end) of that day."""
    moment = parse_time(text)
    if moment is not None:
        return moment
    for fmt in DATE_FORMATS:
        try:
            day = datetime.strptime(text.strip(), fmt).date()
        except ValueError:
            continue
        clock_time = time(23, 59, 59) if end else time(0)
        return datetime.combine(day, clock_time, NAIROBI).astimezone(UTC)
    return None


def parse_amount(text: str, column: str, line: int) -> Decimal | None:
    """An amount cell as Decimal (None when blank): quotes, spaces, `KES` and thousands
    separators removed; StatementError naming the line for anything that is not an amount."""
    cleaned = text.strip().strip('"').replace(",", "").replace(" ", "")
    cleaned = re.sub(r"^(?i:kes|ksh)\.?", "", cleaned)
    if cleaned in ("", "-"):
        return None
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise StatementError(f"{column} is not an amount: {text.strip()[:30]!r}.", line) from None
    if not value.is_finite() or abs(value) > MAX_AMOUNT:
        raise StatementError(f"{column} is not an amount: {text.strip()[:30]!r}.", line)
    if value != value.quantize(CENT):
        raise StatementError(f"{column} has more than two decimals: {text.strip()!r}.", line)
    return value.quantize(CENT)


class StatementReader:
    """Reads a statement from text or a text file object: the metadata and the header on
    creation (StatementError if there is no header), then one StatementRow per row when
    iterated, never holding the file in memory."""

    def __init__(self, source: str | TextIO):
        stream = io.StringIO(source, newline=None) if isinstance(source, str) else source
        self._reader = csv.reader(stream)
        self.metadata: dict[str, str] = {}
        self.period_start: datetime | None = None
        self.period_end: datetime | None = None
        self.columns, self.layout, self._width = self._read_header()

    def _next_record(self) -> list[str] | None:
        try:
            return next(self._reader)
        except StopIteration:
            return None
        except csv.Error as exc:
            raise StatementError(f"this is not valid CSV ({exc}).", self._reader.line_num) from None

    def _read_header(self) -> tuple[dict[str, int], str, int]:
        while self._reader.line_num < HEADER_SEARCH_LINES:
            record = self._next_record()
            if record is None:
                break
            names = [_name(cell) for cell in record]
            fields = {}
            for index, name in enumerate(names):
                field = COLUMNS.get(name)
                if field and field not in fields:
                    fields[field] = index
            if all(field in fields for field in REQUIRED):
                layout = "legacy" if "receipt" in names else "current"
                return fields, layout, len(record)
            self._read_metadata(record)
        raise StatementError(
            "No column row (Receipt No., Completion Time, Transaction Status, Paid In, "
            f"Withdrawn...) in the first {HEADER_SEARCH_LINES} lines: this is not an M-Pesa "
            "organisation statement in CSV."
        )

    def _read_metadata(self, record: list[str]) -> None:
        cells = [cell.strip() for cell in record]
        if not cells or not cells[0]:
            return
        key = cells[0].rstrip(":").strip()
        self.metadata[key] = " ".join(c for c in cells[1:] if c)
        if _name(key) == "time period":
            self._read_period(cells[1:])

    def _read_period(self, cells: list[str]) -> None:
        # "Time Period:,From,12-05-2025 22:40:01,To,12-05-2025 23:59:59"
        values = [c for c in cells if c and _name(c) not in ("from", "to", "-")]
        if len(values) >= 2:
            start, end = _parse_day(values[0], end=False), _parse_day(values[1], end=True)
            if start and end and start <= end:
                self.period_start, self.period_end = start, end
                return
        raise StatementError(
            "the Time Period should read 'From DD-MM-YYYY HH:MM:SS To DD-MM-YYYY HH:MM:SS'.",
            self._reader.line_num,
        )

    def __iter__(self) -> Iterator[StatementRow]:
        while True:
            record = self._next_record()
            if record is None:
                return
            if not any(cell.strip() for cell in record):
                continue
            line = self._reader.line_num
            if any(cell.strip() for cell in record[self._width :]):
                raise StatementError(
                    f"{len(record)} cells where the header has {self._width}: is an amount "
                    "with thousands separators not quoted?",
                    line,
                )
            yield self._row(record + [""] * (self._width - len(record)), line)

    def _cell(self, record: list[str], field: str) -> str:
        index = self.columns.get(field)
        return record[index].strip() if index is not None else ""

    def _row(self, record: list[str], line: int) -> StatementRow:
        cell = partial(self._cell, record)
        receipt = cell("receipt").upper()
        completed_at = parse_time(cell("completed_at"))
        status = cell("status")
        if not RECEIPT.fullmatch(receipt) or completed_at is None:
            if RECEIPT.fullmatch(receipt) or completed_at is not None:
                what = "time" if completed_at is None else "receipt number"
                value = cell("completed_at") if completed_at is None else cell("receipt")
                raise StatementError(f"the {what} {value[:30]!r} cannot be read.", line)
            return self._skipped(record, line, "", NOT_A_TRANSACTION)
        if status.lower() != "completed":
            return self._skipped(record, line, receipt, f"status {status or 'blank'}")
        paid_in = parse_amount(cell("paid_in"), "Paid In", line)
        withdrawn = parse_amount(cell("withdrawn"), "Withdrawn", line)
        if paid_in and withdrawn:
            raise StatementError("both Paid In and Withdrawn have an amount.", line)
        if not paid_in and not withdrawn:
            raise StatementError("neither Paid In nor Withdrawn has an amount.", line)
        if paid_in:
            # A negative Paid In is money going out, as a negative Withdrawn is.
            amount, direction = abs(paid_in), IN if paid_in > 0 else OUT
        else:
            amount, direction = abs(withdrawn), OUT
        return StatementRow(
            line=line,
            receipt=receipt,
            completed_at=completed_at,
            details=cell("details"),
            status=status,
            amount=amount,
            direction=direction,
            reason_type=cell("reason_type"),
            other_party=cell("other_party"),
            account_number=cell("account_number"),
            linked_transaction_id=cell("linked_transaction_id").upper(),
            balance=self._lenient_amount(cell("balance")),
        )

    def _skipped(self, record, line: int, receipt: str, reason: str) -> StatementRow:
        cell = partial(self._cell, record)
        return StatementRow(
            line=line,
            receipt=receipt,
            completed_at=parse_time(cell("completed_at")),
            details=cell("details"),
            status=cell("status"),
            amount=None,
            direction=None,
            reason_type=cell("reason_type"),
            other_party=cell("other_party"),
            account_number=cell("account_number"),
            linked_transaction_id=cell("linked_transaction_id").upper(),
            balance=None,
            skipped=reason,
        )

    @staticmethod
    def _lenient_amount(text: str) -> Decimal | None:
        # The running balance is shown, never reconciled: an odd one is not worth refusing a file.
        try:
            return parse_amount(text, "Balance", 0)
        except StatementError:
            return None


def summarize(source: str | TextIO) -> StatementSummary:
    """Read the whole statement once: StatementError naming the first bad line, else how many
    rows it has and its period (the Time Period line, or the first and last completed rows)."""
    reader = StatementReader(source)
    rows_total = completed = 0
    first = last = None
    for row in reader:
        rows_total += 1
        if row.counts:
            completed += 1
            first = min(first, row.completed_at) if first else row.completed_at
            last = max(last, row.completed_at) if last else row.completed_at
    start, end = reader.period_start, reader.period_end
    if start is None:
        start, end = first, last
    return StatementSummary(
        rows_total=rows_total,
        completed=completed,
        skipped=rows_total - completed,
        period_start=start,
        period_end=end,
        layout=reader.layout,
    )


def decode(data: bytes) -> str:
    """An uploaded file's bytes as text (UTF-8 with or without BOM, else Windows-1252 as a
    spreadsheet saves it); StatementError for a spreadsheet or any other binary file."""
    if data.startswith(b"PK\x03\x04") or data.startswith(b"\xd0\xcf\x11\xe0"):
        raise StatementError(
            "This is an Excel workbook: export the statement from the M-Pesa portal as CSV."
        )
    if b"\x00" in data:
        raise StatementError("This is a binary file, not a CSV statement.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        raise StatementError(
            "The file's characters cannot be read: save it as UTF-8 CSV."
        ) from None
