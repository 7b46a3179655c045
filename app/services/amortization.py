"""Loan schedules: equal instalments on a reducing balance, or flat-rate interest.

Every figure is a Decimal rounded to the cent (half up). The last instalment absorbs the rounding,
so the schedule always sums exactly to the loan's total payable.
"""

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from dateutil.relativedelta import relativedelta

from app.models import InterestMethod
from app.models.base import CENT

MONTHS_PER_YEAR = 12
HUNDRED = Decimal(100)


def to_cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Installment:
    number: int
    due_date: date
    principal: Decimal
    interest: Decimal

    @property
    def amount(self) -> Decimal:
        return self.principal + self.interest


@dataclass(frozen=True)
class Schedule:
    installments: tuple[Installment, ...]

    @property
    def monthly_payment(self) -> Decimal:
        return self.installments[0].amount

    @property
    def total_interest(self) -> Decimal:
        return sum((i.interest for i in self.installments), Decimal("0.00"))

    @property
    def total_payable(self) -> Decimal:
        return sum((i.amount for i in self.installments), Decimal("0.00"))

    @property
    def due_date(self) -> date:
        return self.installments[-1].due_date


def build_schedule(
    amount: Decimal, annual_rate: Decimal, term_months: int, method: str, start: date
) -> Schedule:
    """The schedule of a loan of `amount` disbursed on `start`, first instalment a month later."""
    if amount <= 0 or term_months < 1 or annual_rate < 0:
        raise ValueError("amount and term must be positive and the rate not negative")
    amount = to_cents(amount)
    monthly_rate = Decimal(annual_rate) / HUNDRED / MONTHS_PER_YEAR
    if method == InterestMethod.FLAT:
        parts = _flat(amount, monthly_rate, term_months)
    elif method == InterestMethod.REDUCING_BALANCE:
        parts = _reducing_balance(amount, monthly_rate, term_months)
    else:
        raise ValueError(f"unknown interest method {method!r}")
    return Schedule(
        tuple(
            Installment(n, start + relativedelta(months=n), principal, interest)
            for n, (principal, interest) in enumerate(parts, start=1)
        )
    )


def _flat(amount: Decimal, monthly_rate: Decimal, term: int) -> list[tuple[Decimal, Decimal]]:
    total_interest = to_cents(amount * monthly_rate * term)
    principal_each = _even_share(amount, term)
    interest_each = _even_share(total_interest, term)
    parts = [(principal_each, interest_each)] * (term - 1)
    parts.append(
        (amount - principal_each * (term - 1), total_interest - interest_each * (term - 1))
    )
    return parts


def _even_share(total: Decimal, term: int) -> Decimal:
    """`total / term` to the cent, half up; rounded down instead when rounding up would leave the
    last instalment (which takes the remainder) negative, as for a few cents over many months."""
    share = to_cents(total / term)
    if share * (term - 1) > total:
        share = (total / term).quantize(CENT, rounding=ROUND_DOWN)
    return share


def _reducing_balance(
    amount: Decimal, monthly_rate: Decimal, term: int
) -> list[tuple[Decimal, Decimal]]:
    if monthly_rate == 0:
        payment = to_cents(amount / term)
    else:
        payment = to_cents(amount * monthly_rate / (1 - (1 + monthly_rate) ** -term))
    parts, balance = [], amount
    for number in range(1, term + 1):
        interest = to_cents(balance * monthly_rate)
        principal = balance if number == term else min(payment - interest, balance)
        principal = max(principal, Decimal("0.00"))
        parts.append((principal, interest))
        balance -= principal
    return parts
