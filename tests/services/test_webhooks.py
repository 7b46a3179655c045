"""Webhook endpoints and deliveries: secrets (format, encrypted at rest, rotation), the URL safety
check, signing, fan-out, the retry schedule, redelivery and deletion."""

import base64
import json
import socket
from datetime import timedelta

import pytest
from sqlalchemy import select, text
from standardwebhooks.webhooks import Webhook

from app.extensions import db
from app.integrations import webhook_sender
from app.models import (
    AuditLog,
    DeliveryStatus,
    EndpointStatus,
    Event,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from app.models.base import utcnow
from app.services import crypto, webhooks
from app.services import webhook_deliveries as deliveries
from app.services.errors import IllegalTransition, NotFound, ValidationFailed
from app.services.events import EVENT_TYPES
from tests import factories
from tests.factories import SYSTEM
from tests.webhook_receiver import Receiver

PUBLIC_URL = "https://93.184.215.14/hooks"  # an IP literal: checked without DNS, never contacted


@pytest.fixture
def no_private_urls(app, monkeypatch):
    """Production's setting: only https URLs whose addresses are all public."""
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOW_PRIVATE_URLS", False)


def register(events=("member.created",), url="http://127.0.0.1:9/hooks", **options):
    return webhooks.register_endpoint(url, list(events), SYSTEM, **options)


# ----- secrets --------------------------------------------------------------------------------


def test_secret_is_whsec_and_24_or_more_random_bytes():
    _, secret = register()
    _, other = register()
    assert secret.startswith("whsec_") and secret != other
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) >= 24


def test_secret_is_stored_encrypted_and_never_in_the_audit_log():
    endpoint, secret = register()
    raw = db.session.execute(
        text("SELECT secret_encrypted FROM webhook_endpoints WHERE id = :id"), {"id": endpoint.id}
    ).scalar_one()
    encoded = secret.removeprefix("whsec_")
    assert secret not in raw and encoded not in raw
    assert crypto.decrypt(raw) == secret
    audit_text = json.dumps([row.details for row in db.session.scalars(select(AuditLog))])
    assert encoded not in audit_text


def test_rotation_signs_with_both_secrets_during_the_overlap_only():
    endpoint, old = register()
    endpoint, new = webhooks.rotate_secret(endpoint.id, SYSTEM)
    assert new != old
    assert webhooks.signing_secrets(endpoint) == [new, old]
    later = utcnow() + timedelta(hours=24, seconds=1)
    assert webhooks.signing_secrets(endpoint, later) == [new]
    raw = db.session.execute(
        text("SELECT previous_secret_encrypted FROM webhook_endpoints WHERE id = :id"),
        {"id": endpoint.id},
    ).scalar_one()
    assert old not in raw and crypto.decrypt(raw) == old


def test_our_signature_is_the_standard_webhooks_signature():
    _, secret = register()
    body = b'{"id":"evt_1","type":"member.created","data":{"name":"Wanjiru \xc3\xa9"}}'
    ours = webhook_sender.sign(secret, "evt_1", 1_700_000_000, body)
    from datetime import UTC, datetime

    theirs = Webhook(secret).sign(
        "evt_1", datetime.fromtimestamp(1_700_000_000, UTC), body.decode()
    )
    assert ours == theirs
    header = webhook_sender.signature_header([secret, secret], "evt_1", 1_700_000_000, body)
    assert header == f"{ours} {ours}"


# ----- validation and the URL check ------------------------------------------------------------


def test_unknown_events_are_refused_by_name():
    with pytest.raises(ValidationFailed) as refused:
        register(events=["member.created", "loan.exploded", "member.vanished"])
    message = refused.value.errors["events"]
    assert "loan.exploded" in message and "member.vanished" in message
    assert "member.created," not in message.split(";")[0]
    with pytest.raises(ValidationFailed) as empty:
        register(events=[])
    assert "events" in empty.value.errors


