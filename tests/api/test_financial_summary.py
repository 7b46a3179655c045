"""GET /financial-summary: per-period figures checked against records made in each period, empty
buckets, totals, the range limits, and the portfolio snapshot with portfolio at risk."""

from datetime import date, timedelta
from decimal import Decimal

import pytest

from app import clock
from app.blueprints.api import BASE_PATH, COMPAT_PATH
from app.services import contributions, financial_summary, loans, repayments
from tests import factories
from tests.factories import SYSTEM

URL = f"{BASE_PATH}/financial-summary"


@pytest.fixture
def headers(auth_headers):
    return auth_headers(["read_financial_summary"])


def money(value) -> Decimal:
    return Decimal(str(value))


def disbursed(member, product, amount, on):
    loan = factories.approved_loan(member, product, Decimal(amount), 6)
    return loans.mark_disbursed(loan.id, SYSTEM, "bank", f"D-{loan.id}", on)


def pay(loan, amount, on, reference):
    return repayments.record_repayment(loan.id, amount, "mpesa", reference, SYSTEM, on)


def contribute(member, amount, kind, on, reference):
    return contributions.record_contribution(
        member.id, amount, kind, "mpesa", reference, SYSTEM, on
    )


@pytest.fixture
def records():
    """Records in January to July 2026 (and one of each before), made through the services."""
    product = factories.product()
    early = factories.member(joined_on=date(2025, 12, 31))
    january = [factories.member(joined_on=date(2026, 1, d)) for d in (1, 15)]
    march = factories.member(joined_on=date(2026, 3, 3))
    loan_2025 = disbursed(early, product, "10000", date(2025, 12, 20))
    loan_jan = disbursed(january[0], product, "50000", date(2026, 1, 22))
    loan_mar = disbursed(january[1], product, "20000.50", date(2026, 3, 10))
    factories.pending_loan(march, product)  # never disbursed: in no figure
    pays = [
        pay(loan_2025, "500", date(2025, 12, 31), "R0"),
        pay(loan_jan, "8627.11", date(2026, 2, 22), "R1"),
        pay(loan_jan, "8627.11", date(2026, 3, 22), "R2"),
        pay(loan_mar, "1000.25", date(2026, 4, 10), "R3"),
    ]
    gifts = [
        contribute(early, "99", "deposit", date(2025, 12, 31), "C0"),
        contribute(january[0], "0.10", "deposit", date(2026, 1, 5), "C1"),
        contribute(january[0], "0.20", "deposit", date(2026, 1, 6), "C2"),
        contribute(january[1], "1500.50", "deposit", date(2026, 1, 31), "C3"),
        contribute(january[1], "10000", "share_capital", date(2026, 2, 28), "C4"),
        contribute(march, "5000", "share_capital", date(2026, 6, 30), "C5"),
        contribute(march, "7", "deposit", date(2026, 7, 1), "C6"),
    ]
    return {"loans": [loan_2025, loan_jan, loan_mar], "pays": pays, "gifts": gifts}


def figures(count=0, amount="0.00", **more):
    return {"count": count, "amount": money(amount), **{k: money(v) for k, v in more.items()}}


def as_decimals(node):
    if isinstance(node, dict):
        return {k: as_decimals(v) for k, v in node.items()}
    if isinstance(node, float):
        return money(node)
    return node


