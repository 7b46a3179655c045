"""The org-portal statement parser: every quirk of the export (metadata lines, both date formats,
thousands separators, negative Withdrawn, masked parties, failed rows, charges, the legacy
layout), and a clear error naming the line for anything else."""

import io
from decimal import Decimal
from pathlib import Path

import pytest

from app.services.mpesa.statement import (
    IN,
    NOT_A_TRANSACTION,
    OUT,
    StatementError,
    StatementReader,
    decode,
    summarize,
)
from tests.services.mpesa.statement_data import (
    HEADER,
    PARTY,
    charge,
    legacy_statement,
    nairobi,
    paid_in,
    statement,
    withdrawn,
)

SAMPLE = str(Path(__file__).resolve().parents[2] / "data" / "mpesa" / "org_statement_header.csv")


def quirky_statement() -> str:
    text = statement(
        [
            paid_in("sfk1abc123", "05-03-2026 10:15:00", "1131340", account="dst000001"),
            withdrawn("SFK1ABC124", "2026-03-06 11:00:00", "5000"),
            charge("SFK1ABC125", "06-03-2026 11:00:05", "60", linked="SFK1ABC124"),
            paid_in("SFK1ABC126", "07-03-2026 09:00:00", "300", status="Failed"),
            [],
            paid_in("SFK1ABC127", "07-03-2026 09:30", "25.50"),  # no seconds
        ]
    )
    return text + 'Closing Balance:,"1,126,280.00"\r\n'


def test_reads_every_quirk_of_the_current_layout():
    reader = StatementReader(quirky_statement())
    assert reader.layout == "current"
    assert reader.metadata["Organization Name"] == "DAYSTAR SACCO"
    assert reader.period_start == nairobi(2026, 3, 1, 0, 0)
    assert reader.period_end == nairobi(2026, 3, 31, 23, 59).replace(second=59)
    rows = list(reader)
    pay, out, fee, failed, no_seconds, footer = rows

    assert pay.line == 8 and pay.receipt == "SFK1ABC123" and pay.counts
    assert pay.amount == Decimal("1131340.00") and isinstance(pay.amount, Decimal)
    assert pay.direction == IN and pay.signed_amount == Decimal("1131340.00")
    assert pay.completed_at == nairobi(2026, 3, 5, 10, 15)
    assert pay.other_party == PARTY  # masked, kept as printed
    assert pay.account_number == "dst000001"
    assert pay.balance == Decimal("250000.00")
    assert not pay.is_charge

    assert out.completed_at == nairobi(2026, 3, 6, 11, 0)  # YYYY-MM-DD
    assert out.amount == Decimal("5000.00") and out.direction == OUT
    assert out.signed_amount == Decimal("-5000.00")

    assert fee.is_charge and fee.amount == Decimal("60.00") and fee.direction == OUT
    assert fee.linked_transaction_id == "SFK1ABC124"

    assert not failed.counts and failed.skipped == "status Failed" and failed.amount is None
    assert no_seconds.amount == Decimal("25.50") and no_seconds.line == 13  # the blank line skipped
    assert footer.skipped == NOT_A_TRANSACTION


def test_summary_counts_rows_and_keeps_the_stated_period():
    summary = summarize(quirky_statement())
    assert (summary.rows_total, summary.completed, summary.skipped) == (6, 4, 2)
    assert summary.period_start == nairobi(2026, 3, 1, 0, 0)


def test_without_a_time_period_the_rows_give_the_period():
    text = statement(
        [
            paid_in("AAA0000002", "09-03-2026 08:00:00", "10"),
            paid_in("AAA0000001", "02-03-2026 07:00:00", "10"),
            paid_in("AAA0000003", "28-02-2026 07:00:00", "10", status="Cancelled"),
        ],
        period=None,
    )
    summary = summarize(text)
    assert summary.period_start == nairobi(2026, 3, 2, 7, 0)
    assert summary.period_end == nairobi(2026, 3, 9, 8, 0)


