"""The figures on the dashboard cards, each one SQL aggregate."""

from datetime import date
from decimal import Decimal

from sqlalchemy import Numeric, func, select

from app import clock
from app.extensions import db
from app.models import Loan, LoanStatus, Member, MemberStatus, Repayment

OUTSTANDING = (LoanStatus.ACTIVE, LoanStatus.DEFAULTED)


def money_sum(column):
    """SUM of a money column, 0 when there are no rows, read back as Decimal."""
    return func.coalesce(func.sum(column), 0, type_=Numeric(15, 2))


def member_count() -> dict:
    total = db.session.scalar(select(func.count(Member.id)))
    active = db.session.scalar(
        select(func.count(Member.id)).where(Member.status == MemberStatus.ACTIVE)
    )
    return {"total": total, "active": active}


def active_loans() -> dict:
    count = db.session.scalar(select(func.count(Loan.id)).where(Loan.status == LoanStatus.ACTIVE))
    defaulted = db.session.scalar(
        select(func.count(Loan.id)).where(Loan.status == LoanStatus.DEFAULTED)
    )
    return {"active": count, "defaulted": defaulted}


def outstanding_portfolio() -> Decimal:
    return db.session.scalar(select(money_sum(Loan.balance)).where(Loan.status.in_(OUTSTANDING)))


def repayments_this_month(today: date | None = None) -> dict:
    first = (today or clock.today()).replace(day=1)
    count, total = db.session.execute(
        select(func.count(Repayment.id), money_sum(Repayment.amount)).where(
            Repayment.paid_on >= first
        )
    ).one()
    return {"count": count, "total": total, "since": first}