def test_monthly_buckets_match_the_records(client, headers, records):
    response = client.get(
        f"{URL}?period=monthly&date_from=2026-01-01&date_to=2026-06-30", headers=headers
    )
    assert response.status_code == 200, response.text
    body = response.json
    assert body["period"] == "monthly"
    assert (body["date_from"], body["date_to"]) == ("2026-01-01", "2026-06-30")
    assert body["currency"] == "KES"
    buckets = body["buckets"]
    assert [(b["start"], b["end"]) for b in buckets] == [
        ("2026-01-01", "2026-01-31"),
        ("2026-02-01", "2026-02-28"),
        ("2026-03-01", "2026-03-31"),
        ("2026-04-01", "2026-04-30"),
        ("2026-05-01", "2026-05-31"),
        ("2026-06-01", "2026-06-30"),
    ]
    jan, feb, mar, apr, may, jun = (as_decimals(b) for b in buckets)
    r1, r2, r3 = records["pays"][1:]

    assert jan["loans_disbursed"] == figures(1, "50000.00")
    assert jan["repayments"] == figures(principal="0.00", interest="0.00")
    assert jan["contributions"] == {
        "deposit": figures(3, "1500.80"),
        "share_capital": figures(),
        "total": figures(3, "1500.80"),
    }
    assert jan["new_members"] == 2

    assert feb["loans_disbursed"] == figures()
    assert feb["repayments"] == figures(
        1, "8627.11", principal=r1.principal_amount, interest=r1.interest_amount
    )
    assert feb["contributions"]["share_capital"] == figures(1, "10000.00")
    assert feb["new_members"] == 0

    assert mar["loans_disbursed"] == figures(1, "20000.50")
    assert mar["repayments"] == figures(
        1, "8627.11", principal=r2.principal_amount, interest=r2.interest_amount
    )
    assert mar["new_members"] == 1
    assert apr["repayments"] == figures(
        1, "1000.25", principal=r3.principal_amount, interest=r3.interest_amount
    )
    assert may == {
        "start": "2026-05-01",
        "end": "2026-05-31",
        "loans_disbursed": figures(),
        "repayments": figures(principal="0.00", interest="0.00"),
        "contributions": {"deposit": figures(), "share_capital": figures(), "total": figures()},
        "new_members": 0,
    }
    assert jun["contributions"]["share_capital"] == figures(1, "5000.00")

    totals = as_decimals(body["totals"])
    assert totals["loans_disbursed"] == figures(2, "70000.50")
    assert totals["repayments"] == figures(
        3,
        "18254.47",
        principal=r1.principal_amount + r2.principal_amount + r3.principal_amount,
        interest=r1.interest_amount + r2.interest_amount + r3.interest_amount,
    )
    assert totals["contributions"] == {
        "deposit": figures(3, "1500.80"),
        "share_capital": figures(2, "15000.00"),
        "total": figures(5, "16500.80"),
    }
    assert totals["new_members"] == 3


def test_money_is_exact_two_decimal_numbers(client, headers, records):
    raw = client.get(
        f"{URL}?period=monthly&date_from=2026-01-01&date_to=2026-01-31", headers=headers
    ).data
    assert b'"amount": 1500.80' in raw  # 0.10 + 0.20 + 1500.50, never 1500.8000000000002
    assert b'"amount": 50000.00' in raw


def test_weekly_buckets_start_on_monday_and_are_clipped(client, headers, records):
    # 2026-01-01 is a Thursday; the weeks start on Mondays 5, 12, 19, 26 January.
    body = client.get(
        f"{URL}?period=weekly&date_from=2026-01-01&date_to=2026-01-31", headers=headers
    ).json
    spans = [(b["start"], b["end"]) for b in body["buckets"]]
    assert spans == [
        ("2026-01-01", "2026-01-04"),
        ("2026-01-05", "2026-01-11"),
        ("2026-01-12", "2026-01-18"),
        ("2026-01-19", "2026-01-25"),
        ("2026-01-26", "2026-01-31"),
    ]
    deposits = [b["contributions"]["deposit"]["count"] for b in body["buckets"]]
    assert deposits == [0, 2, 0, 0, 1]
    members = [b["new_members"] for b in body["buckets"]]
    assert members == [1, 0, 1, 0, 0]
    disbursals = [b["loans_disbursed"]["count"] for b in body["buckets"]]
    assert disbursals == [0, 0, 0, 1, 0]  # Thursday 22 January


