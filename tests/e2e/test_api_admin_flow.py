"""Integrations > Accounting API in headless Chromium: an accountant creates an API key, sees it
once with a copy button, revokes it after confirming, and sees the key revoked; the usage chart
is drawn by the vendored Chart.js."""

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.extensions import db
from app.models import ApiKey, Role
from app.services import api_keys
from tests.e2e.test_portal_flow import SCREENSHOTS, sign_in

pytestmark = pytest.mark.e2e
KEY_PATTERN = re.compile(r"^dsk_live_[A-Za-z0-9_\-]{40,}$")


def test_accountant_creates_sees_once_and_revokes_a_key(page, staff_user):
    accountant = staff_user(Role.ACCOUNTANT)
    sign_in(page, accountant.email)

    page.click("nav >> text=Integrations")
    page.click("nav >> text=Accounting API")
    expect(page.locator("h1")).to_have_text("Accounting API")
    expect(page.locator("#api-keys")).to_contain_text("No API keys yet")

    page.get_by_role("button", name="New key").click()
    page.fill("#name", "Xero sync")
    page.get_by_label("Read loans").check()
    page.get_by_label("Read repayments").check()
    page.fill("#expires_in_days", "365")
    page.get_by_role("button", name="Create key").click()

    reveal = page.locator("#secret-reveal")
    expect(reveal).to_contain_text("it will not be shown again")
    plaintext = page.locator("#revealed-secret").input_value()
    assert KEY_PATTERN.match(plaintext)
    expect(reveal.get_by_role("button", name="Copy")).to_be_visible()
    key = db.session.scalars(select(ApiKey)).one()
    assert key.key_hash == api_keys.hash_key(plaintext)
    row = page.locator(f"#key-{key.id}")
    expect(row).to_contain_text("Xero sync")
    expect(row).to_contain_text(f"{key.prefix}…")
    expect(row.locator(".badge")).to_have_text("active")
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "api-key-created.png"), full_page=True)

    dialogs = []

    def accept(dialog):
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)  # the hx-confirm question
    row.get_by_role("button", name="Revoke").click()
    expect(page.locator(f"#key-{key.id} .badge")).to_have_text("revoked")
    assert len(dialogs) == 1 and "Revoke the key “Xero sync”" in dialogs[0]
    expect(page.locator("#flash")).to_contain_text("revoked")
    expect(page.locator("#secret-reveal")).to_have_count(0)
    db.session.expire_all()
    assert db.session.get(ApiKey, key.id).revoked_at is not None

    page.reload()  # the key is nowhere on the page any more
    assert plaintext not in page.content()
    expect(page.locator(f"#key-{key.id} .badge")).to_have_text("revoked")

    page.locator(f"#key-{key.id}").get_by_role("link", name="Usage").click()
    expect(page.locator("#key-usage h2")).to_contain_text("Xero sync")
    page.wait_for_function(
        "() => window.Chart && Chart.getChart(document.querySelector('canvas[data-usage-chart]'))"
    )
    page.get_by_role("link", name="7 days").click()  # an htmx swap draws the new chart too
    expect(page.locator("#key-usage")).to_contain_text("requests in 7 days")
    page.wait_for_function(
        "() => Chart.getChart(document.querySelector('canvas[data-usage-chart]'))"
        " && Chart.getChart(document.querySelector('canvas[data-usage-chart]')).data.labels.length === 7"
    )
    page.screenshot(path=str(SCREENSHOTS / "api-key-usage.png"), full_page=True)
