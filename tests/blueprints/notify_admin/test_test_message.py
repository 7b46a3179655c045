"""The test-message form (administrators only): a full page and its partials, the message queued
for the worker (never sent in the request) at high priority and exempt from the duplicate rule
only, bad input as 422, and the result panel that follows each provider attempt until the
message is final (286). End to end: the provider sandbox over real HTTP, a real RQ worker, and
the delivery reports posted back to the live server."""

import re
from datetime import datetime, timedelta
from html import unescape

import pytest
from sqlalchemy import func, select

from app.clock import NAIROBI
from app.extensions import db
from app.jobs import get_queue
from app.models import AuditLog, Notification, NotificationStatus, Priority, Role
from app.models.base import utcnow
from app.services.notifications import admin_settings, circuit, gateway, rules, test_messages
from app.services.notifications import config as notify_config
from tests.factories import SYSTEM
from tests.fixtures.mpesa import SECRET

URL = "/integrations/notifications/test-message"
HX = {"HX-Request": "true"}
AT_SECRET = "at-callback-secret-0123456789"


def is_page(response) -> bool:
    return "<html" in response.text


def status_url(notification_id: int) -> str:
    return f"{URL}/status?notification_id={notification_id}"


def form(**changes) -> dict:
    data = {"channel": "sms", "recipient": "0712 345 678", "subject": "", "provider": "",
            "message": "Testing the SMS settings."}  # fmt: skip
    return data | changes


def notifications() -> list[Notification]:
    db.session.expire_all()
    return list(db.session.scalars(select(Notification).order_by(Notification.id)))


def attempt_rows(html: str) -> list[str]:
    """Each row of the attempt list, as plain words."""
    body = re.search(r'<table class="striped attempt-list">.*?<tbody>(.*?)</tbody>', html, re.S)
    assert body, "no attempt list"
    rows = re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S)
    return [" ".join(unescape(re.sub(r"<[^>]+>", " ", row)).split()) for row in rows]


@pytest.fixture
def configured():
    """Africa's Talking and SendGrid configured (nothing listens: for tests that send nothing)."""
    admin_settings.save(
        {"africastalking.username": "daystar", "africastalking.api_key": "atsk_not_a_real_key",
         "sendgrid.api_key": "SG.not-a-real-key", "sendgrid.from_address": "no-reply@daystar.co.ke"},
        SYSTEM,
    )  # fmt: skip


@pytest.fixture
def sandbox_providers(app, live_server, notify_sandbox):
    """Africa's Talking, Twilio and SendGrid pointed at the provider sandbox, stored as the
    settings page stores them; delivery reports reach the live server."""
    creds, url = notify_sandbox.credentials, notify_sandbox.base_url
    admin_settings.save(
        {
            "sms_providers": "africastalking,twilio",
            "africastalking.username": creds["africastalking"]["username"],
            "africastalking.api_key": creds["africastalking"]["api_key"],
            "africastalking.base_url": url,
            "africastalking.callback_secret": AT_SECRET,
            "twilio.account_sid": creds["twilio"]["account_sid"],
            "twilio.auth_token": creds["twilio"]["auth_token"],
            "twilio.from_number": "+254700000999",
            "twilio.base_url": url,
            "sendgrid.api_key": creds["sendgrid"]["api_key"],
            "sendgrid.from_address": "no-reply@daystar.co.ke",
            "sendgrid.base_url": url,
            "sendgrid.webhook_public_key": notify_sandbox.sendgrid_public_key,
        },
        SYSTEM,
    )
    saved = app.config["MPESA_OVERRIDES"]
    app.config["MPESA_OVERRIDES"] = {"public_base_url": live_server, "callback_secret": SECRET}
    notify_sandbox.set_webhook(
        "africastalking", f"{live_server}/callbacks/notify/africastalking/{AT_SECRET}/status"
    )
    notify_sandbox.set_webhook("sendgrid", f"{live_server}/callbacks/notify/sendgrid/events")
    yield notify_sandbox
    app.config["MPESA_OVERRIDES"] = saved


# --- the form ---------------------------------------------------------------------------------