def test_daily_buckets(client, headers, records):
    body = client.get(
        f"{URL}?period=daily&date_from=2026-01-30&date_to=2026-02-01", headers=headers
    ).json
    assert [b["start"] for b in body["buckets"]] == ["2026-01-30", "2026-01-31", "2026-02-01"]
    assert [b["end"] for b in body["buckets"]] == ["2026-01-30", "2026-01-31", "2026-02-01"]
    assert [b["contributions"]["total"]["count"] for b in body["buckets"]] == [0, 1, 0]


def test_quarterly_and_yearly_buckets(client, headers, records):
    body = client.get(
        f"{URL}?period=quarterly&date_from=2025-11-15&date_to=2026-07-01", headers=headers
    ).json
    assert [(b["start"], b["end"]) for b in body["buckets"]] == [
        ("2025-11-15", "2025-12-31"),
        ("2026-01-01", "2026-03-31"),
        ("2026-04-01", "2026-06-30"),
        ("2026-07-01", "2026-07-01"),
    ]
    assert [b["loans_disbursed"]["count"] for b in body["buckets"]] == [1, 2, 0, 0]
    assert [b["repayments"]["count"] for b in body["buckets"]] == [1, 2, 1, 0]
    assert [b["contributions"]["total"]["count"] for b in body["buckets"]] == [1, 4, 1, 1]
    assert [b["new_members"] for b in body["buckets"]] == [1, 3, 0, 0]
    yearly = client.get(
        f"{URL}?period=yearly&date_from=2025-01-01&date_to=2026-12-31", headers=headers
    ).json
    assert [(b["start"], b["end"]) for b in yearly["buckets"]] == [
        ("2025-01-01", "2025-12-31"),
        ("2026-01-01", "2026-12-31"),
    ]
    first, second = (as_decimals(b) for b in yearly["buckets"])
    assert first["loans_disbursed"] == figures(1, "10000.00")
    assert first["repayments"]["amount"] == money("500.00")
    assert first["contributions"]["deposit"] == figures(1, "99.00")
    assert second["contributions"]["total"] == figures(6, "16507.80")
    assert as_decimals(yearly["totals"])["loans_disbursed"] == figures(3, "80000.50")


def test_an_empty_range_has_zero_buckets_filled(client, headers):
    body = client.get(
        f"{URL}?period=monthly&date_from=2020-01-01&date_to=2020-03-31", headers=headers
    ).json
    assert len(body["buckets"]) == 3
    assert all(b["repayments"]["count"] == 0 for b in body["buckets"])
    assert body["totals"]["contributions"]["total"] == {"count": 0, "amount": 0}


def test_defaults_are_the_last_twelve_months_to_today(client, headers):
    body = client.get(URL, headers=headers).json
    today = clock.today()
    assert body["period"] == "monthly"
    assert body["date_to"] == today.isoformat()
    assert len(body["buckets"]) == 12
    assert body["buckets"][-1]["start"] == today.replace(day=1).isoformat()
    assert body["buckets"][0]["start"] == body["date_from"]
    weekly = client.get(f"{URL}?period=weekly", headers=headers).json
    assert len(weekly["buckets"]) == 13
    assert date.fromisoformat(weekly["date_from"]).weekday() == 0
    only_to = client.get(f"{URL}?period=quarterly&date_to=2026-05-15", headers=headers).json
    assert only_to["date_from"] == "2024-07-01" and len(only_to["buckets"]) == 8


@pytest.mark.parametrize(
    ("period", "widest", "too_wide", "words"),
    [
        ("daily", ("2024-01-01", "2024-12-31"), ("2025-01-01", "2026-01-02"), "366 days"),
        ("weekly", ("2024-01-01", "2025-12-31"), ("2024-01-01", "2026-01-01"), "2 years"),
        ("monthly", ("2016-01-01", "2025-12-31"), ("2016-01-01", "2026-01-01"), "10 years"),
        ("quarterly", ("2001-01-01", "2025-12-31"), ("2001-01-01", "2026-01-01"), "25 years"),
        ("yearly", ("1976-01-01", "2025-12-31"), ("1976-01-01", "2026-01-01"), "50 years"),
    ],
)
def test_range_limits_per_period(client, headers, period, widest, too_wide, words):
    ok = client.get(
        f"{URL}?period={period}&date_from={widest[0]}&date_to={widest[1]}", headers=headers
    )
    assert ok.status_code == 200, ok.text
    refused = client.get(
        f"{URL}?period={period}&date_from={too_wide[0]}&date_to={too_wide[1]}", headers=headers
    )
    assert refused.status_code == 400
    assert refused.mimetype == "application/problem+json"
    assert f"at most {words}" in refused.json["errors"]["date_to"]
    assert f"at most {words}" in refused.json["detail"]


