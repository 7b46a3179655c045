"""SendGrid on the sandbox: 202 with X-Message-Id (notify.md §5.1), `{"errors": [...]}`
(§5.2), and Event Webhook posts signed with ECDSA P-256 over timestamp + raw body (§5.3, §5.4)."""

import json
import re

import pytest

from tests.sandbox.notify_support import (
    Providers,
    sample_bytes,
    sample_json,
    sendgrid_body,
    sendgrid_verified,
)


@pytest.fixture
def api(notify_sandbox):
    return Providers(notify_sandbox)


def test_the_signature_check_used_here_accepts_sendgrids_published_vector():
    vector = sample_json("sendgrid_signed_webhook_test_vector.json")
    raw = sample_bytes(vector["body_file"])
    args = (
        vector["public_key"],
        vector["X-Twilio-Email-Event-Webhook-Signature"],
        vector["X-Twilio-Email-Event-Webhook-Timestamp"],
    )

    assert raw.endswith(b"\r\n")
    assert sendgrid_verified(*args, raw)
    assert not sendgrid_verified(*args, raw.rstrip())  # re-serialised JSON does not verify


def test_a_send_answers_202_with_no_body_and_a_message_id(api, notify_sandbox):
    response = api.sendgrid(sendgrid_body())

    assert response.status_code == 202
    assert response.content == b""
    assert "Content-Type" not in response.headers
    message_id = response.headers["X-Message-Id"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", message_id)
    [message] = notify_sandbox.messages("sendgrid")
    assert (message["id"], message["to"], message["subject"]) == (
        message_id,
        "member@example.com",
        "Loan approved",
    )
    assert message["html"] == "<p>Your loan was <b>approved</b>.</p>"
    assert message["metadata"] == {"notification_id": "N-42"}


def test_every_recipient_of_every_personalization_is_a_message(api, notify_sandbox):
    body = sendgrid_body()
    body["personalizations"] = [
        {
            "to": [{"email": "a@example.com"}, {"email": "b@example.com"}],
            "cc": [{"email": "c@example.com"}],
        },
        {"to": [{"email": "d@example.com"}], "subject": "Own subject"},
    ]

    api.sendgrid(body)

    messages = notify_sandbox.messages("sendgrid")
    assert [m["to"] for m in messages] == [f"{x}@example.com" for x in "abcd"]
    assert messages[-1]["subject"] == "Own subject"


def test_sandbox_mode_validates_answers_200_and_sends_no_events(api, notify_sandbox, receiver):
    notify_sandbox.set_webhook("sendgrid", receiver.url("events"))

    response = api.sendgrid(sendgrid_body(mail_settings={"sandbox_mode": {"enable": True}}))
    notify_sandbox.flush()

    assert response.status_code == 200
    assert response.content == b""
    assert receiver.on("events") == []


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"from": None}, "from", "The from object must be provided for every email send."),
        ({"subject": None}, "subject", "The subject is required."),
        (
            {"content": []},
            "content",
            "Unless a valid template_id is provided, the content parameter is required.",
        ),
        ({"personalizations": []}, "personalizations", "The personalizations field is required"),
        (
            {"mail_settings": {"sandbox_mode": {"enable": "true"}}},
            "mail_settings.sandbox_mode.enable",
            "Invalid type. Expected: boolean, given: string.",
        ),
        (
            {"custom_args": {"notification_id": 42}},
            "custom_args.notification_id",
            "Invalid type. Expected: string, given: integer.",
        ),
    ],
)
def test_bad_bodies_answer_400_with_the_errors_list(api, notify_sandbox, fields, field, message):
    response = api.sendgrid(sendgrid_body(**fields))

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert [set(e) for e in errors] == [{"message", "field", "help"}]
    assert errors[0]["field"] == field
    assert errors[0]["message"].startswith(message)
    assert notify_sandbox.messages("sendgrid") == []


def test_an_invalid_or_reserved_invalid_address_is_refused(api):
    for address in ("not-an-address", "invalid@simulator.example.com"):
        response = api.sendgrid(sendgrid_body(to=address))

        assert response.status_code == 400
        assert response.json()["errors"][0] == {
            "message": "Does not contain a valid address.",
            "field": "personalizations.0.to.0.email",
            "help": "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html#message.personalizations.to",
        }


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "authorization required"),
        ("SG.wrong", "The provided authorization grant is invalid, expired, or revoked"),
    ],
)
def test_bad_keys_answer_401(api, notify_sandbox, header, message):
    response = api.http.post(
        f"{notify_sandbox.base_url}/v3/mail/send",
        json=sendgrid_body(),
        headers={"Authorization": f"Bearer {header}"} if header else {},
        timeout=10,
    )

    assert response.status_code == 401
    assert response.json() == {"errors": [{"message": message, "field": None, "help": None}]}


def test_events_are_signed_arrays_with_the_custom_args(api, notify_sandbox, receiver):
    notify_sandbox.set_webhook("sendgrid", receiver.url("callbacks/notify/sendgrid"))
    message_id = api.sendgrid(sendgrid_body()).headers["X-Message-Id"]

    notify_sandbox.flush()

    posts = receiver.on("callbacks/notify/sendgrid")
    events = [json.loads(p.raw)[0] for p in posts]
    assert [e["event"] for e in events] == ["processed", "delivered"]
    for post in posts:
        signature = post.headers["X-Twilio-Email-Event-Webhook-Signature"]
        timestamp = post.headers["X-Twilio-Email-Event-Webhook-Timestamp"]
        assert post.headers["Content-Type"] == "application/json"
        assert post.raw.endswith(b"\r\n")
        assert sendgrid_verified(notify_sandbox.sendgrid_public_key, signature, timestamp, post.raw)
        tampered = post.raw.replace(b"member@", b"another@")
        assert not sendgrid_verified(
            notify_sandbox.sendgrid_public_key, signature, timestamp, tampered
        )
    delivered = events[1]
    sample = sample_json("sendgrid_event_webhook.json")[0]
    assert set(sample) - {"anymail_id"} <= set(delivered)
    assert delivered["notification_id"] == "N-42"  # custom args at the top level
    assert delivered["sg_message_id"].split(".")[0] == message_id
    assert delivered["email"] == "member@example.com"
    assert len({e["sg_event_id"] for e in events}) == 2


@pytest.mark.parametrize(
    ("address", "expected", "sample"),
    [
        ("bounce@simulator.example.com", ["processed", "bounce"], "sendgrid_event_bounce.json"),
        (
            "deferred@simulator.example.com",
            ["processed", "deferred", "delivered"],
            "sendgrid_event_deferred.json",
        ),
        ("complaint@simulator.example.com", ["processed", "delivered", "spamreport"], None),
    ],
)
def test_reserved_addresses_produce_the_documented_events(
    api, notify_sandbox, receiver, address, expected, sample
):
    notify_sandbox.set_webhook("sendgrid", receiver.url("events"))
    api.sendgrid(sendgrid_body(to=address))

    notify_sandbox.flush()

    events = [json.loads(p.raw)[0] for p in receiver.on("events")]
    assert [e["event"] for e in events] == expected
    if sample:
        reference = sample_json(sample)[0]
        got = next(e for e in events if e["event"] == reference["event"])
        assert set(reference) - {"anymail_id", "ip", "tls"} <= set(got)
    if "bounce" in expected:
        assert (events[1]["type"], events[1]["status"]) == ("bounce", "5.1.1")
