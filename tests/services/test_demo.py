"""The demo SACCO: every loan status, consistent money, valid records, deterministic per seed."""

import hashlib
import re
from collections import defaultdict
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import delete, func, select

from app.extensions import db
from app.models import (
    AuditLog,
    Contribution,
    Event,
    InstallmentStatus,
    Loan,
    LoanStatus,
    Member,
    Repayment,
)
from app.services import demo, loans
from app.services.amortization import build_schedule
from app.services.members import member_number_for, search_key
from app.services.validation import normalize_phone
from tests import factories

ANCHOR = date(2026, 6, 30)
DISBURSED = {LoanStatus.ACTIVE, LoanStatus.COMPLETED, LoanStatus.DEFAULTED, LoanStatus.WRITTEN_OFF}


@pytest.fixture
def seeded(db):
    return demo.seed(members=200, seed=7, today=ANCHOR)


def _rows(model) -> list[tuple]:
    return [tuple(row) for row in db.session.execute(select(model.__table__).order_by(model.id))]


def _digest() -> str:
    text = repr([_rows(Member), _rows(Loan), _rows(Repayment), _rows(Contribution)])
    return hashlib.sha256(text.encode()).hexdigest()


def _empty() -> None:
    db.session.rollback()
    for table in reversed(db.metadata.sorted_tables):
        db.session.execute(delete(table))
    db.session.commit()


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_seed_reports_what_it_wrote(seeded):
    assert seeded.skipped is None
    assert seeded.counts["members"] == 200 == _count(Member)
    assert seeded.counts["loans"] == _count(Loan) > 60
    assert seeded.counts["repayments"] == _count(Repayment) > 500
    assert seeded.counts["contributions"] == _count(Contribution) > 200
    assert "200 members" in seeded.summary() and " s:" in seeded.summary()


def test_every_loan_status_is_present(seeded):
    statuses = set(db.session.scalars(select(Loan.status).distinct()))
    assert statuses == set(LoanStatus)
    assert seeded.loan_statuses.keys() == set(LoanStatus)


def test_loan_money_is_consistent(seeded):
    repaid = defaultdict(Decimal)
    principal_repaid = defaultdict(Decimal)
    for repayment in db.session.scalars(select(Repayment)):
        assert repayment.amount == repayment.principal_amount + repayment.interest_amount
        repaid[repayment.loan_id] += repayment.amount
        principal_repaid[repayment.loan_id] += repayment.principal_amount
    for loan in db.session.scalars(select(Loan)):
        assert repaid[loan.id] == loan.paid_amount, loan.id
        assert loan.balance == loan.total_payable - loan.paid_amount >= 0
        assert (loan.balance == 0) == (loan.status == LoanStatus.COMPLETED), loan.id
        if loan.status not in DISBURSED:
            assert loan.installments == [] and loan.paid_amount == 0
            continue
        schedule = build_schedule(loan.amount, loan.interest_rate, loan.term_months,
                                  loan.interest_method, loan.disbursement_date)  # fmt: skip
        assert loan.total_payable == schedule.total_payable
        assert loan.due_date == schedule.due_date
        assert [(i.due_date, i.principal, i.interest) for i in loan.installments] == [
            (i.due_date, i.principal, i.interest) for i in schedule.installments
        ]
        assert sum(i.amount for i in loan.installments) == loan.total_payable
        paid = sum(i.principal_paid + i.interest_paid for i in loan.installments)
        assert paid == loan.paid_amount
        assert sum(i.principal_paid for i in loan.installments) == principal_repaid[loan.id]
        for inst in loan.installments:
            assert (inst.status == InstallmentStatus.PAID) == (inst.outstanding == 0)
            assert (inst.paid_on is not None) == (inst.status == InstallmentStatus.PAID)


def test_dates_are_in_order_and_not_in_the_future(seeded):
    for loan in db.session.scalars(select(Loan)):
        assert loan.member.joined_on < loan.application_date <= ANCHOR
        if loan.approval_date:
            assert loan.application_date <= loan.approval_date <= ANCHOR
        if loan.disbursement_date:
            assert loan.approval_date <= loan.disbursement_date <= ANCHOR
        days = [r.paid_on for r in loan.repayments]
        assert days == sorted(days)
        assert all(loan.disbursement_date <= day <= ANCHOR for day in days)
    assert db.session.scalar(select(func.max(Contribution.paid_on))) <= ANCHOR


def test_open_loans_agree_with_the_default_rule(seeded):
    # The nightly sweep would default nothing: active loans are at most a couple of months behind.
    assert loans.mark_overdue_defaulted(days_past_due=90, today=ANCHOR) == []


def test_members_are_valid_and_unique(seeded):
    members = list(db.session.scalars(select(Member)))
    for member in members:
        assert re.fullmatch(r"254[71]\d{8}", member.phone)
        assert normalize_phone(member.phone) == member.phone
        assert member.member_number == member_number_for(member.id)
        assert re.fullmatch(r"\d{8}", member.national_id)
        assert (member.search_name, member.search_last_name) == search_key(
            member.first_name, member.last_name
        )
    for column in ("member_number", "national_id", "phone"):
        assert len({getattr(m, column) for m in members}) == len(members)
    assert {m.status for m in members} == {"active", "dormant", "exited"}


def test_no_events_and_a_single_audit_entry(seeded):
    assert _count(Event) == 0
    entries = list(db.session.scalars(select(AuditLog)))
    assert [(e.action, e.actor_type, e.actor_label) for e in entries] == [
        ("demo.seeded", "system", "seed-demo")
    ]


def test_services_work_after_seeding(seeded):
    """Ids continue after the seeded ones (on PostgreSQL the sequences were moved on)."""
    highest = db.session.scalar(select(func.max(Member.id)))
    member = factories.member(national_id="99999999", phone="0799000001")
    assert member.id == highest + 1
    loan = factories.active_loan(member, factories.product())
    assert loan.id > seeded.counts["loans"] and len(loan.installments) == 6


def test_same_seed_same_data_and_another_seed_other_data(db):
    demo.seed(members=60, seed=3, today=ANCHOR)
    first = _digest()
    _empty()
    demo.seed(members=60, seed=3, today=ANCHOR)
    assert _digest() == first
    _empty()
    demo.seed(members=60, seed=4, today=ANCHOR)
    assert _digest() != first


@pytest.mark.parametrize("if_empty", [True, False])
def test_a_database_with_members_is_left_alone(db, if_empty):
    factories.member()
    result = demo.seed(members=20, seed=1, if_empty=if_empty)
    assert result.skipped and "1 members already" in result.summary()
    assert _count(Member) == 1 and _count(Loan) == 0


def test_cli_seeds_and_then_skips(app, db):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["seed-demo", "--members", "50", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert "50 members" in result.output
    assert _count(Member) == 50
    again = runner.invoke(args=["seed-demo", "--members", "50", "--if-empty"])
    assert again.exit_code == 0 and "no demo data added" in again.output
    assert _count(Member) == 50