def test_full_page_and_partial(admin_client):
    page = admin_client.get(URL)
    assert page.status_code == 200 and is_page(page) and "HX-Request" in page.headers["Vary"]
    assert 'id="notify-test-form"' in page.text and "Send the test message" in page.text
    assert '<section id="notify-test-result" aria-live="polite"></section>' in page.text
    assert 'aria-current="page">Test message</a>' in page.text

    partial = admin_client.get(URL, headers=HX)
    assert partial.status_code == 200 and not is_page(partial)
    assert (
        partial.text.lstrip().startswith("<form")
        and 'hx-post="/integrations/notifications/test-message"' in partial.text
    )


@pytest.mark.parametrize("role", [Role.LOAN_OFFICER, Role.ACCOUNTANT, Role.VIEWER])
def test_only_administrators(login, role, configured):
    browser = login(role)
    row = test_messages.send("sms", "0712345678", "Hi", SYSTEM)
    assert browser.get(URL).status_code == 403
    assert browser.post(URL, data=form(), headers=HX).status_code == 403
    assert browser.get(status_url(row.id), headers=HX).status_code == 403
    assert len(notifications()) == 1


def test_sending_queues_a_high_priority_test_for_the_worker(admin_client, configured):
    response = admin_client.post(URL, data=form(), headers=HX)
    assert response.status_code == 200, response.text
    (row,) = notifications()
    assert (row.notification_type, row.priority, row.channel) == ("test", Priority.HIGH, "sms")
    assert (row.recipient_contact, row.status, row.provider) == ("254712345678", "pending", None)
    assert f"notify-{row.id}" in get_queue("high").job_ids  # the worker sends it, not the request

    html = response.text
    assert html.lstrip().startswith("<form") and 'value="0712 345 678"' in html  # to send again
    panel = re.search(r'<section id="notify-test-result"[^>]*>', html).group(0)
    assert 'hx-swap-oob="true"' in panel and 'hx-trigger="every 1s"' in panel
    assert f'hx-get="{status_url(row.id)}"' in panel
    assert "Queued: waiting for the worker" in html and f"Test message #{row.id} queued" in html

    entry = db.session.scalars(
        select(AuditLog).where(AuditLog.action == "notify.test_message_sent")
    ).one()
    assert (entry.actor_id, entry.target_id) == (admin_client.user.id, row.id)
    assert entry.details == {"channel": "sms", "provider": "failover order"}


def test_without_htmx_the_whole_page_comes_back_with_the_panel(admin_client, configured):
    response = admin_client.post(URL, data=form(channel="email", recipient="Wanjiru@Example.com",
                                                subject="Hello"))  # fmt: skip
    assert response.status_code == 200 and is_page(response)
    (row,) = notifications()
    assert (row.recipient_contact, row.subject) == ("Wanjiru@example.com", "Hello")
    panel = re.search(r'<section id="notify-test-result"[^>]*>', response.text).group(0)
    assert "hx-swap-oob" not in panel and 'hx-trigger="every 1s"' in panel


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"recipient": "12345"}, "recipient", "Enter a Kenyan mobile number"),
        ({"recipient": ""}, "recipient", "Enter a phone number."),
        ({"channel": "email", "recipient": "not-an-address"}, "recipient", "must have an @-sign"),
        ({"channel": "email", "recipient": ""}, "recipient", "Enter the email address."),
        ({"message": "   "}, "message", "Write the message."),
        ({"message": "x" * 10_001}, "message", "Use at most 10,000 characters."),
        ({"channel": "email", "recipient": "a@example.com", "subject": "s" * 201}, "subject",
         "Use at most 200 characters."),
        ({"provider": "sendgrid"}, "provider", "SendGrid cannot send an SMS."),
        ({"provider": "twilio"}, "provider", "Twilio is not configured: set its settings first."),
        ({"provider": "carrier-pigeon"}, "provider", "carrier-pigeon cannot send an SMS."),
        ({"channel": "fax"}, "channel", "Choose SMS or email."),
    ],
)  # fmt: skip
def test_bad_input_is_422_with_the_message_by_its_field(
    admin_client, configured, changes, field, message
):
    response = admin_client.post(URL, data=form(**changes), headers=HX)
    assert response.status_code == 422
    assert message in response.text
    tag = re.search(rf'<(input|select|textarea)[^>]*name="{field}"[^>]*>', response.text).group(0)
    assert 'aria-invalid="true"' in tag
    assert notifications() == []
    sent = select(func.count()).where(AuditLog.action == "notify.test_message_sent")
    assert db.session.scalar(sent) == 0