def test_a_reversed_range_is_a_400(client, headers):
    response = client.get(f"{URL}?date_from=2026-02-01&date_to=2026-01-31", headers=headers)
    assert response.status_code == 400
    assert "date_to" in response.json["errors"]


def test_ranges_at_the_ends_of_the_calendar(client, headers):
    for query in (
        "period=yearly&date_from=9990-01-01&date_to=9999-12-31",
        "period=daily&date_from=9999-12-31&date_to=9999-12-31",
        "period=quarterly&date_to=0001-03-01",
        "period=weekly&date_from=0001-01-01&date_to=0001-01-20",
        "period=monthly&date_from=9999-12-01",
    ):
        response = client.get(f"{URL}?{query}", headers=headers)
        assert response.status_code == 200, (query, response.text)


def test_snapshot_portfolio_at_risk(client, headers):
    product = factories.product()
    today = clock.today()
    late = disbursed(factories.member(), product, "30000", today - timedelta(days=120))
    fresh = disbursed(factories.member(), product, "10000", today - timedelta(days=10))
    done = disbursed(factories.member(), product, "2000", today - timedelta(days=40))
    pay(done, done.total_payable, today - timedelta(days=5), "ALL")
    factories.pending_loan(factories.member(), product)
    snapshot = as_decimals(client.get(URL, headers=headers).json["snapshot"])
    outstanding = late.total_payable + fresh.total_payable
    assert snapshot == {
        "as_of": today.isoformat(),
        "active_loans": 2,
        "defaulted_loans": 0,
        "outstanding_balance": outstanding,
        "par30_balance": late.total_payable,
        "par30_ratio": (late.total_payable / outstanding).quantize(Decimal("0.0001")),
    }


def test_portfolio_at_risk_counts_more_than_thirty_days_late(db):
    product = factories.product()
    loan = disbursed(factories.member(), product, "12000", date(2026, 1, 5))  # 1st due 5 Feb
    assert financial_summary.snapshot(date(2026, 3, 7))["par30_balance"] == 0  # 30 days late
    at_risk = financial_summary.snapshot(date(2026, 3, 8))  # 31 days late
    assert at_risk["par30_balance"] == loan.total_payable
    assert at_risk["par30_ratio"] == Decimal("1.0000")
    pay(loan, loan.installments[0].amount, date(2026, 3, 1), "FIRST")
    assert financial_summary.snapshot(date(2026, 3, 8))["par30_balance"] == 0
    assert financial_summary.snapshot(date(2026, 4, 4))["par30_balance"] == 0  # 2nd due 5 Mar
    assert financial_summary.snapshot(date(2026, 4, 5))["par30_balance"] > 0


def test_empty_portfolio_snapshot(client, headers):
    snapshot = client.get(URL, headers=headers).json["snapshot"]
    assert snapshot["outstanding_balance"] == 0 and snapshot["par30_ratio"] == 0
    raw = client.get(URL, headers=headers).data
    assert b'"par30_ratio": 0.0000' in raw


def test_the_compatibility_path_answers_the_same(client, headers, records):
    query = "?period=monthly&date_from=2026-01-01&date_to=2026-06-30"
    assert client.get(f"{COMPAT_PATH}/financial-summary{query}", headers=headers).json == (
        client.get(f"{URL}{query}", headers=headers).json
    )
