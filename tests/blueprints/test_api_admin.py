"""Integrations > Accounting API: API keys (created and rotated keys shown once, revoked), webhook
endpoints (secret shown once, disable/enable, test events to a real receiver, deliveries,
attempts, redelivery), the request log browser and per-key usage; every page as a full page and
as its htmx partial, admin and accountant only."""

import json
import logging
import re
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import select

from app import clock
from app.extensions import db
from app.formatting import datetimefmt
from app.jobs.webhooks import schedule_delivery
from app.models import (
    ApiKey,
    AuditLog,
    DeliveryStatus,
    EndpointStatus,
    Role,
    WebhookDelivery,
    WebhookEndpoint,
)
from app.models.base import utcnow
from app.services import api_keys, api_log, crypto, webhooks
from app.services import webhook_deliveries as deliveries
from tests.factories import SYSTEM
from tests.webhook_receiver import Receiver

HX = {"HX-Request": "true"}
XSS = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
KEY_PATTERN = re.compile(r"dsk_live_[A-Za-z0-9_\-]{40,}")
SECRET_PATTERN = re.compile(r"whsec_[A-Za-z0-9+/=]{40,}")
BASE = "/integrations/accounting-api"


def is_page(response) -> bool:
    return "<html" in response.text


@pytest.fixture
def accountant_client(login):
    return login(Role.ACCOUNTANT)


@pytest.fixture
def key():
    key, _ = api_keys.create_key("Xero sync", ["read_loans", "read_members"], SYSTEM)
    return key


@pytest.fixture
def receiver():
    with Receiver() as server:
        yield server


def reload(model, row_id):
    db.session.expire_all()
    return db.session.get(model, row_id)


def nairobi_noon(days_ago: int = 0) -> datetime:
    """Noon in Nairobi, `days_ago` days before today: far from any day boundary."""
    day = clock.today() - timedelta(days=days_ago)
    return datetime.combine(day, time(12), clock.NAIROBI).astimezone(UTC)


def log_request(
    key_id, status=200, path="/api/accounting/v1/loans", ago=timedelta(0), ms=10, at=None
):
    assert api_log.record(
        api_log.RequestRecord(
            method="GET",
            path=path,
            query="",
            status=status,
            duration_ms=ms,
            ip="203.0.113.7",
            user_agent="ledger/1.0",
            response_size=512,
            api_key_id=key_id,
            created_at=(at or utcnow()) - ago,
        )
    )


