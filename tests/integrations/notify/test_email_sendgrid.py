"""SendGrid: the client over real HTTP to a replaying loopback server (answers in SendGrid's
documented shapes, notify.md §5.1-5.2: no error bodies are published as files, so they are
written here from the reference), the signed Event Webhook against SendGrid's own test vector,
and every event sample through the parser."""

import base64
import socket
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from app.integrations.notify import sendgrid
from app.integrations.notify.base import (
    DeliveryStatus,
    EmailMessage,
    Outcome,
    WebhookRejected,
)
from app.integrations.notify.sendgrid import SendGridClient, SendGridConfig
from tests.integrations.notify.email_samples import sample, sample_bytes

SEND_PATH = "/v3/mail/send"
VECTOR = sample("sendgrid_signed_webhook_test_vector.json")
SIGNED_BODY = sample_bytes(VECTOR["body_file"])
VECTOR_TIME = int(VECTOR["X-Twilio-Email-Event-Webhook-Timestamp"])
MESSAGE = EmailMessage(
    to="Jane Member <jane@example.com>",
    subject="Loan approved",
    text="Your loan is approved.",
    html="<p>Your loan is approved.</p>",
    reference="4711",
)


def client_for(url: str, **changes) -> SendGridClient:
    settings = {
        "api_key": "SG.test-key-abcdef",
        "from_address": "Daystar SACCO <no-reply@daystar.example>",
        "base_url": url,
        "connect_timeout": 1.0,
        "read_timeout": 0.5,
        **changes,
    }
    return SendGridClient(SendGridConfig(**settings))


# --- send ---------------------------------------------------------------------------------------


def test_accepted_with_the_x_message_id_and_the_exact_request(replay):
    replay.reply(SEND_PATH, 202, headers={"X-Message-Id": "wrfRRvF7Q0GgwUo2CvDmEA"})

    result = client_for(replay.url).send(MESSAGE)

    assert result.outcome == Outcome.ACCEPTED
    assert result.provider == "sendgrid"
    assert result.provider_message_id == "wrfRRvF7Q0GgwUo2CvDmEA"
    assert result.http_status == 202
    [request] = replay.requests_to(SEND_PATH)
    assert request.method == "POST"
    assert request.headers["Authorization"] == "Bearer SG.test-key-abcdef"
    assert request.headers["Content-Type"] == "application/json"
    assert request.json == {
        "personalizations": [
            {
                "to": [{"email": "jane@example.com", "name": "Jane Member"}],
                "custom_args": {"notify_id": "4711"},
            }
        ],
        "from": {"email": "no-reply@daystar.example", "name": "Daystar SACCO"},
        "subject": "Loan approved",
        "content": [
            {"type": "text/plain", "value": "Your loan is approved."},
            {"type": "text/html", "value": "<p>Your loan is approved.</p>"},
        ],
    }


def test_sandbox_mode_is_a_json_boolean_and_its_200_is_accepted(replay):
    replay.reply(SEND_PATH, 200)
    message = EmailMessage(to="a@example.com", subject="s", text="t", reference="1")

    result = client_for(replay.url, sandbox_mode=True).send(message)

    assert result.outcome == Outcome.ACCEPTED
    assert result.provider_message_id is None
    body = replay.requests_to(SEND_PATH)[0].json
    assert body["mail_settings"] == {"sandbox_mode": {"enable": True}}
    assert body["content"] == [{"type": "text/plain", "value": "t"}]
    assert body["from"] == {"email": "no-reply@daystar.example", "name": "Daystar SACCO"}


def test_the_message_sender_overrides_the_configured_one(replay):
    replay.reply(SEND_PATH, 202)
    message = EmailMessage(
        to="a@example.com", subject="s", text="t", reference="1", from_address="ops@daystar.example"
    )
    client_for(replay.url).send(message)
    assert replay.requests_to(SEND_PATH)[0].json["from"] == {"email": "ops@daystar.example"}


