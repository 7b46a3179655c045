"""Mailgun: the client over real HTTP to a replaying loopback server (the published send answer,
and error answers in the shapes notify.md §6.2 gives), webhook signatures against the values the
reference computed with ANYMAIL's test key (Mailgun publishes no vector), replays refused through
a real Redis, and every event sample through the parser."""

import copy
import hashlib
import hmac
from datetime import UTC, datetime

import pytest

from app.integrations.notify import mailgun
from app.integrations.notify.base import DeliveryStatus, EmailMessage, Outcome, WebhookRejected
from app.integrations.notify.email_common import RedisUsedTokens
from app.integrations.notify.mailgun import MailgunClient, MailgunConfig
from tests.integrations.notify.email_samples import form_of, sample, sample_bytes

DOMAIN = "mg.daystar.example"
SEND_PATH = f"/v3/{DOMAIN}/messages"
KEY = "TEST_WEBHOOK_SIGNING_KEY"  # ANYMAIL's test key (notify.md §6.4)
DELIVERED = {
    "timestamp": "1534108637",
    "token": "651869375b9df3c98fc15c4889b102119add1235c38fc92824",
    "signature": "2a75affe24846ead9e37e614a5e7643a04abf4d5b49b34d224ede9af23a00ccc",
}
FAILED = {
    "timestamp": "1534110422",
    "token": "1234567890abcdef1234567890abcdef",
    "signature": "29f11a17b37259d4b700f02f1eaeba94f9ab8e858f6661bc500f54433322b333",
}
MESSAGE = EmailMessage(
    to="jane@example.com",
    subject="Loan approved",
    text="Your loan is approved.",
    html="<p>Your loan is approved.</p>",
    reference="4711",
)


def client_for(url: str | None, **changes) -> MailgunClient:
    settings = {
        "api_key": "key-test-abcdef",
        "domain": DOMAIN,
        "from_address": "Daystar SACCO <no-reply@mg.daystar.example>",
        "base_url": url,
        "connect_timeout": 1.0,
        "read_timeout": 0.5,
        **changes,
    }
    return MailgunClient(MailgunConfig(**settings))


# --- send ---------------------------------------------------------------------------------------


def test_the_published_success_answer_is_accepted_with_its_id(replay):
    replay.reply(SEND_PATH, 200, sample_bytes("mailgun_send_response.json"))

    result = client_for(replay.url).send(MESSAGE)

    assert result.outcome == Outcome.ACCEPTED
    assert result.provider == "mailgun"
    # Kept without angle brackets, as receipts give it (event-data.message.headers.message-id).
    assert result.provider_message_id == "20111114174239.25659.5817@samples.mailgun.org"
    assert result.detail == "Queued. Thank you."


def test_the_request_is_multipart_with_basic_auth_and_our_variable(replay):
    replay.reply(SEND_PATH, 200, sample_bytes("mailgun_send_response.json"))

    client_for(replay.url, test_mode=True).send(MESSAGE)

    [request] = replay.requests_to(SEND_PATH)
    assert request.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert request.headers["Authorization"] == "Basic YXBpOmtleS10ZXN0LWFiY2RlZg=="  # api:key-...
    assert form_of(request) == {
        "from": ["Daystar SACCO <no-reply@mg.daystar.example>"],
        "to": ["jane@example.com"],
        "subject": ["Loan approved"],
        "text": ["Your loan is approved."],
        "html": ["<p>Your loan is approved.</p>"],
        "v:notify_id": ["4711"],
        "o:testmode": ["yes"],
    }


def test_region_and_base_url():
    assert client_for(None).config.send_url == f"https://api.mailgun.net/v3/{DOMAIN}/messages"
    eu = client_for(None, region="eu").config.send_url
    assert eu == f"https://api.eu.mailgun.net/v3/{DOMAIN}/messages"
    with pytest.raises(ValueError, match="us or eu"):
        client_for(None, region="af")


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (
            400,
            {"message": "'to' parameter is not a valid address. please check documentation"},
            Outcome.PERMANENT,
        ),
        (400, {"message": "to parameter is missing"}, Outcome.PROVIDER_FAULT),
        (
            400,
            {
                "message": "Sandbox subdomains are for test purposes only. Please add your own domain or add the address to authorized recipients in Account Settings."
            },
            Outcome.PROVIDER_FAULT,
        ),
        (401, b"Forbidden", Outcome.PROVIDER_FAULT),
        (402, {"message": "Request failed"}, Outcome.PROVIDER_FAULT),
        (
            403,
            {"message": "Domain mg.daystar.example is not allowed to send large batches yet"},
            Outcome.PROVIDER_FAULT,
        ),
        (404, {"message": "Domain not found: mg.daystar.example"}, Outcome.PROVIDER_FAULT),
        (413, {"message": "request size exceeds 52.4MiB limit"}, Outcome.PROVIDER_FAULT),
        (
            429,
            {
                "message": "Domain mg.daystar.example is not allowed to send: request limit exceeded, try again after Mon, 01 Jan 2029 00:00:00 UTC"
            },
            Outcome.TRANSIENT,
        ),
        (500, {"message": "Internal Server Error"}, Outcome.TRANSIENT),
        (502, b"Bad Gateway", Outcome.TRANSIENT),
        (503, b"", Outcome.TRANSIENT),
        (504, b"Gateway Timeout", Outcome.TRANSIENT),
        (200, b"Mailgun Magnificent API", Outcome.PROVIDER_FAULT),
        (200, {"message": "Queued. Thank you."}, Outcome.PROVIDER_FAULT),
    ],
)
def test_error_answers_map_to_the_documented_outcomes(replay, status, body, outcome):
    replay.reply(SEND_PATH, status, body)

    result = client_for(replay.url).send(MESSAGE)

    assert result.outcome == outcome
    assert result.http_status == status
    assert result.provider_message_id is None
    assert result.detail