class Captured(logging.Handler):
    """Every log record of the whole process while installed."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.fixture
def captured_logs():
    handler = Captured()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


# --- keys list --------------------------------------------------------------------------------


def test_keys_page_and_partial(accountant_client, key):
    log_request(key.id, ago=timedelta(hours=1))
    log_request(key.id, status=404, ago=timedelta(hours=23))
    log_request(key.id, ago=timedelta(hours=30))  # not in the last 24 hours

    page = accountant_client.get(f"{BASE}/")
    assert page.status_code == 200 and is_page(page)
    assert "HX-Request" in page.headers["Vary"]
    assert "Not configured yet" not in page.text
    assert 'aria-current="page">API keys' in page.text
    row = re.search(rf'<tr id="key-{key.id}">(.*?)</tr>', page.text, re.S).group(1)
    assert "Xero sync" in row and f"<code>{key.prefix}…</code>" in row
    assert "read_loans" in row and "read_members" in row
    assert "badge-active" in row and ">2</a>" in row  # two requests in the last 24 hours
    assert "never" in row  # never used, never expires
    assert "hx-confirm=" in row and "Revoke" in row and "Rotate" in row

    partial = accountant_client.get(f"{BASE}/", headers=HX)
    assert partial.status_code == 200 and not is_page(partial)
    assert partial.text.lstrip().startswith('<section id="api-keys"')


def test_last_use_time_and_address_are_shown(accountant_client, key):
    log_request(key.id)
    key = reload(ApiKey, key.id)
    page = accountant_client.get(f"{BASE}/").text
    assert datetimefmt(key.last_used_at) in page and "203.0.113.7" in page


def test_empty_list_says_so(admin_client):
    assert "No API keys yet" in admin_client.get(f"{BASE}/", headers=HX).text


# --- creating a key ---------------------------------------------------------------------------


def test_new_key_form_page_and_partial(accountant_client, key):
    page = accountant_client.get(f"{BASE}/keys/new")
    assert page.status_code == 200 and is_page(page)
    assert 'id="key-form"' in page.text and "Xero sync" in page.text  # the list stays below
    partial = accountant_client.get(f"{BASE}/keys/new", headers=HX)
    assert partial.status_code == 200 and not is_page(partial)
    assert partial.text.lstrip().startswith('<form id="key-form"')
    for permission in ("read_loans", "read_financial_summary", "manage_webhooks"):
        assert f'value="{permission}"' in partial.text
    assert 'type="checkbox"' in partial.text


def create_key_form(**overrides):
    data = {
        "name": "QuickBooks",
        "permissions": ["read_loans", "read_repayments"],
        "expires_in_days": "90",
        "rate_limit_per_minute": "120",
        "allowed_ips": "203.0.113.7, 10.0.0.0/8",
    }
    return data | overrides


def test_create_key_shows_it_once_and_keeps_only_its_hash(accountant_client, captured_logs):
    response = accountant_client.post(f"{BASE}/keys/new", data=create_key_form(), headers=HX)
    assert response.status_code == 200 and not is_page(response)
    assert response.headers["HX-Retarget"] == "#api-keys"
    assert response.headers["Cache-Control"] == "no-store"
    plaintexts = set(KEY_PATTERN.findall(response.text))
    assert len(plaintexts) == 1
    plaintext = plaintexts.pop()
    assert "will not be shown again" in response.text
    assert 'data-copy="#revealed-secret"' in response.text and ">Copy</button>" in response.text
    assert 'hx-history="false"' in response.text  # htmx keeps no copy of the page

    key = db.session.scalars(select(ApiKey)).one()
    assert key.key_hash == api_keys.hash_key(plaintext)
    assert key.permissions == ["read_loans", "read_repayments"]
    assert key.rate_limit_per_minute == 120
    assert key.allowed_ips == ["203.0.113.7/32", "10.0.0.0/8"]
    assert timedelta(days=89) < key.expires_at - utcnow() <= timedelta(days=90)
    assert key.created_by_id == accountant_client.user.id
    assert api_keys.authenticate(plaintext).id == key.id

    # Nowhere else: not in any column, not in the audit log, not in the session, not in the logs.
    row = db.session.execute(select(ApiKey.__table__)).one()
    assert all(plaintext not in str(value) for value in row)
    audit = db.session.scalars(select(AuditLog).order_by(AuditLog.id)).all()
    assert [a.action for a in audit if a.target_type == "api_key"] == ["api_key.created"]
    assert all(plaintext not in json.dumps(a.details) for a in audit)
    with accountant_client.session_transaction() as session:
        assert plaintext not in json.dumps(dict(session), default=str)
    assert all(plaintext not in line for line in captured_logs.lines)

    # A reload of any page shows the prefix only.
    for url in (f"{BASE}/", f"{BASE}/log", f"{BASE}/usage?key_id={key.id}", f"{BASE}/webhooks"):
        for headers in ({}, HX):
            reloaded = accountant_client.get(url, headers=headers)
            assert reloaded.status_code == 200, url
            assert plaintext not in reloaded.text and plaintext[9:] not in reloaded.text, url
    assert f"{key.prefix}…" in accountant_client.get(f"{BASE}/").text


def test_create_key_without_htmx_shows_the_full_page(admin_client):
    response = admin_client.post(f"{BASE}/keys/new", data=create_key_form(expires_in_days=""))
    assert response.status_code == 200 and is_page(response)
    assert len(KEY_PATTERN.findall(response.text)) == 1
    assert db.session.scalars(select(ApiKey)).one().expires_at is None


@pytest.mark.parametrize("htmx", [True, False], ids=["partial", "page"])
def test_create_key_refused_names_each_field(accountant_client, htmx):
    data = {
        "name": "",
        "expires_in_days": "soon",
        "rate_limit_per_minute": "0",
        "allowed_ips": "not-an-ip",
    }
    response = accountant_client.post(f"{BASE}/keys/new", data=data, headers=HX if htmx else {})
    assert response.status_code == 422 and is_page(response) is not htmx
    assert 'id="key-form"' in response.text and "HX-Retarget" not in response.headers
    assert "Give the key a name" in response.text
    assert "Choose at least one permission" in response.text
    assert "Expiry must be a whole number of days" in response.text
    assert "The rate limit must be a whole number" in response.text
    assert "Not an IP address or CIDR range: not-an-ip" in response.text
    assert 'aria-invalid="true"' in response.text
    assert db.session.scalars(select(ApiKey)).all() == []


def test_unknown_permission_and_odd_input_are_422_not_500(accountant_client):
    data = create_key_form(permissions=["read_loans", "drop_tables"], name="x\x00" * 60 + "y" * 50)
    response = accountant_client.post(f"{BASE}/keys/new", data=data, headers=HX)
    assert response.status_code == 422
    assert "Unknown permission(s) drop_tables" in response.text
    assert "1 to 100 characters" in response.text


# --- revoking and rotating --------------------------------------------------------------------


def test_revoke_key(accountant_client, key):
    response = accountant_client.post(f"{BASE}/keys/revoke", data={"key_id": key.id}, headers=HX)
    assert response.status_code == 200 and not is_page(response)
    row = re.search(rf'<tr id="key-{key.id}">(.*?)</tr>', response.text, re.S).group(1)
    assert "badge-revoked" in row and "Revoke" not in row and "Rotate" not in row
    assert "revoked" in response.text  # the flash, out of band
    assert reload(ApiKey, key.id).revoked_at is not None
    actions = db.session.scalars(select(AuditLog.action).order_by(AuditLog.id)).all()
    assert actions[-1] == "api_key.revoked"

    again = accountant_client.post(f"{BASE}/keys/revoke", data={"key_id": key.id}, headers=HX)
    assert again.status_code == 409 and "already revoked" in again.text


def test_revoke_without_htmx_and_with_bad_ids(admin_client, key):
    page = admin_client.post(f"{BASE}/keys/revoke", data={"key_id": str(key.id)})
    assert page.status_code == 200 and is_page(page)
    for bad in ("", "abc", "0", "99999", "99999999999999999999", "١"):
        response = admin_client.post(f"{BASE}/keys/revoke", data={"key_id": bad}, headers=HX)
        assert response.status_code == 404, bad


def test_rotate_form_page_and_partial(accountant_client, key):
    page = accountant_client.get(f"{BASE}/keys/rotate?key_id={key.id}")
    assert page.status_code == 200 and is_page(page)
    assert 'id="rotate-form"' in page.text and 'id="api-keys"' in page.text
    partial = accountant_client.get(f"{BASE}/keys/rotate?key_id={key.id}", headers=HX)
    assert partial.status_code == 200 and not is_page(partial)
    assert partial.text.lstrip().startswith('<form id="rotate-form"')
    assert "hx-confirm=" in partial.text and 'name="grace_hours"' in partial.text
    assert 'value="24"' in partial.text
    assert accountant_client.get(f"{BASE}/keys/rotate?key_id=424242").status_code == 404


def test_rotate_shows_the_new_key_once_and_when_the_old_one_stops(accountant_client):
    key, old_plaintext = api_keys.create_key("Odoo", ["read_members"], SYSTEM)
    response = accountant_client.post(
        f"{BASE}/keys/rotate", data={"key_id": key.id, "grace_hours": "6"}, headers=HX
    )
    assert response.status_code == 200 and not is_page(response)
    assert response.headers["HX-Retarget"] == "#api-keys"
    assert response.headers["Cache-Control"] == "no-store"
    new_plaintext = KEY_PATTERN.findall(response.text)
    assert len(new_plaintext) == 1 and new_plaintext[0] != old_plaintext
    old = reload(ApiKey, key.id)
    assert timedelta(hours=5, minutes=59) < old.grace_until - utcnow() <= timedelta(hours=6)
    assert f"<code>{old.prefix}…</code> keeps working until" in response.text
    assert datetimefmt(old.grace_until) in response.text
    assert "will not be shown again" in response.text

    # Both work during the grace period; the list shows the old one as rotated.
    new = api_keys.authenticate(new_plaintext[0])
    assert api_keys.authenticate(old_plaintext).id == old.id
    assert new.permissions == ["read_members"] and old.replaced_by_id == new.id
    listing = accountant_client.get(f"{BASE}/").text
    old_row = re.search(rf'<tr id="key-{old.id}">(.*?)</tr>', listing, re.S).group(1)
    assert "badge-rotated" in old_row and "Rotate" not in old_row
    assert new_plaintext[0] not in listing


def test_rotate_refusals(accountant_client, key):
    bad = accountant_client.post(
        f"{BASE}/keys/rotate", data={"key_id": key.id, "grace_hours": "-1"}, headers=HX
    )
    assert bad.status_code == 422 and bad.text.lstrip().startswith('<form id="rotate-form"')
    assert "The grace period must be a whole number of hours" in bad.text
    page = accountant_client.post(
        f"{BASE}/keys/rotate", data={"key_id": key.id, "grace_hours": "x"}
    )
    assert page.status_code == 422 and is_page(page)
    api_keys.revoke_key(key.id, SYSTEM)
    revoked = accountant_client.post(
        f"{BASE}/keys/rotate", data={"key_id": key.id, "grace_hours": "24"}, headers=HX
    )
    assert revoked.status_code == 409 and "is revoked" in revoked.text
    assert db.session.scalars(select(ApiKey)).all() == [reload(ApiKey, key.id)]


def test_key_name_is_escaped_everywhere(admin_client):
    key, _ = api_keys.create_key(XSS, ["read_loans"], SYSTEM)
    log_request(key.id)
    urls = [
        f"{BASE}/",
        f"{BASE}/keys/rotate?key_id={key.id}",
        f"{BASE}/log",
        f"{BASE}/log?key_id={key.id}",
        f"{BASE}/usage?key_id={key.id}",
    ]
    for url in urls:
        for headers in ({}, HX):
            response = admin_client.get(url, headers=headers)
            assert response.status_code == 200, url
            assert XSS not in response.text, url
            assert ESCAPED in response.text, url
    revoked = admin_client.post(f"{BASE}/keys/revoke", data={"key_id": key.id}, headers=HX)
    assert XSS not in revoked.text and ESCAPED in revoked.text


# --- webhooks ---------------------------------------------------------------------------------


def register(url="http://127.0.0.1:9/hooks", events=("loan.approved",), description=""):
    endpoint, secret = webhooks.register_endpoint(url, list(events), SYSTEM, description)
    return endpoint


def test_webhooks_page_and_partial(accountant_client):
    endpoint = register(description="Ledger <b>main</b>")
    page = accountant_client.get(f"{BASE}/webhooks")
    assert page.status_code == 200 and is_page(page)
    assert 'aria-current="page">Webhooks' in page.text
    row = re.search(rf'<tr id="endpoint-{endpoint.id}">(.*?)</tr>', page.text, re.S).group(1)
    assert endpoint.url in row and "loan.approved" in row and "badge-active" in row
    assert "Ledger &lt;b&gt;main&lt;/b&gt;" in row
    assert "Send test event" in row and "Disable" in row and "hx-confirm=" in row
    partial = accountant_client.get(f"{BASE}/webhooks", headers=HX)
    assert partial.status_code == 200 and not is_page(partial)
    assert partial.text.lstrip().startswith('<section id="webhooks"')
    new = accountant_client.get(f"{BASE}/webhooks/new", headers=HX)
    assert new.status_code == 200 and new.text.lstrip().startswith('<form id="webhook-form"')
    assert 'value="repayment.received"' in new.text
    new_page = accountant_client.get(f"{BASE}/webhooks/new")
    assert new_page.status_code == 200 and is_page(new_page) and endpoint.url in new_page.text


def test_register_webhook_shows_the_secret_once(accountant_client, receiver):
    data = {
        "url": receiver.url,
        "events": ["loan.approved", "repayment.received"],
        "description": "Main ledger",
    }
    response = accountant_client.post(f"{BASE}/webhooks/new", data=data, headers=HX)
    assert response.status_code == 200 and not is_page(response)
    assert response.headers["HX-Retarget"] == "#webhooks"
    assert response.headers["Cache-Control"] == "no-store"
    secrets_shown = SECRET_PATTERN.findall(response.text)
    assert len(secrets_shown) == 1 and "will not be shown again" in response.text
    endpoint = db.session.scalars(select(WebhookEndpoint)).one()
    assert endpoint.events == ["loan.approved", "repayment.received"]
    assert endpoint.description == "Main ledger" and endpoint.created_by_id
    assert secrets_shown[0] not in endpoint.secret_encrypted
    assert crypto.decrypt(endpoint.secret_encrypted) == secrets_shown[0]
    for headers in ({}, HX):
        assert (
            secrets_shown[0] not in accountant_client.get(f"{BASE}/webhooks", headers=headers).text
        )


@pytest.mark.parametrize("htmx", [True, False], ids=["partial", "page"])
def test_register_webhook_refused_names_each_field(accountant_client, htmx):
    data = {"url": "ftp://ledger.example", "description": "x" * 301}
    response = accountant_client.post(f"{BASE}/webhooks/new", data=data, headers=HX if htmx else {})
    assert response.status_code == 422 and is_page(response) is not htmx
    assert 'id="webhook-form"' in response.text
    assert "This URL is refused" in response.text
    assert "Choose at least one event" in response.text
    assert "at most 300 characters" in response.text
    unknown = accountant_client.post(
        f"{BASE}/webhooks/new", data={"url": "http://127.0.0.1:9/", "events": ["loan.eaten"]}
    )
    assert unknown.status_code == 422 and "Unknown event(s) loan.eaten" in unknown.text
    assert db.session.scalars(select(WebhookEndpoint)).all() == []


def test_disable_and_enable(accountant_client):
    endpoint = register()
    off = accountant_client.post(
        f"{BASE}/webhooks/disable", data={"endpoint_id": endpoint.id}, headers=HX
    )
    assert off.status_code == 200 and not is_page(off)
    assert reload(WebhookEndpoint, endpoint.id).status == EndpointStatus.DISABLED
    row = re.search(rf'<tr id="endpoint-{endpoint.id}">(.*?)</tr>', off.text, re.S).group(1)
    assert "badge-disabled" in row and "Enable" in row and "Send test event" not in row
    twice = accountant_client.post(f"{BASE}/webhooks/disable", data={"endpoint_id": endpoint.id})
    assert twice.status_code == 409 and is_page(twice)

    on = accountant_client.post(f"{BASE}/webhooks/enable", data={"endpoint_id": endpoint.id})
    assert on.status_code == 200 and is_page(on)
    assert reload(WebhookEndpoint, endpoint.id).status == EndpointStatus.ACTIVE
    missing = accountant_client.post(f"{BASE}/webhooks/enable", data={}, headers=HX)
    assert missing.status_code == 404


def test_rotate_secret_and_delete(accountant_client):
    endpoint = register()
    old_secret = crypto.decrypt(endpoint.secret_encrypted)
    response = accountant_client.post(
        f"{BASE}/webhooks/rotate-secret", data={"endpoint_id": endpoint.id}, headers=HX
    )
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    shown = SECRET_PATTERN.findall(response.text)
    assert len(shown) == 1 and shown[0] != old_secret
    endpoint = reload(WebhookEndpoint, endpoint.id)
    assert webhooks.signing_secrets(endpoint) == [shown[0], old_secret]
    assert "The old secret keeps signing until" in response.text
    assert datetimefmt(endpoint.previous_secret_until) in response.text

    deleted = accountant_client.post(
        f"{BASE}/webhooks/delete", data={"endpoint_id": endpoint.id}, headers=HX
    )
    assert deleted.status_code == 200 and "No webhook endpoints yet" in deleted.text
    assert db.session.scalars(select(WebhookEndpoint)).all() == []


def test_test_event_reaches_the_receiver(accountant_client, receiver, run_jobs):
    endpoint = register(receiver.url)
    response = accountant_client.post(
        f"{BASE}/webhooks/test", data={"endpoint_id": endpoint.id}, headers=HX
    )
    assert response.status_code == 200 and "A test event was queued" in response.text
    delivery = db.session.scalars(select(WebhookDelivery)).one()
    assert delivery.event_type == deliveries.TEST_EVENT and delivery.status == "pending"

    run_jobs()
    assert len(receiver.received) == 1
    sent = receiver.received[0]
    assert json.loads(sent.body)["type"] == "webhook.test"
    assert sent.headers["Webhook-Signature"].startswith("v1,")
    assert reload(WebhookDelivery, delivery.id).status == DeliveryStatus.SUCCEEDED

    listing = accountant_client.get(f"{BASE}/webhooks/deliveries?endpoint_id={endpoint.id}")
    assert listing.status_code == 200 and is_page(listing)
    row = re.search(rf'<tr id="delivery-{delivery.id}">(.*?)</tr>', listing.text, re.S).group(1)
    assert "webhook.test" in row and "badge-succeeded" in row and ">204<" in row
    assert "Redeliver" not in row


def test_a_disabled_endpoint_gets_no_test_event(accountant_client):
    endpoint = register()
    webhooks.disable_endpoint(endpoint.id, SYSTEM)
    response = accountant_client.post(
        f"{BASE}/webhooks/test", data={"endpoint_id": endpoint.id}, headers=HX
    )
    assert response.status_code == 409 and "enable it before" in response.text
    assert db.session.scalars(select(WebhookDelivery)).all() == []


def test_failed_delivery_attempts_are_shown_escaped_and_can_be_redelivered(
    accountant_client, receiver, run_jobs
):
    endpoint = register(receiver.url)
    receiver.status = 410
    receiver.response_body = (XSS + "x" * 2000).encode()
    delivery = deliveries.send_test_event(endpoint.id, SYSTEM)
    schedule_delivery(delivery.id, delivery.next_attempt_at)
    run_jobs()
    assert reload(WebhookDelivery, delivery.id).status == DeliveryStatus.FAILED
    assert reload(WebhookEndpoint, endpoint.id).status == EndpointStatus.DISABLED

    url = f"{BASE}/webhooks/deliveries?endpoint_id={endpoint.id}"
    partial = accountant_client.get(url, headers=HX)
    assert partial.status_code == 200 and not is_page(partial)
    assert partial.text.lstrip().startswith('<section id="deliveries"')
    row = re.search(rf'<tr id="delivery-{delivery.id}">(.*?)</tr>', partial.text, re.S).group(1)
    assert "badge-failed" in row and ">410<" in row and ">1<" in row
    assert "Redeliver" not in row  # the endpoint is disabled: enable it first

    attempts_url = f"{BASE}/webhooks/attempts?delivery_id={delivery.id}"
    for headers in (HX, {}):
        attempts = accountant_client.get(attempts_url, headers=headers)
        assert attempts.status_code == 200 and is_page(attempts) is not bool(headers)
        assert XSS not in attempts.text and ESCAPED in attempts.text
        assert "x" * 990 in attempts.text and "x" * 1024 not in attempts.text  # first 1 KB
        assert ">410<" in attempts.text and " ms<" in attempts.text
    assert (
        accountant_client.get(attempts_url, headers=HX)
        .text.lstrip()
        .startswith(f'<div id="attempts-{delivery.id}"')
    )

    webhooks.enable_endpoint(endpoint.id, SYSTEM)
    row = re.search(
        rf'<tr id="delivery-{delivery.id}">(.*?)</tr>',
        accountant_client.get(url).text,
        re.S,
    ).group(1)
    assert "Redeliver" in row and "hx-confirm=" in row

    receiver.status, receiver.response_body = 200, b"ok"
    again = accountant_client.post(
        f"{BASE}/webhooks/redeliver", data={"delivery_id": delivery.id}, headers=HX
    )
    assert again.status_code == 200 and again.text.lstrip().startswith('<section id="deliveries"')
    assert reload(WebhookDelivery, delivery.id).status == DeliveryStatus.PENDING
    run_jobs()
    delivery = reload(WebhookDelivery, delivery.id)
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert [a.status_code for a in delivery.attempts] == [410, 200]
    assert len(receiver.received) == 2
    assert receiver.received[0].headers["Webhook-Id"] == receiver.received[1].headers["Webhook-Id"]

    # A delivery that is still open cannot be redelivered.
    open_one = deliveries.send_test_event(endpoint.id, SYSTEM)
    refused = accountant_client.post(
        f"{BASE}/webhooks/redeliver", data={"delivery_id": open_one.id}, headers=HX
    )
    assert refused.status_code == 409 and "still being attempted" in refused.text


def test_deliveries_filter_and_bad_ids(accountant_client):
    endpoint = register()
    deliveries.send_test_event(endpoint.id, SYSTEM)
    base = f"{BASE}/webhooks/deliveries?endpoint_id={endpoint.id}"
    assert "webhook.test" in accountant_client.get(f"{base}&status=pending").text
    assert "No failed deliveries" in accountant_client.get(f"{base}&status=failed").text
    assert accountant_client.get(f"{base}&status=lost").status_code == 422
    for bad in ("", "abc", "424242", "9" * 30):
        url = f"{BASE}/webhooks/deliveries?endpoint_id={bad}"
        assert accountant_client.get(url).status_code == 404, bad
        url = f"{BASE}/webhooks/attempts?delivery_id={bad}"
        assert accountant_client.get(url).status_code == 404, bad


# --- the request log --------------------------------------------------------------------------


@pytest.fixture
def logged(key):
    """Two keys' requests: 30 loans reads (200) by `key` today; 3 errors by the other, one of
    them three days ago."""
    other, _ = api_keys.create_key("Sage", ["read_members"], SYSTEM)
    noon = nairobi_noon()
    for n in range(30):
        log_request(key.id, at=noon, ago=timedelta(minutes=n))
    log_request(other.id, status=404, path="/api/accounting/v1/members/9", at=noon)
    log_request(other.id, status=500, path="/api/accounting/v1/members", at=noon)
    log_request(
        other.id, status=422, path="/wp-json/daystar-accounting/v1/members", at=nairobi_noon(3)
    )
    return key, other


def log_rows(html: str) -> int:
    return html.count('<td class="num"><span class="http-status')


def test_log_page_and_partial(accountant_client, logged):
    page = accountant_client.get(f"{BASE}/log")
    assert page.status_code == 200 and is_page(page)
    assert 'id="log-filters"' in page.text and 'aria-current="page">Request log' in page.text
    assert log_rows(page.text) == 33 and "Xero sync" in page.text and "Sage" in page.text
    partial = accountant_client.get(f"{BASE}/log", headers=HX)
    assert partial.status_code == 200 and not is_page(partial)
    assert (
        partial.text.lstrip().startswith('<div id="log-results"') and log_rows(partial.text) == 33
    )


def test_log_filters(accountant_client, logged):
    key, other = logged

    def rows(query: str) -> int:
        response = accountant_client.get(f"{BASE}/log?{query}", headers=HX)
        assert response.status_code == 200, response.text
        return log_rows(response.text)

    assert rows(f"key_id={other.id}") == 3
    assert rows("status=4xx") == 2
    assert rows("status=5xx") == 1
    assert rows("status=404") == 1
    assert rows("status=error") == 3
    assert rows("path=members") == 3
    assert rows("path=wp-json") == 1
    assert rows(f"key_id={other.id}&status=4xx&path=members/9") == 1
    today = clock.today()
    assert rows(f"date_to={today - timedelta(days=1)}") == 1
    assert rows(f"date_from={today}") == 32
    assert rows(f"date_from={today}&date_to={today}&key_id={other.id}") == 2
    assert rows(f"date_from={today - timedelta(days=3)}&date_to={today - timedelta(days=3)}") == 1
    assert rows(f"date_from={today - timedelta(days=2)}&date_to={today - timedelta(days=1)}") == 0
    assert rows("path=nothing-like-this") == 0
    assert "No requests match these filters" in accountant_client.get(f"{BASE}/log?path=zz").text


def test_log_paging(accountant_client, logged):
    first = accountant_client.get(f"{BASE}/log?per_page=25", headers=HX)
    assert log_rows(first.text) == 25 and "Page 1 of 2" in first.text
    assert 'hx-get="/integrations/accounting-api/log?page=2&amp;per_page=25"' in first.text
    second = accountant_client.get(f"{BASE}/log?page=2&per_page=25", headers=HX)
    assert log_rows(second.text) == 8 and "Page 2 of 2" in second.text
    assert "← Previous" in second.text and "Next →" not in second.text
    beyond = accountant_client.get(f"{BASE}/log?page=99999999999&per_page=25", headers=HX)
    assert beyond.status_code == 200 and log_rows(beyond.text) == 0


@pytest.mark.parametrize(
    "query, message",
    [
        ("status=abc", "Give an HTTP status (404), a class (4xx) or &#39;error&#39;."),
        ("status=700", "Give an HTTP status"),
        ("date_from=2026-13-01", "Write the date as YYYY-MM-DD."),
        ("date_from=2026-02-01&date_to=2026-01-01", "The end date is before the start date."),
        ("per_page=7", "Choose 25, 50, 100 or 200 per page."),
        ("key_id=abc", "Give a whole number"),
    ],
)
def test_bad_log_filters_are_422(accountant_client, logged, query, message):
    for headers in (HX, {}):
        response = accountant_client.get(f"{BASE}/log?{query}", headers=headers)
        assert response.status_code == 422, query
        assert message in response.text and "These filters cannot be used" in response.text
        assert is_page(response) is not bool(headers)


# --- usage ------------------------------------------------------------------------------------


def chart_data(html: str) -> dict:
    found = re.search(r'<script type="application/json" id="usage-data-\d+">(.*?)</script>', html)
    return json.loads(found.group(1))


def test_usage_figures_and_chart_data(accountant_client, key):
    noon = nairobi_noon()
    for n in range(20):
        status = 500 if n < 2 else 404 if n < 5 else 200
        log_request(key.id, status=status, ms=(n + 1) * 10, at=noon, ago=timedelta(minutes=n))
    log_request(key.id, at=nairobi_noon(2), ms=5)
    log_request(key.id, at=nairobi_noon(30))  # before the 30 days shown

    page = accountant_client.get(f"{BASE}/usage?key_id={key.id}")
    assert page.status_code == 200 and is_page(page)
    partial = accountant_client.get(f"{BASE}/usage?key_id={key.id}", headers=HX)
    assert partial.status_code == 200 and not is_page(partial)
    assert partial.text.lstrip().startswith('<section id="key-usage"')
    text = partial.text
    assert '<div class="figure">21</div><small>requests in 30 days' in text
    assert '<div class="figure">23.8%</div>' in text  # 5 errors of 21
    assert "5 errors, 2 of them 5xx" in text
    assert '<div class="figure">190 ms</div>' in text  # nearest-rank p95 of 5, 10 ... 200
    assert 'data-chart-src="/static/vendor/chart-4.6.1.umd.min.js"' in text
    chart = chart_data(text)
    assert len(chart["labels"]) == len(chart["requests"]) == len(chart["errors"]) == 30
    assert chart["labels"][-1] == clock.today().isoformat()
    assert chart["requests"][-3:] == [1, 0, 20] and sum(chart["requests"]) == 21
    assert chart["errors"][-3:] == [0, 0, 5] and sum(chart["errors"]) == 5
    week = accountant_client.get(f"{BASE}/usage?key_id={key.id}&days=7", headers=HX).text
    assert len(chart_data(week)["labels"]) == 7 and "requests in 7 days" in week
    odd = accountant_client.get(f"{BASE}/usage?key_id={key.id}&days=9999", headers=HX)
    assert odd.status_code == 200 and "requests in 30 days" in odd.text


def test_usage_of_an_unused_key_and_bad_ids(accountant_client, key):
    response = accountant_client.get(f"{BASE}/usage?key_id={key.id}", headers=HX)
    assert response.status_code == 200
    assert '<div class="figure">0</div>' in response.text and "0.0%" in response.text
    assert '<div class="figure">—</div>' in response.text  # no p95 without requests
    for bad in ("", "x", "0", "424242", "9" * 30):
        assert accountant_client.get(f"{BASE}/usage?key_id={bad}").status_code == 404, bad


def test_log_filtered_by_key_shows_its_usage(accountant_client, logged):
    key, _ = logged
    response = accountant_client.get(f"{BASE}/log?key_id={key.id}", headers=HX)
    assert 'id="key-usage"' in response.text and "requests in 30 days" in response.text
    assert 'id="key-usage"' not in accountant_client.get(f"{BASE}/log", headers=HX).text


def test_chart_data_is_escaped(accountant_client):
    key, _ = api_keys.create_key("</script><script>alert(1)</script>", ["read_loans"], SYSTEM)
    text = accountant_client.get(f"{BASE}/usage?key_id={key.id}", headers=HX).text
    assert "</script><script>" not in text


# --- roles ------------------------------------------------------------------------------------


ROUTES = [
    ("GET", "/"),
    ("GET", "/keys/new"),
    ("POST", "/keys/new"),
    ("GET", "/keys/rotate?key_id={key}"),
    ("POST", "/keys/rotate"),
    ("POST", "/keys/revoke"),
    ("GET", "/webhooks"),
    ("GET", "/webhooks/new"),
    ("POST", "/webhooks/new"),
    ("POST", "/webhooks/disable"),
    ("POST", "/webhooks/enable"),
    ("POST", "/webhooks/rotate-secret"),
    ("POST", "/webhooks/delete"),
    ("POST", "/webhooks/test"),
    ("GET", "/webhooks/deliveries?endpoint_id={endpoint}"),
    ("GET", "/webhooks/attempts?delivery_id={delivery}"),
    ("POST", "/webhooks/redeliver"),
    ("GET", "/log"),
    ("GET", "/usage?key_id={key}"),
]


def test_every_route_is_listed_here(app):
    rules = {
        (method, rule.rule.removeprefix(BASE))
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("api_admin.")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert rules == {(method, path.split("?")[0]) for method, path in ROUTES}


@pytest.mark.parametrize("role", [Role.LOAN_OFFICER, Role.VIEWER])
def test_loan_officers_and_viewers_are_refused(login, key, role):
    endpoint = register()
    delivery = deliveries.send_test_event(endpoint.id, SYSTEM)
    ids = {"key": key.id, "endpoint": endpoint.id, "delivery": delivery.id}
    client = login(role)
    data = {"key_id": key.id, "endpoint_id": endpoint.id, "delivery_id": delivery.id, "name": "x"}
    for method, path in ROUTES:
        url = BASE + path.format(**ids)
        for headers in ({}, HX):
            response = client.open(url, method=method, data=data, headers=headers)
            assert response.status_code == 403, (method, url)
            assert KEY_PATTERN.search(response.text) is None
    assert reload(ApiKey, key.id).revoked_at is None
    assert reload(WebhookEndpoint, endpoint.id).status == EndpointStatus.ACTIVE
    assert db.session.scalars(select(ApiKey)).all() == [reload(ApiKey, key.id)]


@pytest.mark.parametrize("role", [Role.ADMIN, Role.ACCOUNTANT])
def test_admins_and_accountants_may_use_every_page(login, key, role):
    endpoint = register()
    delivery = deliveries.send_test_event(endpoint.id, SYSTEM)
    ids = {"key": key.id, "endpoint": endpoint.id, "delivery": delivery.id}
    client = login(role)
    for method, path in ROUTES:
        if method == "GET":
            url = BASE + path.format(**ids)
            assert client.get(url).status_code == 200, url
