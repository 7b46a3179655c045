"""The financial summary: per-period buckets of loans disbursed, repayments (principal and interest
apart), contributions by kind and new members, their totals, and a snapshot of the portfolio.

Every figure is a SQL aggregate grouped by a bucket expression (the first day of the day, ISO week,
month, quarter or year), written per dialect so SQLite and PostgreSQL give the same buckets; no
record is loaded into Python. Empty buckets are filled with zeros.
"""

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from sqlalchemy import (
    Date,
    DateTime,
    Integer,
    and_,
    case,
    cast,
    func,
    literal_column,
    select,
)
from sqlalchemy import type_coerce as coerce
from sqlalchemy.orm import aliased

from app import clock
from app.extensions import db
from app.models import (
    Contribution,
    ContributionKind,
    InstallmentStatus,
    Loan,
    LoanInstallment,
    LoanStatus,
    Member,
    Repayment,
)
from app.services.dashboard import money_sum
from app.services.errors import ValidationFailed

PERIODS = ("daily", "weekly", "monthly", "quarterly", "yearly")
# The widest range each period may cover, and how it is said in the error.
MAX_SPAN = {
    "daily": (relativedelta(days=366), "366 days"),
    "weekly": (relativedelta(years=2), "2 years"),
    "monthly": (relativedelta(years=10), "10 years"),
    "quarterly": (relativedelta(years=25), "25 years"),
    "yearly": (relativedelta(years=50), "50 years"),
}
# Without date_from: this many periods up to date_to (the first one whole).
DEFAULT_PERIODS = {"daily": 31, "weekly": 13, "monthly": 12, "quarterly": 8, "yearly": 5}
STEP = {
    "daily": relativedelta(days=1),
    "weekly": relativedelta(weeks=1),
    "monthly": relativedelta(months=1),
    "quarterly": relativedelta(months=3),
    "yearly": relativedelta(years=1),
}
PAR_DAYS = 30
OUTSTANDING = (LoanStatus.ACTIVE, LoanStatus.DEFAULTED)
ZERO = Decimal("0.00")
RATIO = Decimal("0.0001")


def period_start(period: str, day: date) -> date:
    """The first day of the period holding `day` (weeks start on Monday)."""
    if period == "weekly":
        return day - timedelta(days=day.weekday())
    if period == "monthly":
        return day.replace(day=1)
    if period == "quarterly":
        return day.replace(month=day.month - (day.month - 1) % 3, day=1)
    if period == "yearly":
        return day.replace(month=1, day=1)
    return day


def bucket(period: str, column, dialect: str):
    """SQL for `period_start(period, column)`, typed as a date on either dialect."""
    if period == "daily":
        return column
    if dialect == "postgresql":
        unit = {"weekly": "week", "monthly": "month", "quarterly": "quarter", "yearly": "year"}
        # A literal, not a bound parameter: PostgreSQL must see GROUP BY and SELECT as equal.
        return cast(
            func.date_trunc(literal_column(f"'{unit[period]}'"), cast(column, DateTime())), Date
        )
    if period == "weekly":
        weekday = cast(func.strftime(literal_column("'%w'"), column), Integer)  # Sunday = 0
        back = func.printf(literal_column("'-%d days'"), (weekday + 6) % 7)
        return coerce(func.date(column, back), Date)
    if period == "quarterly":
        month = cast(func.strftime(literal_column("'%m'"), column), Integer)
        return coerce(
            func.printf(
                literal_column("'%s-%02d-01'"),
                func.strftime(literal_column("'%Y'"), column),
                month - (month - 1) % 3,
            ),
            Date,
        )
    pattern = {"monthly": "'%Y-%m-01'", "yearly": "'%Y-01-01'"}[period]
    return coerce(func.strftime(literal_column(pattern), column), Date)


@dataclass(frozen=True)
class Range:
    period: str
    date_from: date
    date_to: date


def resolve_range(period: str, date_from: date | None, date_to: date | None) -> Range:
    """The range to summarise, defaults filled in; ValidationFailed (naming the limit) when it is
    reversed or wider than the period allows."""
    if period not in PERIODS:
        raise ValidationFailed({"period": f"Choose one of {', '.join(PERIODS)}."})
    if date_to is None:
        date_to = max(clock.today(), date_from or date.min)
    if date_from is None:
        try:
            date_from = period_start(period, date_to) - STEP[period] * (DEFAULT_PERIODS[period] - 1)
        except (OverflowError, ValueError):
            date_from = date.min
    if date_from > date_to:
        raise ValidationFailed({"date_to": "date_to must not be before date_from."})
    span, words = MAX_SPAN[period]
    try:
        too_wide = date_to >= date_from + span
    except (OverflowError, ValueError):  # past the calendar's end: within any limit
        too_wide = False
    if too_wide:
        days = (date_to - date_from).days + 1
        raise ValidationFailed(
            {
                "date_to": f"A {period} summary covers at most {words}; this range covers "
                f"{days} days. Narrow the range or choose a longer period."
            }
        )
    return Range(period, date_from, date_to)


def _buckets(rng: Range) -> list[tuple[date, date]]:
    """(first, last) day of each bucket, clipped to the range."""
    spans, start = [], period_start(rng.period, rng.date_from)
    while start <= rng.date_to:
        try:
            following = start + STEP[rng.period]
        except (OverflowError, ValueError):
            following = None
        last = rng.date_to if following is None else min(following - timedelta(1), rng.date_to)
        spans.append((max(start, rng.date_from), last))
        if following is None:
            break
        start = following
    return spans