def test_no_configured_provider_in_the_order_is_422(admin_client):
    response = admin_client.post(URL, data=form(), headers=HX)
    assert response.status_code == 422
    assert (
        "No provider in the failover order can send an SMS: configure one first." in response.text
    )
    assert notifications() == []


def test_nul_characters_never_give_a_500(admin_client, configured):
    response = admin_client.post(URL, data=form(message="Hi\x00 there"), headers=HX)
    assert response.status_code == 200
    assert notifications()[0].message == "Hi there"


# --- the rules a test message is under --------------------------------------------------------


def test_only_the_duplicate_rule_is_lifted_and_only_for_tests(configured):
    settings = notify_config.current()
    earlier = gateway.create_for_contact("0712345678", "Same text", "sms", options={"priority": "high"})[0]  # fmt: skip
    earlier.status = NotificationStatus.SENT
    db.session.commit()
    test = test_messages.send("sms", "0712345678", "Same text", SYSTEM)
    real = gateway.create_for_contact("0712345678", "Same text", "sms", options={"priority": "high"})[0]  # fmt: skip
    assert rules.decide(test, settings).action == "send"
    assert rules.decide(real, settings).action == "skip"  # real messages keep the rule

    night = datetime(2026, 3, 2, 23, 30, tzinfo=NAIROBI)
    assert rules.decide(test, settings, night).action == "send"  # high priority: no quiet hours

    from app.models import Suppression

    db.session.add(Suppression(channel="sms", contact="254712345678", reason="stop"))
    db.session.commit()
    assert rules.decide(test, settings).action == "skip"  # the suppression list still applies


# --- the result panel -------------------------------------------------------------------------


def test_the_panel_polls_until_final_then_answers_286(admin_client, configured):
    row = test_messages.send("sms", "0712345678", "Hi", SYSTEM)
    page = admin_client.get(status_url(row.id))
    assert page.status_code == 200 and is_page(page) and 'id="notify-test-form"' in page.text
    waiting = admin_client.get(status_url(row.id), headers=HX)
    assert waiting.status_code == 200 and not is_page(waiting)
    assert 'hx-trigger="every 1s"' in waiting.text and "None yet." in waiting.text

    row.status, row.delivered_at, row.provider = (
        NotificationStatus.DELIVERED,
        utcnow(),
        "africastalking",
    )
    db.session.commit()
    done = admin_client.get(status_url(row.id), headers=HX)
    assert done.status_code == 286 and "Delivered" in done.text
    assert "hx-trigger" not in done.text.split('<div id="flash"')[0]
    assert admin_client.get(status_url(row.id)).status_code == 200  # a page load is no poll


@pytest.mark.parametrize(
    ("status", "reason", "shown"),
    [
        (NotificationStatus.FAILED, "Every provider failed 4 times: twilio: HTTP 500", "Failed: Every provider failed"),
        (NotificationStatus.SKIPPED, "The contact is on the suppression list (stop).", "Not sent: The contact is on the suppression list"),
    ],
)  # fmt: skip
def test_failed_and_skipped_are_final(admin_client, configured, status, reason, shown):
    row = test_messages.send("sms", "0712345678", "Hi", SYSTEM)
    row.status, row.skip_reason = status, reason
    db.session.commit()
    response = admin_client.get(status_url(row.id), headers=HX)
    assert response.status_code == 286 and shown in response.text


