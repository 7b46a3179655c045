"""Repayment allocation (interest first, then principal, oldest instalment first) and completion."""

from datetime import date
from decimal import Decimal

import pytest

from app.extensions import db
from app.models import Event, InstallmentStatus, LoanStatus, Repayment
from app.services import repayments
from app.services.errors import IllegalTransition, ValidationFailed
from tests import factories
from tests.factories import SYSTEM


def test_partial_payment_covers_interest_before_principal(active_loan):
    first = active_loan.installments[0]
    payment = first.interest + Decimal("10.00")
    repayment = repayments.record_repayment(
        active_loan.id, payment, "cash", None, SYSTEM, date(2026, 2, 1)
    )
    assert repayment.interest_amount == first.interest
    assert repayment.principal_amount == Decimal("10.00")
    assert first.status == InstallmentStatus.PARTIAL
    assert active_loan.paid_amount == payment
    assert active_loan.balance == active_loan.total_payable - payment


def test_payment_spans_instalments_oldest_first(active_loan):
    first, second = active_loan.installments[:2]
    payment = first.amount + second.interest
    repayment = repayments.record_repayment(active_loan.id, payment, "mpesa", "QK12AB34CD", SYSTEM)
    assert first.status == InstallmentStatus.PAID
    assert second.interest_paid == second.interest and second.principal_paid == 0
    assert repayment.interest_amount == first.interest + second.interest
    assert repayment.principal_amount == first.principal
    assert repayment.reference == "QK12AB34CD"


def test_full_repayment_completes_the_loan(active_loan):
    repayments.record_repayment(active_loan.id, active_loan.balance, "bank", "EFT-9", SYSTEM)
    assert active_loan.status == LoanStatus.COMPLETED
    assert active_loan.balance == 0
    assert all(i.status == InstallmentStatus.PAID for i in active_loan.installments)
    types = [e.event_type for e in db.session.query(Event).order_by(Event.sequence)]
    assert types[-2:] == ["repayment.received", "loan.completed"]


def test_more_than_the_balance_is_refused_with_the_balance(active_loan):
    too_much = active_loan.balance + Decimal("0.01")
    with pytest.raises(ValidationFailed) as err:
        repayments.record_repayment(active_loan.id, too_much, "cash", None, SYSTEM)
    assert f"{active_loan.balance:,.2f}" in err.value.errors["amount"]
    db.session.expire_all()
    assert db.session.query(Repayment).count() == 0
    assert db.session.get(type(active_loan), active_loan.id).paid_amount == 0


def test_reference_is_unique_per_method(active_loan):
    repayments.record_repayment(active_loan.id, "100", "mpesa", "QK1", SYSTEM)
    with pytest.raises(ValidationFailed) as err:
        repayments.record_repayment(active_loan.id, "100", "mpesa", "qk1", SYSTEM)
    assert "already recorded" in err.value.errors["reference"]
    repayments.record_repayment(active_loan.id, "100", "bank", "QK1", SYSTEM)  # another method
    db.session.expire_all()
    assert db.session.get(type(active_loan), active_loan.id).paid_amount == Decimal("200.00")


def test_pending_loan_takes_no_repayment(member, product):
    loan = factories.pending_loan(member, product)
    with pytest.raises(IllegalTransition):
        repayments.record_repayment(loan.id, "100", "cash", None, SYSTEM)


@pytest.mark.parametrize(
    "amount,method,reference,paid_on,field",
    [
        ("0", "cash", None, None, "amount"),
        ("-5", "cash", None, None, "amount"),
        ("12.345", "cash", None, None, "amount"),
        ("abc", "cash", None, None, "amount"),
        ("NaN", "cash", None, None, "amount"),
        ("100", "barter", None, None, "method"),
        ("100", "mpesa", "", None, "reference"),
        ("100", "cash", None, "2999-01-01", "paid_on"),
        ("100", "cash", None, "01/02/2026", "paid_on"),
    ],
)
def test_bad_input_names_the_field(active_loan, amount, method, reference, paid_on, field):
    with pytest.raises(ValidationFailed) as err:
        repayments.record_repayment(active_loan.id, amount, method, reference, SYSTEM, paid_on)
    assert field in err.value.errors


def test_defaulted_loan_can_be_repaid_to_completion(active_loan):
    from app.services import loans

    loans.mark_overdue_defaulted(1, today=date(2030, 1, 1))
    repayments.record_repayment(
        active_loan.id, active_loan.balance, "checkoff", "PAYROLL-2030-01", SYSTEM
    )
    db.session.expire_all()
    assert db.session.get(type(active_loan), active_loan.id).status == LoanStatus.COMPLETED
