"""Loans: application, decision, disbursement and default. Each status change is a conditional
UPDATE (`... WHERE status IN (allowed)`), so two officers acting at once cannot both succeed."""

from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from app import clock
from app.extensions import db
from app.models import (
    InstallmentStatus,
    Loan,
    LoanInstallment,
    LoanProduct,
    LoanStatus,
    MemberStatus,
    MpesaTransaction,
    MpesaType,
    PaymentMethod,
)
from app.models.base import utcnow
from app.models.mpesa import LIVE_DISBURSEMENT
from app.services import audit, snapshots
from app.services.actor import Actor
from app.services.amortization import Schedule, build_schedule, to_cents
from app.services.errors import IllegalTransition, ValidationFailed
from app.services.events import record_event
from app.services.lookup import get_or_not_found
from app.services.members import get_member
from app.services.pagination import Page, paginate
from app.services.validation import parse_date, parse_money

HUNDRED = Decimal(100)


def get_loan(loan_id: int) -> Loan:
    return get_or_not_found(Loan, loan_id, f"There is no loan with id {loan_id}.")


def active_products() -> list[LoanProduct]:
    return list(
        db.session.scalars(select(LoanProduct).where(LoanProduct.active).order_by(LoanProduct.name))
    )


def all_products() -> list[LoanProduct]:
    """Every loan product, retired ones too (old loans still carry them), by name."""
    return list(db.session.scalars(select(LoanProduct).order_by(LoanProduct.name)))


def check_terms(product_id, amount, term_months) -> tuple[LoanProduct, Decimal, int]:
    """The product, amount and term of an application, within the product's limits."""
    errors: dict[str, str] = {}
    product = db.session.get(LoanProduct, int(product_id)) if str(product_id).isdigit() else None
    if product is None or not product.active:
        errors["product_id"] = "Choose a loan product."
    money = parse_money(amount, "amount", errors)
    try:
        term = int(str(term_months).strip())
    except ValueError:
        term = None
        errors["term_months"] = "Enter the term in whole months."
    if product is not None and not errors:
        if not product.min_amount <= money <= product.max_amount:
            errors["amount"] = (
                f"{product.name} lends from KES {product.min_amount:,.2f} "
                f"to KES {product.max_amount:,.2f}."
            )
        if not product.min_term_months <= term <= product.max_term_months:
            errors["term_months"] = (
                f"{product.name} runs from {product.min_term_months} "
                f"to {product.max_term_months} months."
            )
    if errors:
        raise ValidationFailed(errors)
    return product, money, term


def preview_schedule(product_id, amount, term_months, start: date | None = None) -> Schedule:
    """The schedule the loan would have if it were disbursed on `start` (today by default)."""
    product, money, term = check_terms(product_id, amount, term_months)
    return build_schedule(
        money, product.interest_rate, term, product.interest_method, start or clock.today()
    )


def submit_application(
    member_id: int,
    product_id,
    amount,
    term_months,
    purpose: str,
    actor: Actor,
    application_date: date | None = None,
) -> Loan:
    """A pending loan for an active member, priced by its product; records `loan.created`."""
    member = get_member(member_id)
    errors = {}
    purpose = (purpose or "").strip()
    if not purpose:
        errors["purpose"] = "Say what the loan is for."
    elif len(purpose) > 200:
        errors["purpose"] = "Use at most 200 characters."
    if member.status != MemberStatus.ACTIVE:
        errors["member_id"] = (
            f"Member {member.member_number} is {member.status}; only active members may borrow."
        )
    try:
        product, money, term = check_terms(product_id, amount, term_months)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    if errors:
        raise ValidationFailed(errors)
    applied_on = application_date or clock.today()
    schedule = build_schedule(
        money, product.interest_rate, term, product.interest_method, applied_on
    )
    loan = Loan(
        member_id=member.id,
        member_number=member.member_number,
        product_id=product.id,
        amount=money,
        interest_rate=product.interest_rate,
        interest_method=product.interest_method,
        term_months=term,
        monthly_payment=schedule.monthly_payment,
        total_payable=schedule.total_payable,
        processing_fee=to_cents(money * product.processing_fee_rate / HUNDRED),
        paid_amount=Decimal("0.00"),
        balance=schedule.total_payable,
        status=LoanStatus.PENDING,
        application_date=applied_on,
        purpose=purpose,
    )
    db.session.add(loan)
    db.session.flush()
    audit.record(actor, "loan.created", "loan", loan.id, amount=f"{money:.2f}", member_id=member.id)
    record_event("loan.created", "loan", loan.id, snapshots.loan(loan))
    db.session.commit()
    return loan