def test_404_names_the_region_as_a_likely_cause(replay):
    replay.reply(SEND_PATH, 404, {"message": "Domain not found: mg.daystar.example"})
    assert "region" in client_for(replay.url).send(MESSAGE).detail


def test_read_timeout_is_transient_and_maybe_sent(replay):
    replay.reply(SEND_PATH, hang=True)
    result = client_for(replay.url).send(MESSAGE)
    assert (result.outcome, result.maybe_sent) == (Outcome.TRANSIENT, True)


def test_config_repr_masks_the_api_key():
    text = repr(client_for(None, api_key="key-very-secret-value").config)
    assert "very-secret" not in text
    assert "key***" in text


# --- webhook signature --------------------------------------------------------------------------


@pytest.mark.parametrize("values", [DELIVERED, FAILED], ids=["delivered", "failed"])
def test_the_reference_signatures_verify_once(redis_conn, values):
    now = int(values["timestamp"]) + 10
    mailgun.verify_signature(KEY, **values, used_tokens=redis_conn, now=now)

    with pytest.raises(WebhookRejected, match="already used"):
        mailgun.verify_signature(KEY, **values, used_tokens=redis_conn, now=now + 1)


def test_used_tokens_live_in_redis_for_twice_the_window(redis_conn):
    tokens = RedisUsedTokens(redis_conn, prefix="t:")
    mailgun.verify_signature(
        KEY, **DELIVERED, used_tokens=tokens, now=int(DELIVERED["timestamp"]), max_age=60
    )
    assert 0 < redis_conn.ttl("t:" + DELIVERED["token"]) <= 120


def test_a_wrong_key_is_rejected_and_the_token_not_spent(redis_conn):
    now = int(DELIVERED["timestamp"])
    with pytest.raises(WebhookRejected, match="does not match"):
        mailgun.verify_signature("another-key", **DELIVERED, used_tokens=redis_conn, now=now)
    # A forged request must not burn the token of the genuine one that follows.
    mailgun.verify_signature(KEY, **DELIVERED, used_tokens=redis_conn, now=now)


@pytest.mark.parametrize("field", ["timestamp", "token", "signature"])
def test_any_changed_field_is_rejected(redis_conn, field):
    values = dict(DELIVERED)
    values[field] = values[field][:-1] + ("0" if values[field][-1] != "0" else "1")
    with pytest.raises(WebhookRejected):
        mailgun.verify_signature(
            KEY, **values, used_tokens=redis_conn, now=int(DELIVERED["timestamp"])
        )


@pytest.mark.parametrize("offset", [301, 3600, -301])
def test_an_old_or_future_timestamp_is_rejected(redis_conn, offset):
    with pytest.raises(WebhookRejected, match="window"):
        mailgun.verify_signature(
            KEY, **DELIVERED, used_tokens=redis_conn, now=int(DELIVERED["timestamp"]) + offset
        )


def test_missing_values_are_rejected(redis_conn):
    with pytest.raises(WebhookRejected, match="missing"):
        mailgun.verify_signature(KEY, "", "t", "s", used_tokens=redis_conn)


def test_a_fresh_webhook_signed_with_our_own_key_verifies(redis_conn):
    # What the sandbox will post: the delivered sample with a current timestamp and new token.
    payload = sample("mailgun_webhook_delivered.json")
    timestamp = str(int(datetime.now(UTC).timestamp()))
    token = "f" * 50
    payload["signature"] = {
        "timestamp": timestamp,
        "token": token,
        "signature": hmac.new(
            b"sandbox-key", (timestamp + token).encode(), hashlib.sha256
        ).hexdigest(),
    }
    event = mailgun.verify_webhook("sandbox-key", payload, used_tokens=redis_conn)
    assert event["event"] == "delivered"
    with pytest.raises(WebhookRejected, match="already used"):
        mailgun.verify_webhook("sandbox-key", payload, used_tokens=redis_conn)


