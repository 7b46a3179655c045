"""The org-portal statement export, parsed back the way a reconciliation would read it."""

import csv
import io
import re
from datetime import datetime
from decimal import Decimal

import requests

from tests.sandbox.conftest import SAMPLES

HEADER = (SAMPLES / "org_statement_header.csv").read_text().strip().split(",")


def parse(text: str) -> tuple[list[list[str]], list[dict]]:
    """(metadata lines, rows as dicts), the header row found by its content."""
    lines = list(csv.reader(io.StringIO(text)))
    at = next(i for i, line in enumerate(lines) if line[:2] == ["Receipt No.", "Completion Time"])
    return lines[:at], [dict(zip(lines[at], line, strict=True)) for line in lines[at + 1 :]]


def amount(text: str) -> Decimal:
    return Decimal(text.replace(",", "")) if text else Decimal("0")


def make_history(daraja_sandbox, daraja, receiver) -> dict:
    """A little of everything: STK in, C2B in, C2B rejected, B2C out, B2C failed."""
    daraja.register(receiver)
    stk = daraja.stk_push(receiver, Amount=2000).json()["CheckoutRequestID"]
    daraja_sandbox.flush()
    c2b = daraja_sandbox.simulate_c2b("0712000001", 1500, "M-000001", name="Mary Wanjiku")
    daraja_sandbox.flush()
    receiver.answer("c2b/validation", {"ResultCode": "C2B00012", "ResultDesc": "Rejected"})
    rejected = daraja_sandbox.simulate_c2b("0712000002", 70, "NOBODY")
    daraja_sandbox.flush()
    daraja.b2c(receiver, Amount="10000", originator="DSB-1")
    daraja.b2c(receiver, Amount="300", originator="DSB-2", PartyB="254799000003")
    daraja_sandbox.flush()
    return {
        "stk": daraja_sandbox.transaction(stk)["receipt"],
        "c2b": c2b["receipt"],
        "rejected": rejected["receipt"],
        "b2c": daraja_sandbox.transaction("DSB-1")["receipt"],
        "b2c_failed": daraja_sandbox.transaction("DSB-2")["receipt"],
    }


def test_statement_layout_and_rows(daraja_sandbox, daraja, receiver):
    receipts = make_history(daraja_sandbox, daraja, receiver)

    response = requests.get(f"{daraja_sandbox.base_url}/sandbox/statement.csv", timeout=10)
    text = response.text
    metadata, rows = parse(text)

    assert response.headers["Content-Type"].startswith("text/csv")
    assert re.fullmatch(
        r'attachment; filename="ORG_174379_Utility Account_Completed_\d{14}\.csv"',
        response.headers["Content-Disposition"],
    )
    assert "\r\n" in text and text.count("\n") == text.count("\r\n")
    assert len(metadata) == 6
    assert metadata[0] == ["Organization Name", "DAYSTAR SACCO SANDBOX"]
    assert metadata[3][:2] == ["Time Period:", "From"] and metadata[3][3] == "To"
    assert metadata[4] == ["Opening Balance:", "1,000,000.00"]
    assert text.splitlines()[6].split(",") == HEADER
    assert '"1,000,000.00"' in text  # thousands separators, quoted

    # newest first: the first row carries the closing balance
    closing = amount(metadata[5][1])
    assert amount(rows[0]["Balance"]) == closing == Decimal("993449.00")
    times = [datetime.strptime(r["Completion Time"], "%d-%m-%Y %H:%M:%S") for r in rows]
    assert times == sorted(times, reverse=True)
    for row in rows:
        assert re.fullmatch(r"\d\d-\d\d-\d{4} \d\d:\d\d:\d\d", row["Initiation Time"])
        assert row["Balance Confirmed"] == "true"
        assert amount(row["Withdrawn"]) <= 0

    # running balances add up, oldest to newest, failed rows leaving them unchanged
    balance = amount(metadata[4][1])
    for row in reversed(rows):
        if row["Transaction Status"] == "Completed":
            balance += amount(row["Paid In"]) + amount(row["Withdrawn"])
        assert amount(row["Balance"]) == balance

    by_receipt = {r["Receipt No."]: r for r in rows}
    stk = by_receipt[receipts["stk"]]
    assert (stk["Reason Type"], stk["Paid In"], stk["A/C No."]) == (
        "Pay Bill Online",
        "2,000.00",
        "LN-000123",
    )
    assert re.fullmatch(r"2547\*{4}5678 - [A-Z]+ [A-Z]+", stk["Other Party Info"])
    c2b = by_receipt[receipts["c2b"]]
    assert (c2b["Reason Type"], c2b["Other Party Info"], c2b["A/C No."]) == (
        "Pay Bill",
        "2547****0001 - MARY WANJIKU",
        "M-000001",
    )
    b2c = by_receipt[receipts["b2c"]]
    assert (b2c["Reason Type"], b2c["Withdrawn"], b2c["Paid In"]) == (
        "Business Payment to Customer",
        "-10,000.00",
        "",
    )
    failed = {r["Receipt No."] for r in rows if r["Transaction Status"] == "Failed"}
    assert failed == {receipts["rejected"], receipts["b2c_failed"]}

    charges = {r["Linked Transaction ID"]: r for r in rows if r["Linked Transaction ID"]}
    assert charges[receipts["stk"]]["Reason Type"] == "Business Pay Bill Charge"
    assert charges[receipts["stk"]]["Withdrawn"] == "-20.00"
    assert charges[receipts["c2b"]]["Withdrawn"] == "-20.00"
    assert charges[receipts["b2c"]]["Withdrawn"] == "-11.00"
    assert set(charges) == {receipts["stk"], receipts["c2b"], receipts["b2c"]}


