"""The suspense queue: listing, crediting an item onto a loan or a member in one transaction with
closing it (once only), and dismissing it with a note."""

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from app.extensions import db
from app.models import (
    AuditLog,
    Contribution,
    Event,
    LoanStatus,
    MpesaStatus,
    Repayment,
    SuspenseItem,
    SuspenseStatus,
)
from app.models.base import utcnow
from app.services.errors import IllegalTransition, NotFound, ValidationFailed
from app.services.mpesa import suspense
from tests import factories
from tests.factories import SYSTEM
from tests.services.mpesa.statement_data import mpesa_transaction, nairobi


def held(receipt="RCS0000001", amount="1000", source="c2b", paid_at=None) -> SuspenseItem:
    item = suspense.hold(
        source,
        Decimal(amount),
        "Account DST999999 names no member",
        receipt=receipt,
        phone_number="2547****5678",
        account_reference="DST999999",
        paid_at=paid_at or nairobi(2026, 3, 3, 9, 30),
    )
    db.session.commit()
    return item


def count(model) -> int:
    return db.session.scalar(select(func.count(model.id)))


def test_resolve_onto_a_loan_posts_a_repayment_and_closes_the_item(active_loan):
    item = held()
    balance = active_loan.balance
    resolved = suspense.resolve(item.id, SYSTEM, loan_id=active_loan.id, note="Phoned the member")
    assert resolved.status == SuspenseStatus.RESOLVED and resolved.resolved_at
    repayment = db.session.scalars(select(Repayment)).one()
    assert (repayment.method, repayment.reference, repayment.amount) == (
        "mpesa",
        "RCS0000001",
        Decimal("1000.00"),
    )
    assert repayment.paid_on == date(2026, 3, 3) and repayment.loan_id == active_loan.id
    assert (
        resolved.resolution
        == f"Repayment {repayment.id} on loan {active_loan.id}. Phoned the member"
    )
    db.session.refresh(active_loan)
    assert active_loan.balance == balance - Decimal("1000.00")
    entry = db.session.scalars(select(AuditLog).filter_by(action="mpesa_suspense.resolved")).one()
    assert entry.target_id == item.id and entry.details["repayment_id"] == repayment.id
    assert db.session.scalars(select(Event.event_type)).all()[-1] == "repayment.received"


def test_resolve_onto_a_member_posts_a_deposit(member):
    item = held(amount="250.50")
    resolved = suspense.resolve(item.id, SYSTEM, member_id=member.id)
    contribution = db.session.scalars(select(Contribution)).one()
    assert (contribution.kind, contribution.method, contribution.reference) == (
        "deposit",
        "mpesa",
        "RCS0000001",
    )
    assert contribution.amount == Decimal("250.50") and contribution.member_id == member.id
    assert member.member_number in resolved.resolution


def test_resolving_twice_is_refused_and_credits_once(member, active_loan):
    item = held()
    suspense.resolve(item.id, SYSTEM, member_id=member.id)
    with pytest.raises(IllegalTransition, match="resolved already"):
        suspense.resolve(item.id, SYSTEM, loan_id=active_loan.id)
    with pytest.raises(IllegalTransition):
        suspense.dismiss(item.id, SYSTEM, "changed my mind")
    assert count(Contribution) == 1 and count(Repayment) == 0


def test_bad_choices_are_refused_and_nothing_is_written(member, product, active_loan):
    item = held(amount="50000")
    pending = factories.pending_loan(member, product)
    cases = [
        ({}, "loan_id", "either a loan or a member"),
        ({"loan_id": active_loan.id, "member_id": member.id}, "loan_id", "not both"),
        ({"loan_id": 99999}, "loan_id", "no loan 99999"),
        ({"loan_id": pending.id}, "loan_id", "is pending"),
        ({"loan_id": active_loan.id}, "loan_id", "more than the loan's balance"),
        ({"member_id": 99999}, "member", "no member 99999"),
    ]
    for choice, field, message in cases:
        with pytest.raises(ValidationFailed) as refused:
            suspense.resolve(item.id, SYSTEM, **choice)
        assert message in refused.value.errors[field], choice
    exited = factories.member(status="exited")
    with pytest.raises(ValidationFailed, match="has exited"):
        suspense.resolve(item.id, SYSTEM, member_id=exited.id)
    with pytest.raises(ValidationFailed, match="at most 1000"):
        suspense.resolve(item.id, SYSTEM, member_id=member.id, note="x" * 1001)
    assert db.session.get(SuspenseItem, item.id).status == SuspenseStatus.OPEN
    assert count(Repayment) == count(Contribution) == 0


