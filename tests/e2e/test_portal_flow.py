"""The portal's main flow in headless Chromium: sign in, find a member, apply for a loan with a
schedule preview, and approve it as a loan officer."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from app.extensions import db
from app.models import Loan, LoanStatus, Role
from tests import factories
from tests.conftest import PASSWORD

pytestmark = pytest.mark.e2e
SCREENSHOTS = Path(__file__).parent / "screenshots"


def sign_in(page, email):
    page.goto("/auth/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/dashboard$"))


def test_officer_finds_member_applies_and_approves(page, staff_user):
    officer = staff_user(Role.LOAN_OFFICER)
    factories.member(first_name="Achieng", last_name="Otieno")
    factories.member(first_name="Kamau", last_name="Njoroge")
    product = factories.product(name="Development loan")

    sign_in(page, officer.email)
    # The dashboard cards load lazily through htmx.
    expect(page.locator("#card-members .figure")).to_have_text("2")

    page.click("nav >> text=Members")
    page.fill("input[name=q]", "achi")
    results = page.locator("#members-results")
    expect(results).to_contain_text("Otieno")
    expect(results).not_to_contain_text("Njoroge")
    expect(page).to_have_url(re.compile(r"q=achi"))  # the search is in the address bar
    results.get_by_role("link", name="Achieng Otieno").click()
    expect(page.locator("h1")).to_contain_text("Achieng Otieno")

    page.get_by_role("button", name="Apply for a loan").click()
    page.select_option("#product_id", str(product.id))
    page.fill("#amount", "24000")
    page.fill("#term_months", "12")
    page.locator("#term_months").dispatch_event("change")
    preview = page.locator("#schedule-preview")
    expect(preview).to_contain_text("2,132.37")  # monthly payment at 12% over 12 months
    page.fill("#purpose", "Dairy cow")
    page.get_by_role("button", name="Submit application").click()

    expect(page).to_have_url(re.compile(r"/loans/\d+$"))
    expect(page.locator("#loan-detail")).to_contain_text("pending")
    page.on("dialog", lambda dialog: dialog.accept())  # the hx-confirm question
    page.locator("#loan-actions").get_by_role("button", name="Approve", exact=True).click()
    expect(page.locator("#loan-detail")).to_contain_text("approved")
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "loan-approved.png"), full_page=True)

    db.session.expire_all()
    loan = db.session.query(Loan).one()
    assert loan.status == LoanStatus.APPROVED
    assert loan.decided_by_id == officer.id
    assert loan.purpose == "Dairy cow"


def test_viewer_sees_no_write_actions(page, staff_user, member):
    viewer = staff_user(Role.VIEWER)
    sign_in(page, viewer.email)
    page.goto(f"/members/{member.id}")
    expect(page.locator("h1")).to_contain_text(member.last_name)
    expect(page.locator("text=Apply for a loan")).to_have_count(0)
    expect(page.locator("text=Record contribution")).to_have_count(0)
