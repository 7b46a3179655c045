"""The loan state machine: every transition through a service, illegal ones refused clearly."""

from datetime import date, timedelta
from decimal import Decimal

import pytest

from app.extensions import db
from app.models import AuditLog, Event, LoanStatus
from app.services import loans
from app.services.errors import IllegalTransition, ValidationFailed
from tests import factories
from tests.factories import SYSTEM


def test_application_is_priced_by_its_product(member, product):
    loan = factories.pending_loan(member, product, Decimal("12000"), 6)
    assert loan.status == LoanStatus.PENDING
    assert loan.member_number == member.member_number
    assert loan.interest_rate == product.interest_rate
    assert loan.balance == loan.total_payable > loan.amount
    assert loan.processing_fee == Decimal("120.00")
    assert [e.event_type for e in db.session.query(Event)][-1] == "loan.created"


def test_application_outside_product_limits_names_each_field(member, product):
    with pytest.raises(ValidationFailed) as err:
        loans.submit_application(member.id, product.id, "500", "100", "", SYSTEM)
    assert set(err.value.errors) == {"amount", "term_months", "purpose"}
    assert "KES 1,000.00" in err.value.errors["amount"]
    assert db.session.query(Event).filter_by(event_type="loan.created").count() == 0


def test_only_active_members_may_borrow(product):
    dormant = factories.member(status="dormant")
    with pytest.raises(ValidationFailed) as err:
        factories.pending_loan(dormant, product)
    assert "dormant" in err.value.errors["member_id"]


def test_approve_then_disburse_builds_schedule_from_disbursement_date(member, product):
    loan = factories.approved_loan(member, product)
    assert loan.status == LoanStatus.APPROVED and loan.approval_date == date(2026, 1, 3)
    loan = loans.mark_disbursed(loan.id, SYSTEM, "bank", "trf-1", date(2026, 2, 10))
    assert loan.status == LoanStatus.ACTIVE
    assert loan.disbursement_reference == "TRF-1"
    assert loan.installments[0].due_date == date(2026, 3, 10)
    assert loan.due_date == date(2026, 8, 10)
    assert sum(i.amount for i in loan.installments) == loan.total_payable == loan.balance


def test_cannot_approve_a_declined_loan(member, product):
    loan = factories.pending_loan(member, product)
    loans.decline(loan.id, "Insufficient deposits", SYSTEM)
    with pytest.raises(IllegalTransition) as err:
        loans.approve(loan.id, SYSTEM)
    assert "is declined" in err.value.message
    assert db.session.get(type(loan), loan.id).status == LoanStatus.DECLINED


def test_decline_needs_a_reason(member, product):
    loan = factories.pending_loan(member, product)
    with pytest.raises(ValidationFailed) as err:
        loans.decline(loan.id, "  ", SYSTEM)
    assert "reason" in err.value.errors


def test_cannot_disburse_twice(member, product):
    loan = factories.active_loan(member, product)
    with pytest.raises(IllegalTransition) as err:
        loans.mark_disbursed(loan.id, SYSTEM, "bank", "TRF-OTHER", date(2026, 1, 6))
    assert "is active" in err.value.message
    assert db.session.query(Event).filter_by(event_type="loan.disbursed").count() == 1


def test_cannot_disburse_a_pending_loan(member, product):
    loan = factories.pending_loan(member, product)
    with pytest.raises(IllegalTransition):
        loans.mark_disbursed(loan.id, SYSTEM, "cash", "R1")


def test_disbursement_reference_is_unique(member, product):
    first = factories.approved_loan(member, product)
    second = factories.approved_loan(member, product)
    loans.mark_disbursed(first.id, SYSTEM, "bank", "SAME-REF")
    with pytest.raises(ValidationFailed) as err:
        loans.mark_disbursed(second.id, SYSTEM, "bank", "same-ref")
    assert "reference" in err.value.errors
    assert db.session.get(type(second), second.id).status == LoanStatus.APPROVED


def test_every_change_is_audited(member, product):
    loan = factories.active_loan(member, product)
    actions = [
        a.action
        for a in db.session.query(AuditLog).filter_by(target_type="loan", target_id=loan.id)
    ]
    assert actions == ["loan.created", "loan.approved", "loan.disbursed"]


def test_overdue_loans_are_marked_defaulted(member, product):
    loan = factories.active_loan(member, product, disbursed_on=date(2026, 1, 5))
    first_due = loan.installments[0].due_date
    assert loans.mark_overdue_defaulted(90, today=first_due + timedelta(days=90)) == []
    assert loans.mark_overdue_defaulted(90, today=first_due + timedelta(days=91)) == [loan.id]
    db.session.expire_all()
    assert db.session.get(type(loan), loan.id).status == LoanStatus.DEFAULTED
    assert db.session.query(Event).filter_by(event_type="loan.defaulted").count() == 1