def test_discrepancies_can_be_injected(daraja_sandbox, daraja, receiver):
    receipts = make_history(daraja_sandbox, daraja, receiver)

    text = daraja_sandbox.statement_csv(
        omit=receipts["stk"], amend=f"{receipts['c2b']}:1400.00", extra=2
    )
    _, rows = parse(text)

    by_receipt = {r["Receipt No."]: r for r in rows}
    assert receipts["stk"] not in by_receipt
    assert by_receipt[receipts["c2b"]]["Paid In"] == "1,400.00"
    unknown = [r for r in rows if r["Other Party Info"].endswith("UNKNOWN PAYER")]
    assert len(unknown) == 2
    assert all(r["Transaction Status"] == "Completed" for r in unknown)
    assert not {r["Receipt No."] for r in unknown} & set(receipts.values())


def test_iso_dates_and_a_date_filter(daraja_sandbox, daraja, receiver):
    make_history(daraja_sandbox, daraja, receiver)

    iso = daraja_sandbox.statement_csv(date_format="iso")
    empty = daraja_sandbox.statement_csv(**{"from": "2020-01-01", "to": "2020-01-31"})

    _, rows = parse(iso)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", rows[0]["Completion Time"])
    metadata, none = parse(empty)
    assert none == []
    assert metadata[3] == [
        "Time Period:",
        "From",
        "01-01-2020 00:00:00",
        "To",
        "31-01-2020 23:59:59",
    ]
    assert metadata[4][1] == metadata[5][1]  # nothing happened: opening = closing


def test_bad_statement_parameters_are_400(daraja_sandbox):
    url = f"{daraja_sandbox.base_url}/sandbox/statement.csv"
    for params in (
        {"shortcode": "1"},
        {"date_format": "us"},
        {"from": "yesterday"},
        {"amend": "R1:abc"},
        {"extra": "many"},
    ):
        assert requests.get(url, params=params, timeout=10).status_code == 400, params


def test_the_second_shortcode_has_its_own_statement(daraja_sandbox, daraja, receiver):
    daraja_sandbox.simulate_c2b("0712000001", 100, "M-1", shortcode="600000")
    daraja_sandbox.flush()

    first = parse(daraja_sandbox.statement_csv())[1]
    second = parse(daraja_sandbox.statement_csv(shortcode="600000"))[1]

    assert first == []
    assert [r["Paid In"] for r in second] == ["100.00"]
