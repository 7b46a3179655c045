"""Schedules: exact sums, whole cents, no negative balance, both interest methods."""

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.models import InterestMethod
from app.models.base import CENT
from app.services.amortization import build_schedule

amounts = st.decimals(min_value=Decimal("1.00"), max_value=Decimal("50000000"), places=2)
rates = st.decimals(min_value=Decimal("0"), max_value=Decimal("60"), places=2)
terms = st.integers(min_value=1, max_value=120)
methods = st.sampled_from(list(InterestMethod))


@settings(max_examples=300, deadline=None)
@given(amount=amounts, rate=rates, term=terms, method=methods)
def test_schedule_sums_exactly_in_cents_and_never_goes_negative(amount, rate, term, method):
    schedule = build_schedule(amount, rate, term, method, date(2026, 1, 31))
    assert len(schedule.installments) == term
    assert sum(i.principal for i in schedule.installments) == amount
    assert schedule.total_payable == amount + schedule.total_interest
    assert sum(i.amount for i in schedule.installments) == schedule.total_payable
    balance = amount
    for inst in schedule.installments:
        for value in (inst.principal, inst.interest, inst.amount):
            assert value == value.quantize(CENT)
            assert value >= 0
        balance -= inst.principal
        assert balance >= 0
    assert balance == 0


def test_reducing_balance_known_figures():
    # 50,000 at 12% a year over 12 months: 1% a month, the annuity formula gives 4,442.44.
    s = build_schedule(
        Decimal("50000"), Decimal("12"), 12, InterestMethod.REDUCING_BALANCE, date(2024, 1, 22)
    )
    assert s.monthly_payment == Decimal("4442.44")
    assert s.installments[0].interest == Decimal("500.00")
    assert s.total_payable == Decimal("53309.27")
    assert s.due_date == date(2025, 1, 22)


def test_flat_known_figures():
    s = build_schedule(Decimal("50000"), Decimal("12"), 12, InterestMethod.FLAT, date(2024, 1, 31))
    assert s.total_interest == Decimal("6000.00")
    assert s.total_payable == Decimal("56000.00")
    assert s.monthly_payment == Decimal("4666.67")
    assert s.installments[-1].amount == Decimal("4666.63")
    # Month ends clamp: 31 January + 1 month is 29 February in a leap year.
    assert s.installments[0].due_date == date(2024, 2, 29)


def test_tiny_flat_loan_over_many_months_never_goes_negative():
    s = build_schedule(Decimal("1.00"), Decimal("0"), 120, InterestMethod.FLAT, date(2026, 1, 1))
    assert s.installments[0].amount == Decimal("0.00")
    assert s.installments[-1].amount == Decimal("1.00")


def test_zero_rate_is_principal_only():
    s = build_schedule(
        Decimal("1000"), Decimal("0"), 3, InterestMethod.REDUCING_BALANCE, date(2026, 1, 1)
    )
    assert [i.amount for i in s.installments] == [
        Decimal("333.33"),
        Decimal("333.33"),
        Decimal("333.34"),
    ]


@pytest.mark.parametrize(
    "amount,term,method",
    [(Decimal("0"), 12, "flat"), (Decimal("100"), 0, "flat"), (Decimal("100"), 12, "simple")],
)
def test_invalid_terms_are_refused(amount, term, method):
    with pytest.raises(ValueError):
        build_schedule(amount, Decimal("10"), term, method, date(2026, 1, 1))