def summarise(period: str, date_from: date | None = None, date_to: date | None = None) -> dict:
    """Buckets, totals and snapshot for the range (see module doc): six SQL aggregates.
    ValidationFailed for a bad period or range."""
    rng = resolve_range(period, date_from, date_to)
    dialect = db.session.get_bind().dialect.name
    spans = _buckets(rng)
    index = {period_start(period, first): n for n, (first, _) in enumerate(spans)}
    rows = [_empty_bucket(first, last) for first, last in spans]

    def where(column):
        return and_(column >= rng.date_from, column <= rng.date_to)

    # COUNT(*), not COUNT(id): with no column beyond the covering indexes' (paid_on, amounts,
    # kind), PostgreSQL can answer from the index alone.
    def grouped(column, *aggregates, extra=()):
        key = bucket(period, column, dialect).label("bucket")
        query = select(key, *extra, *aggregates).where(where(column)).group_by(key, *extra)
        return db.session.execute(query)

    for start, count, amount in grouped(
        Loan.disbursement_date, func.count(), money_sum(Loan.amount)
    ):
        rows[index[start]]["loans_disbursed"] = {"count": count, "amount": amount}
    for start, count, amount, principal, interest in grouped(
        Repayment.paid_on,
        func.count(),
        money_sum(Repayment.amount),
        money_sum(Repayment.principal_amount),
        money_sum(Repayment.interest_amount),
    ):
        rows[index[start]]["repayments"] = {
            "count": count,
            "amount": amount,
            "principal": principal,
            "interest": interest,
        }
    for start, kind, count, amount in grouped(
        Contribution.paid_on,
        func.count(),
        money_sum(Contribution.amount),
        extra=(Contribution.kind,),
    ):
        rows[index[start]]["contributions"][kind] = {"count": count, "amount": amount}
    for start, count in grouped(Member.joined_on, func.count()):
        rows[index[start]]["new_members"] = count
    for row in rows:
        row["contributions"]["total"] = _add_all(row["contributions"][k] for k in ContributionKind)
    return {
        "period": period,
        "date_from": rng.date_from,
        "date_to": rng.date_to,
        "currency": "KES",
        "buckets": rows,
        "totals": _totals(rows),
        "snapshot": snapshot(),
    }


def _figures(*names) -> dict:
    return dict.fromkeys(names, ZERO) | {"count": 0}


def _empty_bucket(first: date, last: date) -> dict:
    return {
        "start": first,
        "end": last,
        "loans_disbursed": _figures("amount"),
        "repayments": _figures("amount", "principal", "interest"),
        "contributions": {kind.value: _figures("amount") for kind in ContributionKind},
        "new_members": 0,
    }


def _add_all(figures) -> dict:
    total: dict = {}
    for item in figures:
        for key, value in item.items():
            total[key] = total.get(key, 0) + value
    return total


def _totals(rows: list[dict]) -> dict:
    return {
        "loans_disbursed": _add_all(r["loans_disbursed"] for r in rows),
        "repayments": _add_all(r["repayments"] for r in rows),
        "contributions": {
            key: _add_all(r["contributions"][key] for r in rows)
            for key in [*(k.value for k in ContributionKind), "total"]
        },
        "new_members": sum(r["new_members"] for r in rows),
    }


OPEN_INSTALMENT = (InstallmentStatus.DUE, InstallmentStatus.PARTIAL)


def snapshot(today: date | None = None) -> dict:
    """The portfolio now: active loans, outstanding balance (active and defaulted loans), and the
    portfolio at risk: the balance of loans with an instalment unpaid more than 30 days after it
    fell due, with its share of the outstanding balance. One query."""
    today = today or clock.today()
    outstanding = Loan.status.in_(OUTSTANDING)
    overdue_loans = select(LoanInstallment.loan_id).where(
        LoanInstallment.status.in_(OPEN_INSTALMENT),
        LoanInstallment.due_date < today - timedelta(days=PAR_DAYS),
    )
    # The balance at risk is a scalar subquery of its own, run once as a hashed semi-join on
    # ix_loan_installments_due_open. Inside the CASE of the main aggregate, `loans.id IN (...)`
    # became a SubPlan that PostgreSQL cannot hash once the open instalments outgrow work_mem:
    # it then scanned them all for every loan (200,000 loans: minutes; bench/api.py).
    risky = aliased(Loan)
    par_balance = (
        select(money_sum(risky.balance))
        .where(risky.status.in_(OUTSTANDING), risky.id.in_(overdue_loans))
        .scalar_subquery()
    )
    active, defaulted, balance, par = db.session.execute(
        select(
            func.count(case((Loan.status == LoanStatus.ACTIVE, 1))),
            func.count(case((Loan.status == LoanStatus.DEFAULTED, 1))),
            money_sum(case((outstanding, Loan.balance), else_=0)),
            par_balance,
        )
    ).one()
    ratio = (par / balance).quantize(RATIO) if balance else Decimal("0.0000")
    return {
        "as_of": today,
        "active_loans": active,
        "defaulted_loans": defaulted,
        "outstanding_balance": balance,
        "par30_balance": par,
        "par30_ratio": ratio,
    }