def errors(*pairs):
    return {"errors": [{"field": field, "message": message} for field, message in pairs]}


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (
            400,
            errors(("personalizations.0.to.0.email", "Does not contain a valid address.")),
            Outcome.PERMANENT,
        ),
        (
            400,
            errors(("from.email", "The from email does not contain a valid address.")),
            Outcome.PROVIDER_FAULT,
        ),
        (
            400,
            errors(
                (
                    "content.0.value",
                    "The content value must be a string at least one character in length.",
                )
            ),
            Outcome.PROVIDER_FAULT,
        ),
        (
            401,
            errors((None, "The provided authorization grant is invalid, expired, or revoked")),
            Outcome.PROVIDER_FAULT,
        ),
        (
            403,
            errors((None, "The from address does not match a verified Sender Identity.")),
            Outcome.PROVIDER_FAULT,
        ),
        (403, errors((None, "Too many bad requests. Temporary block")), Outcome.TRANSIENT),
        (406, errors((None, "Missing Accept header")), Outcome.PROVIDER_FAULT),
        (413, errors((None, "Payload too large")), Outcome.PROVIDER_FAULT),
        (429, errors((None, "too many requests")), Outcome.TRANSIENT),
        (451, errors((None, "data residency")), Outcome.PROVIDER_FAULT),
        (500, errors((None, "internal error")), Outcome.TRANSIENT),
        (503, b"<html>Service Unavailable</html>", Outcome.TRANSIENT),
    ],
)
def test_error_answers_map_to_the_documented_outcomes(replay, status, body, outcome):
    replay.reply(SEND_PATH, status, body)

    result = client_for(replay.url).send(MESSAGE)

    assert result.outcome == outcome
    assert result.http_status == status
    assert result.provider_message_id is None
    assert not result.maybe_sent
    assert result.response  # the answer is kept for the notification log
    if isinstance(body, dict):
        assert body["errors"][0]["message"] in result.detail


def test_read_timeout_is_transient_and_maybe_sent(replay):
    replay.reply(SEND_PATH, hang=True)
    result = client_for(replay.url).send(MESSAGE)
    assert (result.outcome, result.maybe_sent) == (Outcome.TRANSIENT, True)


def test_dropped_connection_is_transient_and_maybe_sent(replay):
    replay.reply(SEND_PATH, drop=True)
    result = client_for(replay.url).send(MESSAGE)
    assert (result.outcome, result.maybe_sent) == (Outcome.TRANSIENT, True)


def test_refused_connection_is_transient_and_not_sent():
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    result = client_for(f"http://127.0.0.1:{port}").send(MESSAGE)
    assert (result.outcome, result.maybe_sent) == (Outcome.TRANSIENT, False)


def test_config_repr_masks_the_api_key():
    config = SendGridConfig(api_key="SG.secret-secret-secret", from_address="a@example.com")
    assert "secret" not in repr(config)
    assert "SG.***" in repr(config)
    assert config.send_url == "https://api.sendgrid.com/v3/mail/send"


def test_config_refuses_missing_values():
    with pytest.raises(ValueError, match="API key"):
        SendGridConfig(api_key="", from_address="a@example.com")
    with pytest.raises(ValueError, match="from address"):
        SendGridConfig(api_key="k", from_address="")


# --- signed event webhook -----------------------------------------------------------------------


def verify(
    public_key=VECTOR["public_key"], signature=None, timestamp=None, body=SIGNED_BODY, now=None
):
    sendgrid.verify_signature(
        public_key,
        signature or VECTOR["X-Twilio-Email-Event-Webhook-Signature"],
        timestamp or VECTOR["X-Twilio-Email-Event-Webhook-Timestamp"],
        body,
        now=VECTOR_TIME + 30 if now is None else now,
    )


def test_sendgrids_published_test_vector_verifies():
    verify()  # raises if not


def test_a_tampered_body_is_rejected():
    with pytest.raises(WebhookRejected):
        verify(body=SIGNED_BODY.replace(b"Bounced Address", b"Bounced address"))


def test_the_body_must_be_the_raw_bytes_with_its_crlf():
    with pytest.raises(WebhookRejected):
        verify(body=SIGNED_BODY.rstrip(b"\r\n"))


def test_a_signature_under_another_key_is_rejected():
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    der = other.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(WebhookRejected, match="does not match"):
        verify(public_key=base64.b64encode(der).decode())


def test_a_key_on_another_curve_is_rejected():
    other = ec.generate_private_key(ec.SECP384R1()).public_key()
    der = other.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(WebhookRejected, match="P-256"):
        verify(public_key=base64.b64encode(der).decode())


@pytest.mark.parametrize("offset", [301, 86_400, -301])
def test_a_timestamp_outside_five_minutes_is_rejected(offset):
    with pytest.raises(WebhookRejected, match="window"):
        verify(now=VECTOR_TIME + offset)


def test_a_changed_timestamp_is_rejected():
    with pytest.raises(WebhookRejected, match="does not match"):
        verify(timestamp=str(VECTOR_TIME + 1))


@pytest.mark.parametrize(
    ("public_key", "signature", "timestamp"),
    [
        ("", None, None),
        (None, "not base64!", None),
        ("bm90IGEga2V5", None, None),
        (None, None, "16001125O2"),
    ],
)
def test_malformed_inputs_are_rejected_not_raised(public_key, signature, timestamp):
    with pytest.raises(WebhookRejected):
        verify(
            public_key=VECTOR["public_key"] if public_key is None else public_key,
            signature=signature,
            timestamp=timestamp,
        )