def test_every_outbox_event_can_be_subscribed_including_loan_defaulted():
    endpoint, _ = register(events=EVENT_TYPES)
    assert set(endpoint.events) == set(EVENT_TYPES)
    assert "loan.defaulted" in endpoint.events


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hooks",
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://93.184.215.14/hooks",  # public, but not https
        "https://127.0.0.1/hooks",
        "https://10.0.0.1/",
        "https://172.16.5.4/",
        "https://192.168.1.10/",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/",
        "https://[fe80::1]/",
        "https://[fd00::1]/",
        "https://[::ffff:127.0.0.1]/",
        "https://[2002:7f00:1::]/",  # 6to4 wrapping 127.0.0.1
        "https://0.0.0.0/",
        "https://100.64.0.1/",  # carrier-grade NAT
        "https://224.0.0.1/",
        "https://240.0.0.1/",
        "https://localhost/hooks",
        "ftp://93.184.215.14/",
        "https://user:pass@93.184.215.14/",
        "https:///nohost",
        "https://93.184.215.14:99999/",
        "not a url",
    ],
)
def test_unsafe_urls_are_refused_without_contacting_them(no_private_urls, url):
    with pytest.raises(ValidationFailed) as refused:
        register(url=url)
    assert "url" in refused.value.errors
    assert db.session.query(WebhookEndpoint).count() == 0


def test_a_public_https_url_is_accepted(no_private_urls):
    endpoint, _ = register(url=PUBLIC_URL)
    assert endpoint.url == PUBLIC_URL


def test_private_urls_are_accepted_when_allowed():
    endpoint, _ = register(url="http://127.0.0.1:9/hooks")
    assert endpoint.status == EndpointStatus.ACTIVE


def test_address_refusal_names_the_kind_of_address():
    assert "loopback" in webhook_sender.address_refusal("127.0.0.1")
    assert "link-local" in webhook_sender.address_refusal("169.254.169.254")
    assert "private" in webhook_sender.address_refusal("10.0.0.1")
    assert "loopback" in webhook_sender.address_refusal("::1")
    assert "unspecified" in webhook_sender.address_refusal("::")
    assert webhook_sender.address_refusal("93.184.215.14") is None
    assert webhook_sender.address_refusal("2606:2800:21f:cb07:6820:80da:af6b:8b2c") is None


def test_send_refuses_a_connection_that_dns_rebinding_points_at_loopback(monkeypatch):
    """The check resolves a public address, the connection resolves loopback: the connected
    socket is refused before anything is sent. (getaddrinfo is faked: no DNS server here can
    change its answer between two lookups.)"""
    real_getaddrinfo = socket.getaddrinfo
    answers = iter(["93.184.215.14"])

    def rebinding(host, port, *args, **kwargs):
        if host == "ledger.rebind.test":
            host = next(answers, "127.0.0.1")
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    with Receiver() as receiver:
        port = receiver.url.split(":")[2].split("/")[0]
        result = webhook_sender.send(
            f"https://ledger.rebind.test:{port}/hooks", "evt_1", b"{}", ["whsec_AAAA"]
        )
    assert result.status_code is None
    assert "the connection reached a non-public address" in result.error
    assert "loopback" in result.error
    assert receiver.received == []


# ----- fan-out ---------------------------------------------------------------------------------


def _member_event() -> Event:
    factories.member()
    return db.session.scalars(select(Event).where(Event.event_type == "member.created")).one()


def _fan_out(event: Event):
    return deliveries.fan_out(event.id, event.event_type, event.sequence, event.payload)


def test_fan_out_makes_one_delivery_per_subscribed_active_endpoint_and_only_once():
    subscribed, _ = register(events=["member.created", "loan.created"])
    other, _ = register(events=["loan.created"])
    disabled, _ = register(events=["member.created"])
    webhooks.disable_endpoint(disabled.id, SYSTEM)
    event = _member_event()
    first = _fan_out(event)
    second = _fan_out(event)  # a retried dispatch
    rows = db.session.scalars(select(WebhookDelivery)).all()
    assert [(d.endpoint_id, d.event_id) for d in rows] == [(subscribed.id, event.id)]
    assert [i for i, _ in first] == [i for i, _ in second] == [rows[0].id]
    message = rows[0].payload
    assert list(message) == ["id", "type", "sequence", "timestamp", "data"]
    assert message["id"] == rows[0].message_id == f"evt_{event.id}"
    assert message["type"] == "member.created" and message["sequence"] == event.sequence
    assert message["data"] == event.payload


def test_fan_out_without_subscribers_writes_nothing():
    register(events=["loan.approved"])
    assert _fan_out(_member_event()) == []
    assert db.session.query(WebhookDelivery).count() == 0


