"""Message templates in the browser: an administrator opens a template, edits the SMS and the
email, watches the live preview follow (the SMS's encoding and parts, the email inside its
sandboxed iframe), is refused a template that reaches for Python internals, and saves."""

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.extensions import db
from app.models import NotificationTemplate, Role
from tests.e2e.test_portal_flow import sign_in

pytestmark = pytest.mark.e2e


def test_admin_edits_a_template_sees_the_preview_and_saves(page, staff_user):
    admin = staff_user(Role.ADMIN)
    sign_in(page, admin.email)
    page.goto("/integrations/notifications/templates")
    page.get_by_role("link", name="loan_approved").click()
    expect(page).to_have_url(re.compile(r"/templates/edit\?key=loan_approved$"))
    preview = page.locator("#template-preview")
    expect(preview.locator(".sms-text")).to_contain_text("Dear Wanjiku, your KES 50,000.00 loan")

    page.fill("#sms_body", "Hongera {{ member.first_name }}! Loan {{ loan.id }} is approved ✅")
    expect(preview.locator(".sms-text")).to_have_text("Hongera Wanjiku! Loan 1042 is approved ✅")
    expect(preview.locator(".sms-shape")).to_contain_text("UCS-2")

    page.fill("#email_subject", "Loan {{ loan.id }}: approved")
    expect(preview.locator(".email-subject")).to_have_text("Loan 1042: approved")
    email = page.frame_locator("iframe.email-preview")
    expect(email.locator("body")).to_contain_text("Good news: your loan is approved.")
    expect(email.locator("body")).to_contain_text("KES 53,309.28")

    page.fill("#sms_body", "{{ ''.__class__ }}")  # the sandbox refuses it, next to the field
    expect(page.locator("#sms_body-error")).to_contain_text("uses something templates may not use")
    expect(preview).to_contain_text("The preview shows once these are fixed")

    page.fill("#sms_body", "Hongera {{ member.first_name }}! Loan {{ loan.id }} is approved.")
    expect(page.locator("#sms_body-error")).to_have_text("")
    expect(preview.locator(".sms-shape")).to_contain_text("GSM-7")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#flash")).to_contain_text("Template “loan_approved” saved")
    expect(page.locator("#template-editor .badge")).to_have_text("modified")

    db.session.expire_all()
    row = db.session.scalar(
        select(NotificationTemplate).where(NotificationTemplate.key == "loan_approved")
    )
    assert row.sms_body == "Hongera {{ member.first_name }}! Loan {{ loan.id }} is approved."
    assert row.email_subject == "Loan {{ loan.id }}: approved"
