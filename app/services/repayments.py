"""Repayments: allocation to the schedule (interest due first, then principal, oldest instalment
first) and completion of a loan whose balance reaches zero."""

from datetime import date
from decimal import Decimal

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from app.extensions import db
from app.models import InstallmentStatus, Loan, LoanInstallment, LoanStatus, Repayment
from app.models.base import utcnow
from app.services import audit, snapshots
from app.services.actor import Actor
from app.services.dashboard import money_sum
from app.services.errors import IllegalTransition, ValidationFailed
from app.services.events import record_event
from app.services.loans import get_loan
from app.services.pagination import Page, paginate
from app.services.validation import clean_payment

REPAYABLE = (LoanStatus.ACTIVE, LoanStatus.DEFAULTED)
ZERO = Decimal("0.00")


def allocate(
    installments: list[LoanInstallment], amount: Decimal, paid_on: date
) -> tuple[Decimal, Decimal]:
    """Apply `amount` to the open instalments, oldest first, interest before principal within
    each; update them in place and return (principal, interest) applied."""
    principal_total = interest_total = ZERO
    remaining = amount
    for inst in installments:
        if remaining <= 0:
            break
        interest = min(remaining, inst.interest - inst.interest_paid)
        inst.interest_paid += interest
        remaining -= interest
        principal = min(remaining, inst.principal - inst.principal_paid)
        inst.principal_paid += principal
        remaining -= principal
        principal_total += principal
        interest_total += interest
        if inst.outstanding == 0:
            inst.status, inst.paid_on = InstallmentStatus.PAID, paid_on
        elif inst.principal_paid or inst.interest_paid:
            inst.status = InstallmentStatus.PARTIAL
    return principal_total, interest_total


def record_repayment(
    loan_id: int, amount, method: str, reference: str | None, actor: Actor, paid_on=None
) -> Repayment:
    """Record a repayment on an active or defaulted loan, split into principal and interest; the
    loan becomes completed at zero balance. More than the balance is refused, saying the balance.
    Records `repayment.received` (and `loan.completed`). Commits."""
    repayment = post_repayment(loan_id, amount, method, reference, actor, paid_on)
    db.session.commit()
    return repayment


def post_repayment(
    loan_id: int, amount, method: str, reference: str | None, actor: Actor, paid_on=None
) -> Repayment:
    """record_repayment() inside the caller's transaction: the caller commits. A refusal rolls
    the whole transaction back before raising."""
    money, method, reference, day = clean_payment(amount, method, reference, paid_on)
    loan = get_loan(loan_id)
    if loan.status not in REPAYABLE:
        raise IllegalTransition(
            f"Loan {loan.id} is {loan.status}; repayments are taken only on active or defaulted loans."
        )
    # Guarded in SQL so that two repayments at once can never take the balance below zero.
    # ROUND keeps SQLite's floating-point NUMERIC exact to the cent; on PostgreSQL it changes nothing.
    new_balance = func.round(Loan.balance - money, 2)
    taken = db.session.execute(
        update(Loan)
        .where(Loan.id == loan.id, Loan.status.in_(REPAYABLE), new_balance >= 0)
        .values(
            paid_amount=func.round(Loan.paid_amount + money, 2),
            balance=new_balance,
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.refresh(loan)
    if not taken:
        db.session.rollback()
        raise ValidationFailed(
            {"amount": f"This is more than the loan's balance of KES {loan.balance:,.2f}."}
        )
    open_installments = list(
        db.session.scalars(
            select(LoanInstallment)
            .where(
                LoanInstallment.loan_id == loan.id, LoanInstallment.status != InstallmentStatus.PAID
            )
            .order_by(LoanInstallment.number)
            .with_for_update()
        )
    )
    principal, interest = allocate(open_installments, money, day)
    repayment = Repayment(
        loan_id=loan.id,
        member_id=loan.member_id,
        amount=money,
        principal_amount=principal,
        interest_amount=interest,
        method=method,
        reference=reference,
        paid_on=day,
        recorded_by_id=actor.staff_id,
    )
    db.session.add(repayment)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise ValidationFailed(
            {"reference": f"A {method} payment with reference {reference} is already recorded."}
        ) from None
    audit.record(
        actor,
        "repayment.recorded",
        "repayment",
        repayment.id,
        loan_id=loan.id,
        amount=f"{money:.2f}",
        method=method,
        reference=reference,
    )
    record_event("repayment.received", "repayment", repayment.id, snapshots.repayment(repayment))
    if loan.balance == 0:
        loan.status, loan.closed_on = LoanStatus.COMPLETED, day
        audit.record(actor, "loan.completed", "loan", loan.id)
        record_event("loan.completed", "loan", loan.id, snapshots.loan(loan))
    return repayment


def _repayment_filters(query, date_from, date_to, loan_id, member_id, method):
    if date_from:
        query = query.where(Repayment.paid_on >= date_from)
    if date_to:
        query = query.where(Repayment.paid_on <= date_to)
    if loan_id:
        query = query.where(Repayment.loan_id == loan_id)
    if member_id:
        query = query.where(Repayment.member_id == member_id)
    if method:
        query = query.where(Repayment.method == method)
    return query


def list_repayments(
    date_from=None,
    date_to=None,
    loan_id=None,
    member_id=None,
    method=None,
    page: int = 1,
    per_page: int = 25,
) -> Page:
    """Repayments filtered by payment date range, loan, member and method, newest first; each
    with its member loaded in the same query."""
    query = _repayment_filters(select(Repayment), date_from, date_to, loan_id, member_id, method)
    query = query.options(joinedload(Repayment.member))
    return paginate(query.order_by(Repayment.paid_on.desc(), Repayment.id.desc()), page, per_page)


def repayment_totals(
    date_from=None, date_to=None, loan_id=None, member_id=None, method=None
) -> dict:
    """Count and sums (amount, principal, interest) of every repayment the filters select, in
    one query."""
    sums = (
        money_sum(Repayment.amount),
        money_sum(Repayment.principal_amount),
        money_sum(Repayment.interest_amount),
    )
    query = select(func.count(Repayment.id), *sums)
    count, amount, principal, interest = db.session.execute(
        _repayment_filters(query, date_from, date_to, loan_id, member_id, method)
    ).one()
    return {"count": count, "amount": amount, "principal": principal, "interest": interest}
