"""Mailgun on the sandbox: `{"message": "Queued. Thank you.", "id"}` (notify.md §6.1), errors
(§6.2), and webhooks signed with HMAC-SHA256 of timestamp + token (§6.3, §6.4)."""

import json
import re

import pytest

from tests.sandbox.notify_support import (
    Providers,
    key_tree,
    mailgun_signature,
    sample_json,
)


@pytest.fixture
def api(notify_sandbox):
    return Providers(notify_sandbox)


def test_the_signature_check_used_here_reproduces_the_references_values():
    assert (
        mailgun_signature(
            "TEST_WEBHOOK_SIGNING_KEY",
            "1534108637",
            "651869375b9df3c98fc15c4889b102119add1235c38fc92824",
        )
        == "2a75affe24846ead9e37e614a5e7643a04abf4d5b49b34d224ede9af23a00ccc"
    )
    assert (
        mailgun_signature(
            "TEST_WEBHOOK_SIGNING_KEY", "1534110422", "1234567890abcdef1234567890abcdef"
        )
        == "29f11a17b37259d4b700f02f1eaeba94f9ab8e858f6661bc500f54433322b333"
    )


def test_a_send_is_queued_with_an_angle_bracketed_id(api, notify_sandbox):
    response = api.mailgun(**{"v:notification_id": "N-42", "html": "<p>Ready</p>"})

    assert response.status_code == 200
    body = response.json()
    assert list(body) == list(sample_json("mailgun_send_response.json"))
    assert body["message"] == "Queued. Thank you."
    domain = notify_sandbox.credentials["mailgun"]["domain"]
    assert re.fullmatch(rf"<\d{{14}}\.\d\.[0-9A-F]{{16}}@{re.escape(domain)}>", body["id"])
    [message] = notify_sandbox.messages("mailgun")
    assert (message["id"], message["to"], message["html"]) == (
        body["id"],
        "member@example.com",
        "<p>Ready</p>",
    )
    assert message["metadata"] == {"notification_id": "N-42"}


def test_multipart_and_several_recipients_share_one_id(api, notify_sandbox):
    response = api.mailgun(
        to="a@example.com, Bee <b@example.com>",
        files={"attachment": ("statement.txt", b"balance 100.00", "text/plain")},
    )

    assert response.status_code == 200
    messages = notify_sandbox.messages("mailgun")
    assert [m["to"] for m in messages] == ["a@example.com", "b@example.com"]
    assert {m["id"] for m in messages} == {response.json()["id"]}


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"from": None}, 400, "'from' parameter is missing"),
        ({"to": None}, 400, "'to' parameter is missing"),
        (
            {"to": "not-an-address"},
            400,
            "'to' parameter is not a valid address. please check documentation",
        ),
        (
            {"to": "invalid@simulator.example.com"},
            400,
            "'to' parameter is not a valid address. please check documentation",
        ),
        (
            {"text": None},
            400,
            "Need at least one of 'text', 'html' or 'template' parameters specified",
        ),
        ({"domain": "mg.elsewhere.example"}, 404, "Domain not found: mg.elsewhere.example"),
    ],
)
def test_refusals_are_message_objects(api, notify_sandbox, fields, status, message):
    response = api.mailgun(**fields)

    assert response.status_code == status
    assert response.json() == {"message": message}
    assert notify_sandbox.messages("mailgun") == []


def test_a_wrong_key_is_a_plain_forbidden(api):
    response = api.mailgun(api_key="key-wrong")

    assert response.status_code == 401
    assert response.text == "Forbidden"


def test_webhooks_are_signed_and_carry_the_event_data(api, notify_sandbox, receiver):
    notify_sandbox.set_webhook("mailgun", receiver.url("callbacks/notify/mailgun"))
    sent_id = api.mailgun(**{"v:notification_id": "N-42", "o:tag": "loan"}).json()["id"]

    notify_sandbox.flush()

    [post] = receiver.on("callbacks/notify/mailgun")
    assert post.headers["Content-Type"] == "application/json"
    body = json.loads(post.raw)
    signature = body["signature"]
    assert re.fullmatch(r"\d{10}", signature["timestamp"]) and len(signature["token"]) == 50
    key = notify_sandbox.mailgun_signing_key
    assert signature["signature"] == mailgun_signature(
        key, signature["timestamp"], signature["token"]
    )
    assert signature["signature"] != mailgun_signature(
        "another-key", signature["timestamp"], signature["token"]
    )
    data = body["event-data"]
    reference = sample_json("mailgun_event_delivered_doc.json")
    assert set(data) == set(reference) - {"storage"}  # no stored copy to fetch in the sandbox
    for part in ("envelope", "flags", "delivery-status", "message"):
        assert key_tree(data[part]) == key_tree(reference[part])
    assert data["event"] == "delivered"
    assert f"<{data['message']['headers']['message-id']}>" == sent_id  # no angle brackets
    assert data["user-variables"] == {"notification_id": "N-42"}
    assert data["tags"] == ["loan"]
    assert data["delivery-status"]["code"] == 250


def test_a_bounce_is_a_permanent_failure(api, notify_sandbox, receiver):
    notify_sandbox.set_webhook("mailgun", receiver.url("hooks"))
    api.mailgun(to="bounce@simulator.example.com")

    notify_sandbox.flush()

    [post] = receiver.on("hooks")
    data = json.loads(post.raw)["event-data"]
    reference = sample_json("mailgun_webhook_failed.json")["event-data"]
    assert set(reference) <= set(data)
    assert (data["event"], data["severity"], data["reason"]) == ("failed", "permanent", "bounce")
    assert data["delivery-status"]["code"] == 550
    assert data["log-level"] == "error"


def test_a_deferred_address_fails_temporarily_then_is_delivered(api, notify_sandbox, receiver):
    notify_sandbox.set_webhook("mailgun", receiver.url("hooks"))
    api.mailgun(to="deferred@simulator.example.com")

    notify_sandbox.flush()

    events = [json.loads(p.raw)["event-data"] for p in receiver.on("hooks")]
    assert [(e["event"], e.get("severity")) for e in events] == [
        ("failed", "temporary"),
        ("delivered", None),
    ]
    assert events[0]["delivery-status"]["retry-seconds"] == 600
    # Each webhook has its own token (the one-time value receivers cache against replays).
    tokens = {json.loads(p.raw)["signature"]["token"] for p in receiver.on("hooks")}
    assert len(tokens) == 2


def test_a_complaint_follows_delivery(api, notify_sandbox, receiver):
    notify_sandbox.set_webhook("mailgun", receiver.url("hooks"))
    api.mailgun(to="complaint@simulator.example.com")

    notify_sandbox.flush()

    events = [json.loads(p.raw)["event-data"]["event"] for p in receiver.on("hooks")]
    assert events == ["delivered", "complained"]


def test_test_mode_is_flagged_on_the_events(api, notify_sandbox, receiver):
    notify_sandbox.set_webhook("mailgun", receiver.url("hooks"))
    api.mailgun(**{"o:testmode": "yes"})

    notify_sandbox.flush()

    assert json.loads(receiver.on("hooks")[0].raw)["event-data"]["flags"]["is-test-mode"] is True