def test_a_body_we_sign_with_a_fresh_key_verifies_now():
    # What the sandbox does with its own test key: sign timestamp + body, publish the SPKI.
    key = ec.generate_private_key(ec.SECP256R1())
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    timestamp = str(int(datetime.now(UTC).timestamp()))
    body = b'[{"event":"delivered","notify_id":"1"}]'
    signature = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    sendgrid.verify_signature(
        base64.b64encode(spki).decode(), base64.b64encode(signature).decode(), timestamp, body
    )


# --- receipts -----------------------------------------------------------------------------------


def test_delivered_event():
    [receipt] = sendgrid.parse_receipts(sample_bytes("sendgrid_event_webhook.json"))
    assert receipt.status == DeliveryStatus.DELIVERED
    assert receipt.provider == "sendgrid"
    assert receipt.provider_message_id == "wrfRRvF7Q0GgwUo2CvDmEA"
    assert receipt.event_id == "nOSv8m0eTQ-vxvwNwt3fZQ"
    assert receipt.recipient == "recipient@example.com"
    assert receipt.occurred_at == datetime.fromtimestamp(1461095250, UTC)
    assert receipt.detail.startswith("250 2.0.0 OK")
    assert receipt.permanent is False
    assert receipt.raw["tls"] == 1


def test_bounce_event_is_a_permanent_hard_bounce():
    [receipt] = sendgrid.parse_receipts(sample_bytes("sendgrid_event_bounce.json"))
    assert receipt.status == DeliveryStatus.BOUNCED
    assert receipt.permanent is True
    assert receipt.error_code == "5.1.1"
    assert receipt.provider_message_id == "Lli-03HcQ5-JLybO9fXsJg"
    assert "does not exist" in receipt.detail


def test_deferred_event_is_a_soft_failure():
    [receipt] = sendgrid.parse_receipts(sample_bytes("sendgrid_event_deferred.json"))
    assert receipt.status == DeliveryStatus.FAILED
    assert receipt.permanent is False
    assert "throttled" in receipt.detail


def test_dropped_for_a_bounced_address_is_undelivered_and_permanent():
    [receipt] = sendgrid.parse_receipts(sample_bytes("sendgrid_event_dropped.json"))
    assert receipt.status == DeliveryStatus.UNDELIVERED
    assert receipt.permanent is True
    # An old-style id with dots: everything before ".filter", as in its smtp-id.
    assert receipt.provider_message_id == "14c5d75ce93.dfd.64b469"
    assert receipt.event_id == "zmzJhfJgAfUSOW80yEbPyw=="


def test_the_signed_vector_body_parses_too():
    [receipt] = sendgrid.parse_receipts(SIGNED_BODY)
    assert (receipt.status, receipt.permanent) == (DeliveryStatus.UNDELIVERED, True)
    assert receipt.provider_message_id == "LRzXl_NHStOGhQ4kofSm_A"
    assert receipt.recipient == "hello@world.com"


def test_our_reference_comes_back_from_custom_args():
    events = [
        {
            "event": "processed",
            "email": "a@example.com",
            "notify_id": "4711",
            "sg_message_id": "abc.filter1",
            "timestamp": 1,
        },
        {"event": "open", "email": "a@example.com", "notify_id": "4711"},
        {"event": "spamreport", "email": "a@example.com", "notify_id": "4711"},
        {"event": "group_unsubscribe", "email": "a@example.com", "notify_id": "4711"},
        {"event": "bounce", "type": "blocked", "email": "a@example.com", "notify_id": "4711"},
        {"event": "dropped", "reason": "Spam Content", "email": "a@example.com"},
    ]
    receipts = sendgrid.parse_receipts(events)
    assert [(r.status, r.permanent) for r in receipts] == [
        (DeliveryStatus.QUEUED, False),
        (DeliveryStatus.COMPLAINED, True),
        (DeliveryStatus.UNSUBSCRIBED, True),
        (DeliveryStatus.UNDELIVERED, False),  # a block is not a bad address
        (DeliveryStatus.UNDELIVERED, False),  # dropped for content, not the address
    ]
    assert [r.reference for r in receipts] == ["4711", "4711", "4711", "4711", None]
    assert receipts[0].provider_message_id == "abc"


def test_a_body_that_is_not_an_array_is_a_value_error():
    with pytest.raises(ValueError):
        sendgrid.parse_receipts(b'{"event": "delivered"}')
