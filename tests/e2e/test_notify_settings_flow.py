"""Notification settings in the browser: an administrator enters Twilio's credentials on the
settings page and saves them, then sends a test SMS and watches the attempt list update while
the first provider fails and Twilio takes over, until the delivery report arrives. The provider
sandbox plays the providers over real HTTP; the worker is RQ's SimpleWorker, run between steps."""

import re

import pytest
from playwright.sync_api import expect

from app.extensions import db
from app.models import Notification, Role
from app.services.notifications import admin_settings
from app.services.notifications import config as notify_config
from tests.e2e.test_portal_flow import sign_in
from tests.factories import SYSTEM
from tests.fixtures.mpesa import SECRET

pytestmark = pytest.mark.e2e

AT_SECRET = "at-callback-secret-0123456789"


@pytest.fixture
def africastalking_configured(app, live_server, notify_sandbox):
    """Africa's Talking (first in the SMS order) on the sandbox; delivery reports reach the live
    server. Twilio, second, is left for the administrator to configure."""
    creds = notify_sandbox.credentials["africastalking"]
    admin_settings.save(
        {
            "sms_providers": "africastalking,twilio",
            "africastalking.username": creds["username"],
            "africastalking.api_key": creds["api_key"],
            "africastalking.base_url": notify_sandbox.base_url,
            "africastalking.callback_secret": AT_SECRET,
        },
        SYSTEM,
    )
    saved = app.config["MPESA_OVERRIDES"]
    app.config["MPESA_OVERRIDES"] = {"public_base_url": live_server, "callback_secret": SECRET}
    yield notify_sandbox
    app.config["MPESA_OVERRIDES"] = saved


def test_admin_configures_twilio_and_watches_a_test_sms_fail_over(
    page, staff_user, africastalking_configured, run_jobs
):
    sandbox = africastalking_configured
    twilio = sandbox.credentials["twilio"]
    admin = staff_user(Role.ADMIN)
    sign_in(page, admin.email)

    page.goto("/integrations/notifications/settings")
    provider = page.locator("#provider-twilio")
    expect(provider.locator("summary")).to_contain_text("not configured")
    provider.locator("summary").click()
    page.fill("#twilio_account_sid", twilio["account_sid"])
    page.fill("#twilio_auth_token", twilio["auth_token"])
    page.fill("#twilio_from_number", "+254700000999")
    page.fill("#twilio_base_url", sandbox.base_url)
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#flash")).to_contain_text("Notification settings saved")
    expect(page.locator("#provider-twilio summary")).to_contain_text("configured")
    expect(page.locator("#provider-twilio summary")).not_to_contain_text("not configured")
    expect(page.locator("#twilio_auth_token")).to_have_value("")  # never shown back
    assert notify_config.provider_values("twilio")["auth_token"] == twilio["auth_token"]

    sandbox.set_failure("africastalking", "500")
    page.locator("nav.tabs").get_by_role("link", name="Test message").click()
    page.fill("#recipient", "0712 345 678")
    page.fill("#message", "Checking the SMS failover.")
    page.get_by_role("button", name="Send the test message").click()
    result = page.locator("#notify-test-result")
    expect(result).to_contain_text("Queued: waiting for the worker")
    expect(result.locator(".attempt-list")).to_have_count(0)

    run_jobs()  # the worker tries Africa's Talking (HTTP 500), then Twilio
    rows = result.locator(".attempt-list tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("Africa's Talking")
    expect(rows.nth(0)).to_contain_text("failed (temporary)")
    expect(rows.nth(1)).to_contain_text("Twilio")
    expect(rows.nth(1)).to_contain_text(re.compile(r"accepted\s+SM[0-9a-f]{32}"))
    expect(result).to_contain_text("Waiting for the delivery report")

    sandbox.flush()  # Twilio's signed status callback reaches the live server
    run_jobs()  # the route stored it; the worker applies it, and the panel's next poll shows it
    expect(result).to_contain_text("Delivered")
    expect(result).not_to_have_attribute("hx-trigger", re.compile("every"))  # polling stopped
    db.session.expire_all()
    assert db.session.query(Notification).one().status == "delivered"