def test_the_panel_stops_asking_when_nothing_changed_for_two_minutes(admin_client, configured):
    row = test_messages.send("sms", "0712345678", "Hi", SYSTEM)
    db.session.execute(
        Notification.__table__.update()
        .where(Notification.id == row.id)
        .values(status=NotificationStatus.SENT, provider="africastalking",
                updated_at=utcnow() - timedelta(minutes=3))
    )  # fmt: skip
    db.session.commit()
    response = admin_client.get(status_url(row.id), headers=HX)
    assert response.status_code == 286
    assert "stopped asking" in response.text and "Check again" in response.text
    assert "No delivery report will reach us: set the public address" in response.text


def test_only_test_messages_have_a_panel(admin_client, configured):
    other = gateway.create_for_contact("0712345678", "A real alert", "sms")[0]
    assert admin_client.get(status_url(other.id), headers=HX).status_code == 404
    assert admin_client.get(status_url(424242)).status_code == 404
    assert admin_client.get(status_url("99999999999999999999")).status_code == 404
    assert admin_client.get(status_url("x"), headers=HX).status_code == 404
    assert admin_client.get(f"{URL}/status").status_code == 404


# --- end to end: the sandbox and a real worker ------------------------------------------------


def test_failover_shows_two_attempts_then_the_delivery(admin_client, sandbox_providers, run_jobs):
    sandbox_providers.set_failure("africastalking", "500")
    response = admin_client.post(URL, data=form(message="Failover test"), headers=HX)
    assert response.status_code == 200, response.text
    (row,) = notifications()
    assert sandbox_providers.messages() == []  # nothing was sent inside the web request

    run_jobs()
    sent = admin_client.get(status_url(row.id), headers=HX)
    assert sent.status_code == 200  # accepted; still asking until the delivery report comes
    assert "Waiting for the delivery report" in sent.text and 'hx-trigger="every 1s"' in sent.text
    first, second = attempt_rows(sent.text)
    assert first.startswith("1 Africa's Talking failed (temporary)") and "HTTP 500" in first
    assert second.startswith("2 Twilio accepted SM")
    (twilio_message,) = sandbox_providers.messages("twilio")
    assert twilio_message["body"] == "Failover test"
    assert notifications()[0].provider_message_id in second

    sandbox_providers.flush()  # Twilio's signed status callbacks reach the live server
    run_jobs()
    delivered = admin_client.get(status_url(row.id), headers=HX)
    assert delivered.status_code == 286
    assert "Delivered" in delivered.text and "Twilio" in delivered.text
    assert len(attempt_rows(delivered.text)) == 2
    assert "Delivery reports" in delivered.text and "delivered" in delivered.text


def test_a_forced_provider_alone_is_tried_even_with_its_circuit_open_and_twice(
    admin_client, sandbox_providers, run_jobs
):
    circuit.record_failure("twilio", threshold=1, window=60, cooling_off=300)
    for _ in range(2):  # the same text twice: a test is not held back as a duplicate
        response = admin_client.post(URL, data=form(provider="twilio"), headers=HX)
        assert response.status_code == 200, response.text
    run_jobs()
    rows = notifications()
    assert [(r.status, r.provider) for r in rows] == [("sent", "twilio")] * 2
    assert sandbox_providers.messages("africastalking") == []
    assert len(sandbox_providers.messages("twilio")) == 2
    assert not circuit.is_open("twilio")  # the success closed it
    (only,) = attempt_rows(admin_client.get(status_url(rows[1].id), headers=HX).text)
    assert only.startswith("1 Twilio accepted")


def test_an_email_test_through_sendgrid(admin_client, sandbox_providers, run_jobs):
    data = form(channel="email", recipient="treasurer@example.com", subject="Settings check")
    assert admin_client.post(URL, data=data, headers=HX).status_code == 200
    run_jobs()
    (row,) = notifications()
    assert (row.status, row.provider, row.subject) == ("sent", "sendgrid", "Settings check")
    sandbox_providers.flush()
    run_jobs()
    response = admin_client.get(status_url(row.id), headers=HX)
    assert response.status_code == 286 and "Delivered" in response.text
    (only,) = attempt_rows(response.text)
    assert only.startswith("1 SendGrid accepted")
