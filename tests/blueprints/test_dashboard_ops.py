"""The dashboard's Integrations section: a status card per integration that polls itself (full
page and htmx partial), coloured by the rules its help lists and linking to its settings, and
the recent-activity feed, live; all of it still answering when Redis is down."""

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from markupsafe import escape
from redis import Redis
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from app.extensions import db
from app.models import ApiRequestLog, Integration, IntegrationLogEntry, LogLevel
from app.services import integration_log, ops_cache, ops_cards

HX = {"HX-Request": "true"}
NAMES = tuple(ops_cards.CARDS)
POLL = "every 15s [document.visibilityState === 'visible']"


@pytest.fixture(autouse=True)
def fresh_cache(app):
    ops_cache.forget()
    yield
    ops_cache.forget()


@pytest.fixture
def dead_redis(app):
    saved = app.extensions["redis"]
    app.extensions["redis"] = Redis.from_url("redis://127.0.0.1:9/0", socket_connect_timeout=0.5)
    ops_cache.forget()
    yield
    app.extensions["redis"] = saved
    ops_cache.forget()


def activity(message: str, minutes_ago: int, **options) -> IntegrationLogEntry:
    options.setdefault("activity", True)
    row = integration_log.entry(Integration.MPESA, "mpesa.payment_received", message, **options)
    row.created_at = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    db.session.add(row)
    db.session.commit()
    return row


# --- the page ------------------------------------------------------------------------------------
def test_page_has_a_polling_placeholder_per_integration_and_the_feed(admin_client):
    response = admin_client.get("/dashboard")
    assert response.status_code == 200
    html = response.text
    assert 'id="integrations"' in html
    for name in NAMES:
        placeholder = re.search(f'<article id="ops-{name}"[^>]*>', html).group(0)
        assert f'hx-get="/dashboard/integrations/{name}"' in placeholder
        assert 'hx-trigger="load, every 15s"' in placeholder
    assert 'id="activity-list"' in html
    assert 'hx-get="/dashboard/activity"' in html
    assert "hx-trigger=\"every 10s [document.visibilityState === 'visible']\"" in html
    # The SACCO figure cards still load lazily, as before.
    assert html.count('hx-trigger="load"') == 4


@pytest.mark.parametrize("name", NAMES)
def test_each_card_as_partial_and_full_page(admin_client, name):
    partial = admin_client.get(f"/dashboard/integrations/{name}", headers=HX)
    assert partial.status_code == 200
    assert "<html" not in partial.text
    assert partial.text.lstrip().startswith(f'<article id="ops-{name}"')
    assert "HX-Request" in partial.headers["Vary"]
    status = re.search(f'<div id="ops-{name}-status"[^>]*>', partial.text).group(0)
    assert f'hx-get="/dashboard/integrations/{name}"' in status
    assert f'hx-trigger="{POLL}"' in status
    assert f'hx-select="#ops-{name}-status"' in status
    assert 'class="ops-help"' in partial.text and "How the colour is set" in partial.text

    page = admin_client.get(f"/dashboard/integrations/{name}")
    assert page.status_code == 200 and "<html" in page.text
    assert f'id="ops-{name}-status"' in page.text  # filled in
    others = [n for n in NAMES if n != name]
    for other in others:
        assert f'id="ops-{other}-status"' not in page.text  # still loading lazily
    assert page.text.count('hx-trigger="load, every 15s"') == len(others)


def test_card_shows_its_state_reasons_and_rules(admin_client):
    db.session.add_all(
        ApiRequestLog(method="GET", path="/api/accounting/v1/loans", status=503, duration_ms=40)
        for _ in range(25)
    )
    db.session.commit()
    html = admin_client.get("/dashboard/integrations/api", headers=HX).text
    assert 'data-state="red"' in html and "ops-red" in html
    assert "100.0% of 25 requests in 24 h were errors." in html
    for rule in ops_cards.API_RULES:
        assert str(escape(rule.text)) in html
    assert "Green when none of these applies." in html
    assert "<dd>25</dd>" in html


def test_links_to_settings_as_the_role_allows(admin_client, viewer_client, app):
    def link(client, name):
        html = client.get(f"/dashboard/integrations/{name}", headers=HX).text
        found = re.search(r'<p class="ops-link"><a href="([^"]+)"', html)
        return found.group(1) if found else None

    assert link(admin_client, "api") == "/integrations/accounting-api/"
    assert link(viewer_client, "api") is None  # viewers may not manage API keys
    assert link(viewer_client, "mpesa") == "/integrations/mpesa/"
    assert link(viewer_client, "notifications") == "/integrations/notifications/"
    failed_jobs = "logs.failed_jobs" in app.view_functions
    assert link(admin_client, "jobs") == (
        "/integrations/logs/failed-jobs" if failed_jobs else "/integrations/logs/"
    )
    assert link(viewer_client, "jobs") == "/integrations/logs/"


def test_unknown_card_is_404(admin_client):
    assert admin_client.get("/dashboard/integrations/nonsense", headers=HX).status_code == 404


@pytest.mark.parametrize("role", ["admin", "loan_officer", "accountant", "viewer"])
def test_every_role_sees_the_cards(login, role):
    client = login(role)
    for name in NAMES:
        assert client.get(f"/dashboard/integrations/{name}", headers=HX).status_code == 200
    assert client.get("/dashboard/activity", headers=HX).status_code == 200


