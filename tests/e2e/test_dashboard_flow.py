"""The dashboard in headless Chromium: an administrator opens it, every integration card loads and
shows its colour, a card changes colour when what it watches changes, and a payment received
appears in the activity feed at the next poll, all without the page reloading."""

import re

import pytest
from playwright.sync_api import expect
from rq import Worker

from app.extensions import db
from app.jobs import get_queue
from app.models import Integration, Role
from app.services import integration_log, ops_cache, ops_cards, ops_figures
from tests.e2e.test_portal_flow import SCREENSHOTS, sign_in

pytestmark = pytest.mark.e2e
COLOUR = re.compile(r"^(green|amber|red)$")


@pytest.fixture
def quick_polls(app):
    """Cards and the feed poll every second (15 and 10 in use), so the test need not wait."""
    saved = {k: app.config.get(k) for k in ("DAYSTAR_DASHBOARD_POLL_SECONDS",
                                            "DAYSTAR_DASHBOARD_ACTIVITY_POLL_SECONDS")}  # fmt: skip
    app.config.update(DAYSTAR_DASHBOARD_POLL_SECONDS=1, DAYSTAR_DASHBOARD_ACTIVITY_POLL_SECONDS=1)
    ops_cache.forget()
    yield
    for key, value in saved.items():
        if value is None:
            app.config.pop(key, None)
        else:
            app.config[key] = value
    ops_cache.forget()


def test_cards_load_and_the_feed_updates_live(page, staff_user, quick_polls, redis_conn):
    admin = staff_user(Role.ADMIN)
    sign_in(page, admin.email)
    page.evaluate("window.notReloaded = true")

    for name in ops_cards.CARDS:
        expect(page.locator(f"#ops-{name}-status")).to_have_attribute("data-state", COLOUR)
    jobs = page.locator("#ops-jobs-status")
    expect(jobs).to_have_attribute("data-state", "red")  # no worker, no scheduler
    expect(jobs).to_contain_text("No worker is running")
    expect(page.locator("#ops-redis-status")).to_have_attribute("data-state", "green")
    expect(page.locator("#activity-list")).to_contain_text("Nothing has happened yet")

    # The rules stay readable while the card refreshes around them.
    help_ = page.locator("#ops-jobs details.ops-help")
    help_.locator("summary").click()
    expect(help_).to_contain_text("Red when no RQ worker is alive (heartbeat).")

    worker = Worker([get_queue("default")], connection=redis_conn, name="e2e-dashboard")
    worker.register_birth()
    redis_conn.set(ops_figures.CRON_LOCK, "e2e", ex=60)
    try:
        expect(jobs).to_have_attribute("data-state", "green")
        expect(jobs).to_contain_text("Workers alive")
        expect(help_).to_have_attribute("open", "")

        integration_log.record(
            Integration.MPESA,
            "mpesa.payment_received",
            "Payment received: KES 1,500.00 from DST000042, receipt TKA1B2C3D4.",
            activity=True,
            mpesa_transaction_id=42,
        )
        db.session.commit()
        feed = page.locator("#activity-list")
        expect(feed).to_contain_text("Payment received: KES 1,500.00 from DST000042")
        link = feed.get_by_role("link", name="transaction")
        expect(link).to_have_attribute(
            "href", "/integrations/mpesa/transactions/detail?transaction_id=42"
        )
        assert page.evaluate("window.notReloaded") is True
        page.screenshot(path=SCREENSHOTS / "dashboard.png", full_page=True)
    finally:
        worker.register_death()