def test_reads_the_legacy_layout():
    rows = [
        ["y29dw127", "2011-03-04 10:00:00", "Pay Utility", "Completed", "", "1,500.00", "1,500.00",
         "Yes", "Pay Utility", "0722926212 - CYNTHIA OMONDI", ""],
        ["Y29DW128", "2011-03-04 11:00:00", "Business Payment", "Completed", "700.00", "", "800.00",
         "Yes", "Business Payment", "0722926212 - CYNTHIA OMONDI", ""],
        ["Y29DW129", "2011-03-04 12:00:00", "Pay Utility", "Declined", "", "5.00", "800.00",
         "Yes", "Pay Utility", "", ""],
    ]  # fmt: skip
    reader = StatementReader(legacy_statement(rows))
    assert reader.layout == "legacy" and reader.period_start is None
    pay, payout, declined = list(reader)
    assert pay.receipt == "Y29DW127" and pay.amount == Decimal("1500.00") and pay.direction == IN
    assert pay.other_party == "0722926212 - CYNTHIA OMONDI"
    assert payout.direction == OUT and payout.amount == Decimal("700.00")  # Withdrawn unsigned
    assert payout.reason_type == "Business Payment"
    assert declined.skipped == "status Declined"


def test_streams_from_a_file_object_and_the_official_header_sample(tmp_path):
    with open(SAMPLE, newline="") as sample:
        header = sample.read()
    assert header.strip() == ",".join(HEADER)
    path = tmp_path / "ORG_600000_Utility Account_Completed_20260401000000.csv"
    path.write_text(header + "QWE1234567,01-03-2026 00:00:01,,x,Completed,10.00,,,,,,,\r\n")
    with open(path, newline="") as handle:
        rows = list(StatementReader(handle))
    assert [r.receipt for r in rows] == ["QWE1234567"]
    assert list(StatementReader(io.StringIO(header))) == []


BAD_FILES = {
    "not a statement": ("name,amount\nJohn,100\n", "No column row"),
    "empty": ("", "No column row"),
    "bad amount": (statement([paid_in("ABC1234567", "01-03-2026 10:00:00", "1")])
                   .replace("1.00", "1.0x"), "Line 8: Paid In is not an amount"),
    "nan amount": (statement([paid_in("ABC1234567", "01-03-2026 10:00:00", "1")])
                   .replace('1.00', "NaN"), "Line 8: Paid In is not an amount"),
    "three decimals": (statement([paid_in("ABC1234567", "01-03-2026 10:00:00", "1")])
                       .replace("1.00", "1.005"), "Line 8: Paid In has more than two decimals"),
    "bad time": (statement([paid_in("ABC1234567", "31-02-2026 10:00:00", "1")]),
                 "Line 8: the time '31-02-2026 10:00:00' cannot be read"),
    "bad receipt": (statement([paid_in("ABC-12345", "01-03-2026 10:00:00", "1")]),
                    "Line 8: the receipt number 'ABC-12345' cannot be read"),
    "no amount": (statement([paid_in("ABC1234567", "01-03-2026 10:00:00", "0")])
                  .replace("0.00", ""), "Line 8: neither Paid In nor Withdrawn"),
    "unquoted separators": (statement([]) + "ABC1234567,01-03-2026 10:00:00,,x,Completed,"
                            "1,131,340.00,,5,true,Pay Bill Online,x,,DST1\r\n",
                            "Line 8: 15 cells where the header has 13"),
    "bad period": (statement([], period=("yesterday", "today")), "Line 4: the Time Period"),
    "quote never closed": (statement([]) + 'ABC1234567,"01-03-2026\r\n' + "x" * 140_000,
                           "not valid CSV"),
}  # fmt: skip


@pytest.mark.parametrize("name", BAD_FILES)
def test_a_bad_file_is_a_clear_error_naming_the_line(name):
    text, message = BAD_FILES[name]
    with pytest.raises(StatementError) as raised:
        summarize(text)
    assert message in str(raised.value)
    assert isinstance(raised.value, ValueError)


def test_decoding_uploads():
    assert decode("\ufeffReceipt No.".encode()) == "Receipt No."
    assert decode("Caf\xe9".encode("cp1252")) == "Café"
    with pytest.raises(StatementError, match="Excel workbook"):
        decode(b"PK\x03\x04rest-of-an-xlsx")
    with pytest.raises(StatementError, match="binary file"):
        decode(b"\x89PNG\r\n\x1a\n\x00\x00")
    with pytest.raises(StatementError, match="cannot be read"):
        decode(b"\x81\x8d\x8f\x90\x9d")  # undefined in UTF-8 and in Windows-1252
