"""M-Pesa in the browser: a loan officer asks a member to pay and watches the status change live
when the sandbox's callback arrives; then disburses an approved loan the same way. The sandbox
plays Daraja over real HTTP; the worker is RQ's SimpleWorker, run between the steps."""

import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from app.extensions import db
from app.models import Contribution, Loan, LoanStatus, Role
from tests import factories
from tests.e2e.test_portal_flow import sign_in

pytestmark = pytest.mark.e2e


def test_officer_requests_a_payment_and_sees_it_paid(page, staff_user, mpesa_live, run_jobs):
    officer = staff_user(Role.LOAN_OFFICER)
    member = factories.member(first_name="Wanjiru", last_name="Kariuki")
    sign_in(page, officer.email)
    page.goto(f"/members/{member.id}")
    page.get_by_role("button", name="Request M-Pesa payment").click()
    page.fill("#amount", "1500")
    page.get_by_role("button", name="Send the prompt").click()
    live = page.locator(".mpesa-live")
    expect(live).to_contain_text("Queued")

    run_jobs()  # the job sends the STK Push to the sandbox
    expect(live).to_contain_text("waiting for them to enter their PIN")
    mpesa_live.flush()  # the sandbox posts its callback to the live server
    run_jobs()  # the callback is processed: the member is credited
    expect(live).to_contain_text(re.compile(r"Paid: receipt [A-Z0-9]{10}"))
    db.session.expire_all()
    assert db.session.query(Contribution).filter_by(member_id=member.id).one().amount == Decimal(
        "1500.00"
    )


def test_officer_disburses_an_approved_loan(page, staff_user, mpesa_live, run_jobs):
    officer = staff_user(Role.LOAN_OFFICER)
    member = factories.member(first_name="Otieno", last_name="Ouma")
    loan = factories.approved_loan(member, factories.product(), amount=Decimal("30000"), term=12)
    sign_in(page, officer.email)
    page.goto(f"/loans/{loan.id}")
    page.get_by_role("button", name="Disburse via M-Pesa").click()
    confirm = page.locator(".mpesa-confirm")
    expect(confirm).to_contain_text("KES 30,000.00")
    expect(confirm).to_contain_text("Otieno Ouma")
    confirm.get_by_role("button", name="Confirm and send").click()

    run_jobs()
    mpesa_live.flush()
    run_jobs()
    expect(page.locator(".mpesa-live")).to_contain_text("Disbursed")
    db.session.expire_all()
    assert db.session.get(Loan, loan.id).status == LoanStatus.ACTIVE
