"""Integrations > Notifications in headless Chromium: a loan officer reads the delivery statistics
(both charts drawn by the vendored Chart.js, redrawn after the period changes), filters the log,
opens a failed email (its HTML in a sandboxed frame whose script does not run) and resends it
after confirming."""

from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.extensions import db
from app.models import Notification, Role
from app.models.base import utcnow
from tests import factories
from tests.e2e.test_portal_flow import SCREENSHOTS, sign_in

pytestmark = pytest.mark.e2e
CHART = "canvas#notify-chart-{}"


def chart_labels(page, name: str) -> str:
    selector = CHART.format(name)
    return (
        f"() => window.Chart && Chart.getChart(document.querySelector('{selector}'))"
        f" && Chart.getChart(document.querySelector('{selector}')).data.labels.length"
    )


def test_officer_reads_the_statistics_and_resends_a_failed_email(page, staff_user):
    officer = staff_user(Role.LOAN_OFFICER)
    member = factories.member(first_name="Achieng", last_name="Otieno")
    for status, provider in (("delivered", "africastalking"), ("delivered", "africastalking"),
                             ("failed", "twilio"), ("skipped", None)):  # fmt: skip
        db.session.add(Notification(
            notification_type="general", channel="sms", status=status, provider=provider,
            message=f"SMS {status}", recipient_contact=member.phone, recipient_id=member.id,
            created_at=utcnow() - timedelta(hours=2)))  # fmt: skip
    failed = Notification(
        notification_type="statement", channel="email", status="failed", provider="sendgrid",
        priority="high", subject="Your March statement", message="Your statement is attached.",
        html_message="<h1 id='inside'>March statement</h1><script>parent.document.title='owned'</script>",
        recipient_contact=member.email, recipient_id=member.id, skip_reason="Bounced",
        created_at=utcnow() - timedelta(days=3),
    )  # fmt: skip
    db.session.add(failed)
    db.session.commit()
    sign_in(page, officer.email)

    page.click("nav >> text=Integrations")
    page.click("nav >> text=Notifications")
    expect(page.locator("#notify-overview h2")).to_have_text("Delivery over the last 7 days")
    expect(page.locator("#stats-sms-africastalking")).to_contain_text("100.0%")
    page.wait_for_function(chart_labels(page, "trend") + " === 7")
    page.wait_for_function(chart_labels(page, "providers") + " === 4")
    page.get_by_role("link", name="30 days").click()  # an htmx swap draws the new charts
    expect(page.locator("#notify-overview h2")).to_have_text("Delivery over the last 30 days")
    page.wait_for_function(chart_labels(page, "trend") + " === 30")
    assert page.url.endswith("?period=30d")
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "notify-overview.png"), full_page=True)

    page.locator("nav.tabs").get_by_role("link", name="Log").click()
    expect(page.locator("#notify-log tbody tr")).to_have_count(5)
    page.select_option("#status", "failed")  # the filter form reloads the list on change
    expect(page.locator("#notify-log tbody tr")).to_have_count(2)
    page.select_option("#channel", "email")
    expect(page.locator("#notify-log tbody tr")).to_have_count(1)
    page.get_by_role("link", name=str(failed.id), exact=True).click()

    expect(page.locator("#notify-notification h2")).to_contain_text(f"Email #{failed.id}")
    frame = page.frame_locator("iframe.email-preview")
    expect(frame.locator("#inside")).to_have_text("March statement")
    assert page.get_attribute("iframe.email-preview", "sandbox") == ""
    assert page.title() != "owned"  # the email's script did not run

    dialogs = []

    def accept(dialog):
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)  # the hx-confirm question
    page.get_by_role("button", name="Resend").click()
    expect(page.locator("#flash")).to_contain_text(f"Notification #{failed.id} resent as #")
    assert len(dialogs) == 1 and member.email in dialogs[0]
    copy = db.session.scalar(select(Notification).where(Notification.id > failed.id))
    expect(page).to_have_url(f"{page.url.split('/integrations')[0]}/integrations/notifications/"
                             f"log/notification?notification_id={copy.id}")  # fmt: skip
    expect(page.locator("#notify-notification h2")).to_contain_text(f"Email #{copy.id}")
    expect(page.locator("#notify-notification")).to_contain_text(f"A resend of #{failed.id}")
    expect(page.frame_locator("iframe.email-preview").locator("#inside")).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "notify-resent.png"), full_page=True)