def test_a_refused_credit_leaves_the_item_open(member):
    # Dated next year: the contribution service refuses a future payment.
    item = held(paid_at=utcnow().replace(year=utcnow().year + 1))
    with pytest.raises(ValidationFailed, match="future"):
        suspense.resolve(item.id, SYSTEM, member_id=member.id)
    db.session.expire_all()
    assert db.session.get(SuspenseItem, item.id).status == SuspenseStatus.OPEN
    assert count(Contribution) == 0
    assert (
        db.session.scalar(
            select(func.count(AuditLog.id)).filter_by(action="mpesa_suspense.resolved")
        )
        == 0
    )


def test_the_credit_rolls_back_when_someone_else_closed_the_item_meanwhile(member, monkeypatch):
    item = held()
    real_post = suspense.post_contribution

    def post_while_a_colleague_dismisses(*args, **kwargs):
        posted = real_post(*args, **kwargs)
        db.session.execute(
            update(SuspenseItem).where(SuspenseItem.id == item.id).values(status="dismissed")
        )
        return posted

    monkeypatch.setattr(suspense, "post_contribution", post_while_a_colleague_dismisses)
    with pytest.raises(IllegalTransition, match="closed by someone else"):
        suspense.resolve(item.id, SYSTEM, member_id=member.id)
    assert count(Contribution) == 0  # the deposit went with the failed close
    assert "contribution.received" not in db.session.scalars(select(Event.event_type)).all()


def test_a_receipt_credited_elsewhere_is_refused(member, active_loan):
    item = held(receipt="RCS0000009")
    mpesa_transaction("RCS0000009", "1000", status=MpesaStatus.COMPLETED, completed_at=utcnow())
    with pytest.raises(IllegalTransition, match="already credited"):
        suspense.resolve(item.id, SYSTEM, member_id=member.id)


def test_an_item_without_a_receipt_gets_a_reference_of_its_own(member):
    item = held(receipt=None)
    suspense.resolve(item.id, SYSTEM, member_id=member.id)
    assert db.session.scalars(select(Contribution.reference)).one() == f"SUSPENSE{item.id}"


def test_dismiss_needs_a_note_and_happens_once(db):
    item = held()
    with pytest.raises(ValidationFailed, match="Say why"):
        suspense.dismiss(item.id, SYSTEM, "  ")
    dismissed = suspense.dismiss(item.id, SYSTEM, "Refunded to the sender")
    assert dismissed.status == SuspenseStatus.DISMISSED
    assert dismissed.resolution == "Refunded to the sender"
    with pytest.raises(IllegalTransition, match="dismissed already"):
        suspense.dismiss(item.id, SYSTEM, "again")
    with pytest.raises(NotFound):
        suspense.dismiss(10**12, SYSTEM, "nothing")
    entry = db.session.scalars(select(AuditLog).filter_by(action="mpesa_suspense.dismissed")).one()
    assert entry.details["note"] == "Refunded to the sender"


def test_listing_and_finding_members(member, active_loan):
    first = held("RCS0000001", source="c2b")
    second = held("RCS0000002", source="statement")
    third = held("RCS0000003", source="callback")
    suspense.dismiss(third.id, SYSTEM, "test payment")
    assert [i.id for i in suspense.list_items().items] == [first.id, second.id]
    assert [i.id for i in suspense.list_items(source="statement").items] == [second.id]
    assert [i.id for i in suspense.list_items(status=None).items][0] == third.id
    assert suspense.list_items(status="nonsense").items == []
    assert suspense.open_total() == (2, Decimal("2000.00"))
    assert suspense.find_member(member.member_number.lower()).id == member.id
    assert suspense.find_member(str(member.id)).id == member.id
    with pytest.raises(ValidationFailed, match="no member DST000000"):
        suspense.find_member("DST000000")
    assert active_loan.status == LoanStatus.ACTIVE