def _transition(loan_id: int, allowed: tuple[LoanStatus, ...], action: str, **values) -> Loan:
    """Move the loan out of one of `allowed` statuses, atomically; IllegalTransition otherwise."""
    changed = db.session.execute(
        update(Loan)
        .where(Loan.id == loan_id, Loan.status.in_(allowed))
        .values(updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    ).rowcount
    loan = get_loan(loan_id)
    db.session.refresh(loan)
    if not changed:
        db.session.rollback()
        raise IllegalTransition(
            f"Loan {loan_id} is {loan.status}; it cannot be {action} "
            f"(only a loan that is {' or '.join(allowed)} can)."
        )
    return loan


def approve(loan_id: int, actor: Actor, on: date | None = None) -> Loan:
    """Approve a pending loan; records `loan.approved`."""
    loan = _transition(
        loan_id,
        (LoanStatus.PENDING,),
        "approved",
        status=LoanStatus.APPROVED,
        approval_date=on or clock.today(),
        decided_by_id=actor.staff_id,
    )
    audit.record(actor, "loan.approved", "loan", loan.id)
    record_event("loan.approved", "loan", loan.id, snapshots.loan(loan))
    db.session.commit()
    return loan


def decline(loan_id: int, reason: str, actor: Actor) -> Loan:
    """Decline a pending loan with the reason the member will be given; records `loan.declined`."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed({"reason": "Give the reason for declining."})
    loan = _transition(
        loan_id,
        (LoanStatus.PENDING,),
        "declined",
        status=LoanStatus.DECLINED,
        decided_by_id=actor.staff_id,
        decision_reason=reason[:2000],
    )
    audit.record(actor, "loan.declined", "loan", loan.id, reason=reason)
    record_event("loan.declined", "loan", loan.id, snapshots.loan(loan))
    db.session.commit()
    return loan


def mark_disbursed(
    loan_id: int, actor: Actor, method: str, reference: str, disbursed_on: date | None = None
) -> Loan:
    """Make an approved loan active: its schedule runs from the disbursement date. Only once: the
    status check and the unique disbursement reference are both enforced by the database.
    Refused while an M-Pesa disbursement of the loan is under way. Commits."""
    if live_mpesa_disbursement(loan_id) is not None:
        raise IllegalTransition(
            f"Loan {loan_id} has an M-Pesa disbursement under way or done; wait for its outcome."
        )
    loan = disburse(loan_id, actor, method, reference, disbursed_on)
    db.session.commit()
    return loan


def live_mpesa_disbursement(loan_id: int):
    """The loan's M-Pesa disbursement that is waiting, running or done, if any."""
    return db.session.scalar(
        select(MpesaTransaction).where(
            MpesaTransaction.loan_id == loan_id,
            MpesaTransaction.transaction_type == MpesaType.B2C,
            MpesaTransaction.status.in_(LIVE_DISBURSEMENT),
        )
    )


def disburse(
    loan_id: int, actor: Actor, method: str, reference: str, disbursed_on: date | None = None
) -> Loan:
    """mark_disbursed() inside the caller's transaction, without the M-Pesa check: the caller
    commits. A refusal rolls the whole transaction back before raising."""
    errors: dict[str, str] = {}
    if method not in set(PaymentMethod) or method == PaymentMethod.CHECKOFF:
        errors["method"] = "Choose M-Pesa, cash or bank."
    reference = (reference or "").strip().upper()
    if not reference or len(reference) > 40:
        errors["reference"] = "Enter the disbursement's reference (receipt or transfer number)."
    day = parse_date(disbursed_on or clock.today(), "disbursement_date", errors)
    if day and day > clock.today():
        errors["disbursement_date"] = "The disbursement date cannot be in the future."
    if errors:
        raise ValidationFailed(errors)
    loan = get_loan(loan_id)
    schedule = build_schedule(
        loan.amount, loan.interest_rate, loan.term_months, loan.interest_method, day
    )
    try:
        loan = _transition(
            loan_id,
            (LoanStatus.APPROVED,),
            "disbursed",
            status=LoanStatus.ACTIVE,
            disbursement_date=day,
            due_date=schedule.due_date,
            disbursement_method=method,
            disbursement_reference=reference,
            monthly_payment=schedule.monthly_payment,
            total_payable=schedule.total_payable,
            balance=schedule.total_payable,
        )
    except IntegrityError:
        db.session.rollback()
        raise ValidationFailed(
            {"reference": "This reference was already used for a disbursement."}
        ) from None
    loan.installments = [
        LoanInstallment(
            number=i.number,
            due_date=i.due_date,
            principal=i.principal,
            interest=i.interest,
            amount=i.amount,
        )
        for i in schedule.installments
    ]
    audit.record(actor, "loan.disbursed", "loan", loan.id, method=method, reference=reference)
    record_event("loan.disbursed", "loan", loan.id, snapshots.loan(loan))
    return loan


def mark_overdue_defaulted(days_past_due: int, today: date | None = None) -> list[int]:
    """Mark defaulted every active loan with an instalment unpaid `days_past_due` days after it fell
    due; records `loan.defaulted` for each and returns their ids. Commits once per loan."""
    cutoff = (today or clock.today()) - timedelta(days=days_past_due)
    overdue = select(LoanInstallment.loan_id).where(
        LoanInstallment.status.in_((InstallmentStatus.DUE, InstallmentStatus.PARTIAL)),
        LoanInstallment.due_date < cutoff,
    )
    ids = list(
        db.session.scalars(
            select(Loan.id).where(Loan.status == LoanStatus.ACTIVE, Loan.id.in_(overdue))
        )
    )
    actor = Actor.system("default-sweep")
    defaulted = []
    for loan_id in ids:  # one commit per loan: each is its own state change
        try:
            loan = _transition(
                loan_id, (LoanStatus.ACTIVE,), "marked defaulted", status=LoanStatus.DEFAULTED
            )
        except IllegalTransition:
            continue  # repaid or changed since the query
        audit.record(actor, "loan.defaulted", "loan", loan.id, days_past_due=days_past_due)
        record_event("loan.defaulted", "loan", loan.id, snapshots.loan(loan))
        db.session.commit()
        defaulted.append(loan_id)
    return defaulted


def list_loans(
    status=None,
    product_id=None,
    date_from=None,
    date_to=None,
    member_id=None,
    page: int = 1,
    per_page: int = 25,
) -> Page:
    """Loans filtered by status, product and application date range, newest first; each with its
    member and product loaded in one query apiece, whatever the page size."""
    query = select(Loan).options(selectinload(Loan.member), selectinload(Loan.product))
    if status:
        query = query.where(Loan.status == status)
    if product_id:
        query = query.where(Loan.product_id == product_id)
    if member_id:
        query = query.where(Loan.member_id == member_id)
    if date_from:
        query = query.where(Loan.application_date >= date_from)
    if date_to:
        query = query.where(Loan.application_date <= date_to)
    return paginate(query.order_by(Loan.id.desc()), page, per_page)