def test_fan_out_survives_a_concurrent_dispatch_that_inserted_first(monkeypatch):
    endpoint, _ = register()
    event = _member_event()
    _fan_out(event)
    # The other dispatch's row exists, but this one did not see it when it looked.
    monkeypatch.setattr(deliveries.db.session, "scalars", _hide_existing(db.session.scalars))
    waiting = _fan_out(event)
    assert len(waiting) == 1
    assert db.session.query(WebhookDelivery).count() == 1


def _hide_existing(real_scalars):
    def scalars(statement, *args, **kwargs):
        if "webhook_deliveries.endpoint_id" in str(statement) and "event_id" in str(statement):
            return iter(())
        return real_scalars(statement, *args, **kwargs)

    return scalars


# ----- schedule, redelivery, deletion --------------------------------------------------------


def test_retry_schedule_is_5s_5m_30m_2h_5h_10h_10h_then_nothing():
    waits = [deliveries.retry_delay(n) for n in range(1, 9)]
    assert waits == [
        timedelta(seconds=5),
        timedelta(minutes=5),
        timedelta(minutes=30),
        timedelta(hours=2),
        timedelta(hours=5),
        timedelta(hours=10),
        timedelta(hours=10),
        None,
    ]


def test_claims_are_exclusive():
    endpoint, _ = register()
    delivery = deliveries.send_test_event(endpoint.id, SYSTEM)
    first = deliveries.claim_attempt(delivery.id)
    assert first is not None and first.number == 1
    assert deliveries.claim_attempt(delivery.id) is None  # leased to the first job
    assert "whsec_" not in repr(first)  # a claim never shows its secrets in logs or tracebacks


def test_redeliver_refuses_an_open_delivery_and_restarts_a_finished_one():
    endpoint, _ = register()
    delivery = deliveries.send_test_event(endpoint.id, SYSTEM)
    with pytest.raises(IllegalTransition):
        deliveries.redeliver(delivery.id, SYSTEM)
    claim = deliveries.claim_attempt(delivery.id)
    deliveries.record_attempt(claim, webhook_sender.SendResult(200, 12, "ok"))
    again = deliveries.redeliver(delivery.id, SYSTEM)
    assert again.status == DeliveryStatus.PENDING and again.attempt_count == 0
    assert deliveries.claim_attempt(delivery.id).number == 2  # numbered across rounds
    with pytest.raises(NotFound):
        deliveries.redeliver(999_999, SYSTEM)


def test_delete_removes_the_endpoint_with_its_deliveries_and_attempts():
    endpoint, _ = register()
    keep, _ = register()
    delivery_id = deliveries.send_test_event(endpoint.id, SYSTEM).id
    claim = deliveries.claim_attempt(delivery_id)
    deliveries.record_attempt(claim, webhook_sender.SendResult(500, 3, "down"))
    deliveries.send_test_event(keep.id, SYSTEM)
    endpoint_id = endpoint.id
    webhooks.delete_endpoint(endpoint_id, SYSTEM)
    assert db.session.query(WebhookEndpoint).all() == [keep]
    assert db.session.query(WebhookAttempt).count() == 0
    assert [d.endpoint_id for d in db.session.query(WebhookDelivery)] == [keep.id]
    assert deliveries.claim_attempt(delivery_id) is None  # a queued job finds nothing
    with pytest.raises(NotFound):
        webhooks.get_endpoint(endpoint_id)


def test_disable_fails_open_deliveries_and_enable_restores():
    endpoint, _ = register()
    delivery = deliveries.send_test_event(endpoint.id, SYSTEM)
    webhooks.disable_endpoint(endpoint.id, SYSTEM, "Ledger migration")
    db.session.refresh(delivery)
    assert delivery.status == DeliveryStatus.FAILED
    assert (
        endpoint.status == EndpointStatus.DISABLED
        and endpoint.disabled_reason == "Ledger migration"
    )
    with pytest.raises(IllegalTransition):
        webhooks.disable_endpoint(endpoint.id, SYSTEM)
    with pytest.raises(IllegalTransition):
        deliveries.send_test_event(endpoint.id, SYSTEM)
    webhooks.enable_endpoint(endpoint.id, SYSTEM)
    assert endpoint.status == EndpointStatus.ACTIVE and endpoint.disabled_at is None
    actions = [a.action for a in db.session.scalars(select(AuditLog).order_by(AuditLog.id))]
    assert actions[-2:] == ["webhook_endpoint.disabled", "webhook_endpoint.enabled"]