def test_the_delivered_sample_verifies_once_its_placeholder_is_replaced(redis_conn):
    payload = sample("mailgun_webhook_delivered.json")
    assert payload["signature"]["signature"] == "..."  # as published: a placeholder
    with pytest.raises(WebhookRejected):
        mailgun.verify_webhook(KEY, payload, used_tokens=redis_conn, now=1534108640)
    payload["signature"]["signature"] = DELIVERED["signature"]
    event = mailgun.verify_webhook(KEY, payload, used_tokens=redis_conn, now=1534108640)
    assert event["recipient"] == "recipient@example.com"


def test_a_body_without_signature_block_is_rejected(redis_conn):
    with pytest.raises(WebhookRejected, match="signature block"):
        mailgun.verify_webhook(KEY, sample("mailgun_webhook_failed.json"), used_tokens=redis_conn)


# --- receipts -----------------------------------------------------------------------------------


def test_delivered_webhook():
    [receipt] = mailgun.parse_receipts(sample_bytes("mailgun_webhook_delivered.json"))
    assert receipt.status == DeliveryStatus.DELIVERED
    assert receipt.provider_message_id == "20180812211713.1.DF5966851B4BAA99@example.org"
    assert receipt.recipient == "recipient@example.com"
    assert receipt.event_id == DELIVERED["token"]  # unique per webhook (notify.md §8.3)
    assert receipt.error_code == "250"
    assert receipt.occurred_at == datetime.fromtimestamp(1534108637.153125, UTC)
    assert receipt.permanent is False


def test_permanent_bounce_webhook():
    [receipt] = mailgun.parse_receipts(sample_bytes("mailgun_webhook_failed.json"))
    assert (receipt.status, receipt.permanent) == (DeliveryStatus.BOUNCED, True)
    assert receipt.error_code == "550"
    assert "does not exist" in receipt.detail
    assert receipt.recipient == "invalid@example.com"


def test_temporary_failure_webhook_is_soft():
    [receipt] = mailgun.parse_receipts(sample_bytes("mailgun_webhook_failed_temporary.json"))
    assert (receipt.status, receipt.permanent) == (DeliveryStatus.FAILED, False)
    assert receipt.error_code == "498"
    assert "No MX" in receipt.detail


def test_official_event_data_samples():
    delivered = mailgun.parse_receipts(sample("mailgun_event_delivered_doc.json"))
    suppressed = mailgun.parse_receipts(sample("mailgun_event_failed_permanent_doc.json"))
    temporary = mailgun.parse_receipts(sample("mailgun_event_failed_temporary_doc.json"))
    assert [(r.status, r.permanent, r.event_id) for r in delivered + suppressed + temporary] == [
        (DeliveryStatus.DELIVERED, False, "hK7mQVt1QtqRiOfQXta4sw"),
        # suppress-bounce: not sent because the address bounced before; keep it suppressed.
        (DeliveryStatus.UNDELIVERED, True, "pl271FzxTTmGRW8Uj3dUWw"),
        (DeliveryStatus.FAILED, False, "xYrATi63Rke8EC_s7EoJeA"),
    ]
    assert suppressed[0].error_code == "605"


def test_other_events_and_our_reference():
    base = sample("mailgun_event_delivered_doc.json")

    def event(**changes):
        return {**copy.deepcopy(base), **changes}

    receipts = [
        mailgun.parse_receipts(event(event=kind, **extra))
        for kind, extra in [
            ("accepted", {"user-variables": {"notify_id": 4711}}),
            ("complained", {}),
            ("unsubscribed", {}),
            ("rejected", {}),
            ("opened", {}),
            ("failed", {"severity": "permanent", "reason": "old"}),
        ]
    ]
    assert [[(r.status, r.permanent) for r in found] for found in receipts] == [
        [(DeliveryStatus.QUEUED, False)],
        [(DeliveryStatus.COMPLAINED, True)],
        [(DeliveryStatus.UNSUBSCRIBED, True)],
        [(DeliveryStatus.UNDELIVERED, False)],
        [],
        [(DeliveryStatus.UNDELIVERED, False)],  # gave up retrying: the address may be fine
    ]
    assert receipts[0][0].reference == "4711"  # a JSON number in user-variables, as text


def test_a_body_that_is_not_an_object_is_a_value_error():
    with pytest.raises(ValueError):
        mailgun.parse_receipts(b"[]")