def test_signed_out_poll_is_sent_to_sign_in(client):
    response = client.get(
        "/dashboard/integrations/api",
        headers={**HX, "HX-Current-URL": "http://localhost/dashboard"},
    )
    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == "/auth/login?next=/dashboard"


def test_a_poll_reads_cached_figures(admin_client, app):
    admin_client.get("/dashboard/integrations/api", headers=HX)
    statements = []

    def count(*args):
        statements.append(args[2])

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", count)
        try:
            admin_client.get("/dashboard/integrations/api", headers=HX)
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
    assert not [s for s in statements if "api_request_log" in s]
    assert not [s for s in statements if "integration_log" in s]  # the feed polls on its own


# --- the activity feed ---------------------------------------------------------------------------
def test_feed_lists_activity_newest_first_with_links(admin_client):
    activity("Payment received: KES 1,500.00 from DST000001.", 30, mpesa_transaction_id=7)
    activity("Notification to 2547... failed.", 20, notification_id=3)
    activity("API key created: api key 2 by Admin.", 10, api_key_id=2)
    activity("Callback processed.", 5, activity=False)  # not activity: left out
    activity("Reconciliation finished by system.", 1,
             context={"target": "mpesa_reconciliation"})  # fmt: skip
    for headers in (HX, {}):
        response = admin_client.get("/dashboard/activity", headers=headers)
        assert response.status_code == 200
        html = response.text
        assert ("<html" in html) == (headers == {})
        feed = html[html.index('id="activity-list"') :]
        order = [feed.index(text) for text in ("Reconciliation finished", "API key created",
                                                "Notification to", "Payment received")]  # fmt: skip
        assert order == sorted(order)
        assert "Callback processed." not in feed
        assert 'href="/integrations/mpesa/transactions/detail?transaction_id=7"' in feed
        assert 'href="/integrations/notifications/log/notification?notification_id=3"' in feed
        assert 'href="/integrations/accounting-api/#key-2"' in feed
        assert 'href="/integrations/mpesa/reconciliation"' in feed


def test_feed_partial_polls_itself(admin_client):
    html = admin_client.get("/dashboard/activity", headers=HX).text
    assert html.lstrip().startswith('<section id="activity"')
    assert "hx-trigger=\"every 10s [document.visibilityState === 'visible']\"" in html
    assert 'hx-select="#activity-list"' in html
    assert "Nothing has happened yet" in html


def test_feed_shows_the_newest_twenty(admin_client):
    for n in range(25):
        activity(f"Payment number {n}.", 100 - n)
    html = admin_client.get("/dashboard/activity", headers=HX).text
    assert html.count('<li id="activity-') == 20
    assert "Payment number 24." in html and "Payment number 4." not in html


def test_feed_hides_links_the_role_may_not_open(viewer_client):
    activity("API key revoked.", 1, api_key_id=2)
    activity("Payment received.", 2, mpesa_transaction_id=9)
    html = viewer_client.get("/dashboard/activity", headers=HX).text
    assert "accounting-api" not in html
    assert "transaction_id=9" in html


def test_feed_escapes_messages(admin_client):
    activity("<script>alert(1)</script> paid", 1)
    html = admin_client.get("/dashboard/activity", headers=HX).text
    assert "<script>alert(1)" not in html and "&lt;script&gt;" in html


def test_feed_shows_warnings_by_level(admin_client):
    activity("Webhook endpoint disabled.", 1, level=LogLevel.WARNING)
    assert 'class="activity-warning"' in admin_client.get("/dashboard/activity", headers=HX).text


# --- Redis down ----------------------------------------------------------------------------------
def test_everything_answers_when_redis_is_down(admin_client, dead_redis):
    assert admin_client.get("/dashboard").status_code == 200
    for name in NAMES:
        response = admin_client.get(f"/dashboard/integrations/{name}", headers=HX)
        assert response.status_code == 200, name
    redis_card = admin_client.get("/dashboard/integrations/redis", headers=HX).text
    assert 'data-state="red"' in redis_card and "Redis cannot be reached" in redis_card
    jobs_card = admin_client.get("/dashboard/integrations/jobs", headers=HX).text
    assert 'data-state="red"' in jobs_card
    database_card = admin_client.get("/dashboard/integrations/database", headers=HX).text
    assert 'data-state="green"' in database_card
    assert admin_client.get("/dashboard/activity", headers=HX).status_code == 200


def test_a_card_whose_figures_cannot_be_read_is_red(admin_client, monkeypatch):
    def unreadable():
        raise OperationalError("SELECT count(*) FROM api_request_log", {}, Exception("timeout"))

    monkeypatch.setitem(ops_cards.CARDS, "api", replace(ops_cards.CARDS["api"], compute=unreadable))
    response = admin_client.get("/dashboard/integrations/api", headers=HX)
    assert response.status_code == 200
    assert 'data-state="red"' in response.text
    assert "The figures cannot be read: OperationalError" in response.text
    assert "The figures cannot be read now." in response.text
    assert admin_client.get("/dashboard/integrations/database", headers=HX).status_code == 200
