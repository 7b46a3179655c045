"""A broadcast in the browser: an administrator writes a message to the active members, sees the
live count change with the filters, confirms, and watches the progress bar reach 100% while a
worker (RQ's SimpleWorker, run between the steps) sends it through the provider sandbox."""

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.extensions import db
from app.models import MemberStatus, Notification, Role
from tests import factories
from tests.e2e.test_portal_flow import sign_in
from tests.notifications.conftest import notify_live  # noqa: F401 - the sandbox providers

pytestmark = pytest.mark.e2e


@pytest.mark.usefixtures("notify_live")
def test_admin_sends_a_broadcast_and_watches_it_finish(app, page, staff_user, run_jobs):
    # Quiet hours would hold the SMS until the morning: the test must not depend on the clock.
    app.config["NOTIFY_OVERRIDES"].update(quiet_hours_start="00:00", quiet_hours_end="00:00")
    admin = staff_user(Role.ADMIN)
    for name in ("Wanjiru", "Otieno", "Akinyi"):
        factories.member(first_name=name)
    factories.member(first_name="Kipchoge", status=MemberStatus.DORMANT)
    run_jobs()  # the members' welcome messages go first

    sign_in(page, admin.email)
    page.goto("/integrations/notifications/broadcasts")
    page.get_by_role("button", name="New broadcast").click()
    preview = page.locator("#broadcast-preview")
    expect(preview).to_contain_text("This will reach 3 members (3 by SMS, 3 by email).")
    page.select_option("#status", "any")
    expect(preview).to_contain_text("This will reach 4 members")
    page.select_option("#status", "active")
    page.select_option("#channel", "sms")
    expect(preview).to_contain_text("This will reach 3 members (3 by SMS, 0 by email).")

    page.fill("#name", "Office hours")
    page.fill("#message", "Dear {{ member.first_name }}, the office opens at 8:00 from Monday.")
    expect(preview).to_contain_text("Dear Wanjiru, the office opens at 8:00 from Monday.")
    page.on("dialog", lambda dialog: dialog.accept())  # the hx-confirm question
    page.get_by_role("button", name="Send the broadcast").click()

    expect(page).to_have_url(re.compile(r"/broadcasts/view\?broadcast_id=\d+$"))
    expect(page.locator("#flash")).to_contain_text("confirmed: it is being sent")
    status = page.locator("#broadcast-progress .broadcast-status")
    expect(status).to_contain_text("Waiting for a worker to start")

    run_jobs()  # the broadcast's job stores the messages; the send batches go to the sandbox
    expect(status).to_contain_text("Finished: all 3 messages done (100%)")
    bar = page.locator("#broadcast-progress progress")
    expect(bar).to_have_attribute("value", "3")
    expect(bar).to_have_attribute("max", "3")
    expect(page.locator("#count-sent")).to_have_text("3")
    expect(page.get_by_role("button", name="Cancel the broadcast")).to_have_count(0)

    page.get_by_role("link", name="Broadcasts").first.click()
    expect(page.locator("#broadcasts tbody tr")).to_have_count(1)
    expect(page.locator("#broadcasts tbody tr")).to_contain_text("finished")
    db.session.expire_all()
    sent = db.session.scalars(select(Notification).where(Notification.broadcast_id.is_not(None)))
    assert sorted(n.message for n in sent) == sorted(
        f"Dear {name}, the office opens at 8:00 from Monday."
        for name in ("Wanjiru", "Otieno", "Akinyi")
    )
