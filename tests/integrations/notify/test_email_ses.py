"""Amazon SES: the hand-made Signature Version 4 against AWS's published signature test suite
(aws-sig-v4-test-suite, 2015-08-30 vectors), the SESv2 SendEmail client over real HTTP to a
replaying loopback server (success and the REST-JSON errors of the SESv2 model, written here in
AWS's documented shape: no error bodies are published as samples), and every SES notification
sample through the parser."""

import hashlib
import hmac
import json
import socket
from datetime import UTC, datetime

import pytest

from app.integrations.notify import ses
from app.integrations.notify.base import DeliveryStatus, EmailMessage, Outcome
from app.integrations.notify.ses import SesClient, SesConfig, sigv4_headers
from tests.integrations.notify.email_samples import sample, sample_bytes

SEND_PATH = "/v2/email/outbound-emails"
SUITE_TIME = datetime(2015, 8, 30, 12, 36, tzinfo=UTC)
SUITE = {
    "access_key_id": "AKIDEXAMPLE",
    "secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    "region": "us-east-1",
    "service": "service",
    "now": SUITE_TIME,
}
SCOPE = "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request"
FIXED_TIME = datetime(2026, 11, 27, 9, 30, 5, tzinfo=UTC)
MESSAGE = EmailMessage(
    to="jane@example.com",
    subject="Loan approved",
    text="Your loan is approved.",
    html="<p>Your loan is approved.</p>",
    reference="4711",
)


# --- Signature Version 4 ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "method", "url", "headers", "body", "signed", "signature"),
    [
        (
            "get-vanilla",
            "GET",
            "https://example.amazonaws.com/",
            {},
            b"",
            "host;x-amz-date",
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        ),
        (
            "get-vanilla-query-order-key-case",
            "GET",
            "https://example.amazonaws.com/?Param2=value2&Param1=value1",
            {},
            b"",
            "host;x-amz-date",
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        ),
        (
            "post-vanilla",
            "POST",
            "https://example.amazonaws.com/",
            {},
            b"",
            "host;x-amz-date",
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
        ),
        (
            "post-x-www-form-urlencoded",
            "POST",
            "https://example.amazonaws.com/",
            {"Content-Type": "application/x-www-form-urlencoded"},
            b"Param1=value1",
            "content-type;host;x-amz-date",
            "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
        ),
    ],
)
def test_aws_signature_test_suite(name, method, url, headers, body, signed, signature):
    result = sigv4_headers(method, url, body, headers=headers, **SUITE)
    assert result["Authorization"] == (
        f"AWS4-HMAC-SHA256 Credential={SCOPE}, SignedHeaders={signed}, Signature={signature}"
    ), name
    assert result["X-Amz-Date"] == "20150830T123600Z"
    assert result["Host"] == "example.amazonaws.com"


def test_the_derived_signing_key_matches_the_documented_example():
    # AWS General Reference, "Examples of how to derive a signing key" (secret, 20120215,
    # us-east-1, iam).
    key = ses.signing_key(
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1", "iam"
    )
    assert key.hex() == "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"


def test_a_session_token_is_sent_and_signed():
    result = sigv4_headers(
        "POST",
        "https://email.eu-west-1.amazonaws.com/v2/email/outbound-emails",
        b"{}",
        headers={"Content-Type": "application/json"},
        session_token="token-1",
        **{**SUITE, "service": "ses"},
    )
    assert result["X-Amz-Security-Token"] == "token-1"
    assert (
        "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token,"
        in result["Authorization"]
    )


# --- send ---------------------------------------------------------------------------------------


def client_for(url: str | None, **changes) -> SesClient:
    settings = {
        "access_key_id": "AKIATESTEXAMPLE0001",
        "secret_access_key": "test-secret-access-key",
        "region": "eu-west-1",
        "from_address": "Daystar SACCO <no-reply@daystar.example>",
        "base_url": url,
        "connect_timeout": 1.0,
        "read_timeout": 0.5,
        **changes,
    }
    return SesClient(SesConfig(**settings), clock=lambda: FIXED_TIME)


def recompute_signature(request, secret: str, region: str) -> str:
    """The signature a server holding the secret computes from what it received (an independent
    implementation of the canonical request, for the request the client really sent)."""
    names = ["content-type", "host", "x-amz-date"]
    lower = {k.lower(): v for k, v in request.headers.items()}
    canonical = "\n".join(
        [
            "POST",
            request.path,
            "",
            "".join(f"{name}:{lower[name]}\n" for name in names),
            ";".join(names),
            hashlib.sha256(request.body).hexdigest(),
        ]
    )
    date = lower["x-amz-date"]
    scope = f"{date[:8]}/{region}/ses/aws4_request"
    to_sign = f"AWS4-HMAC-SHA256\n{date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    key = f"AWS4{secret}".encode()
    for part in (date[:8], region, "ses", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def test_accepted_with_the_message_id_and_the_exact_signed_request(replay):
    replay.reply(SEND_PATH, 200, {"MessageId": "0102018f-ses-message-id-000000"})

    result = client_for(replay.url, configuration_set="daystar-events").send(MESSAGE)

    assert result.outcome == Outcome.ACCEPTED
    assert result.provider == "ses"
    assert result.provider_message_id == "0102018f-ses-message-id-000000"
    [request] = replay.requests_to(SEND_PATH)
    assert request.json == {
        "FromEmailAddress": "Daystar SACCO <no-reply@daystar.example>",
        "Destination": {"ToAddresses": ["jane@example.com"]},
        "Content": {
            "Simple": {
                "Subject": {"Data": "Loan approved", "Charset": "UTF-8"},
                "Body": {
                    "Text": {"Data": "Your loan is approved.", "Charset": "UTF-8"},
                    "Html": {"Data": "<p>Your loan is approved.</p>", "Charset": "UTF-8"},
                },
            }
        },
        "EmailTags": [{"Name": "notify_id", "Value": "4711"}],
        "ConfigurationSetName": "daystar-events",
    }
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Amz-Date"] == "20261127T093005Z"
    assert request.headers["Host"] == replay.url.removeprefix("http://")
    authorization = request.headers["Authorization"]
    assert authorization.startswith(
        "AWS4-HMAC-SHA256 Credential=AKIATESTEXAMPLE0001/20261127/eu-west-1/ses/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date, Signature="
    )
    expected = recompute_signature(request, "test-secret-access-key", "eu-west-1")
    assert authorization.endswith(f"Signature={expected}")


def test_production_url_comes_from_the_region():
    config = client_for(None).config
    assert config.send_url == "https://email.eu-west-1.amazonaws.com/v2/email/outbound-emails"


def test_a_reference_that_cannot_be_a_tag_is_left_out_not_fatal():
    body = client_for(None).request_body(
        EmailMessage(to="a@example.com", subject="s", text="t", reference="id with spaces")
    )
    assert "EmailTags" not in body
    assert "Html" not in body["Content"]["Simple"]["Body"]


def aws_error(code: str, message: str, status: int, in_header: bool = True):
    """A REST-JSON error as SESv2 answers it: the code in x-amzn-ErrorType (or the body)."""
    if in_header:
        return (
            status,
            {"message": message},
            {"x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/com.amazonaws.sesv2/"},
        )
    return status, {"__type": f"com.amazonaws.sesv2#{code}", "message": message}, {}


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (
            aws_error("MessageRejected", "Email address is on the suppression list.", 400),
            Outcome.PERMANENT,
        ),
        (
            aws_error(
                "MessageRejected",
                "Email address is not verified. The following identities failed the check in region EU-WEST-1: no-reply@daystar.example",
                400,
            ),
            Outcome.PROVIDER_FAULT,
        ),
        (
            aws_error("AccountSuspendedException", "Your account is suspended.", 400),
            Outcome.PROVIDER_FAULT,
        ),
        (
            aws_error(
                "SendingPausedException",
                "Sending is paused for this account.",
                400,
                in_header=False,
            ),
            Outcome.PROVIDER_FAULT,
        ),
        (
            aws_error("MailFromDomainNotVerifiedException", "MAIL FROM domain not verified.", 400),
            Outcome.PROVIDER_FAULT,
        ),
        (
            aws_error("NotFoundException", "Configuration set does not exist.", 404),
            Outcome.PROVIDER_FAULT,
        ),
        (aws_error("TooManyRequestsException", "Too many requests.", 429), Outcome.TRANSIENT),
        (
            aws_error("LimitExceededException", "Daily message quota exceeded.", 400),
            Outcome.TRANSIENT,
        ),
        (
            aws_error(
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
                403,
            ),
            Outcome.PROVIDER_FAULT,
        ),
        (
            aws_error(
                "InvalidSignatureException",
                "The request signature we calculated does not match.",
                403,
                in_header=False,
            ),
            Outcome.PROVIDER_FAULT,
        ),
        (aws_error("BadRequestException", "Missing final '@domain'", 400), Outcome.PERMANENT),
        (aws_error("BadRequestException", "Template data is invalid", 400), Outcome.PROVIDER_FAULT),
        (aws_error("InternalFailure", "Internal failure.", 500), Outcome.TRANSIENT),
        ((503, b"Service Unavailable", {}), Outcome.TRANSIENT),
        ((200, {"Unexpected": True}, {}), Outcome.PROVIDER_FAULT),
    ],
)
def test_error_answers_map_to_the_documented_outcomes(replay, answer, outcome):
    status, body, headers = answer
    replay.reply(SEND_PATH, status, body, headers=headers)

    result = client_for(replay.url).send(MESSAGE)

    assert result.outcome == outcome
    assert result.http_status == status
    assert result.provider_message_id is None
    if isinstance(body, dict) and "message" in body:
        assert body["message"] in result.detail


def test_read_timeout_is_transient_and_maybe_sent(replay):
    replay.reply(SEND_PATH, hang=True)
    result = client_for(replay.url).send(MESSAGE)
    assert (result.outcome, result.maybe_sent) == (Outcome.TRANSIENT, True)


def test_refused_connection_is_transient_and_not_sent():
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    result = client_for(f"http://127.0.0.1:{port}").send(MESSAGE)
    assert (result.outcome, result.maybe_sent) == (Outcome.TRANSIENT, False)


def test_config_repr_masks_the_secrets():
    text = repr(client_for(None, session_token="session-token-value").config)
    assert "test-secret-access-key" not in text
    assert "session-token-value" not in text
    assert "AKIA***" in text


def test_config_refuses_a_bad_region():
    with pytest.raises(ValueError, match="region"):
        client_for(None, region="eu west")


# --- notifications ------------------------------------------------------------------------------


def test_delivery_through_sns():
    [receipt] = ses.parse_receipts(sample_bytes("ses_sns_delivery.json"))
    assert receipt.status == DeliveryStatus.DELIVERED
    assert receipt.provider == "ses"
    assert (
        receipt.provider_message_id
        == "0000014644fe5ef6-9a483358-9170-4cb4-a269-f5dcdf415321-000000"
    )
    assert receipt.recipient == "jane@example.com"
    assert receipt.detail == "250 ok:  Message 64111812 accepted"
    assert receipt.event_id == "19ba9823-d7f2-53c1-860e-cb10e0d13dfc:jane@example.com"
    assert receipt.occurred_at == datetime(2016, 1, 27, 14, 59, 38, 237000, tzinfo=UTC)


def test_permanent_bounce_through_sns():
    [receipt] = ses.parse_receipts(sample("ses_sns_bounce.json"))
    assert (receipt.status, receipt.permanent) == (DeliveryStatus.BOUNCED, True)
    assert receipt.recipient == "jane@example.com"
    assert receipt.error_code == "5.1.1"
    assert "User unknown" in receipt.detail


def test_complaint_through_sns():
    [receipt] = ses.parse_receipts(sample("ses_sns_complaint.json"))
    assert (receipt.status, receipt.permanent) == (DeliveryStatus.COMPLAINED, True)
    assert receipt.recipient == "richard@example.com"
    assert receipt.detail == "abuse"


def test_aws_doc_notifications_without_envelope():
    [bounce] = ses.parse_receipts(sample("ses_notification_bounce_awsdoc.json"))
    [delivery] = ses.parse_receipts(sample("ses_notification_delivery_awsdoc.json"))
    assert (bounce.status, bounce.permanent, bounce.recipient) == (
        DeliveryStatus.BOUNCED,
        True,
        "jane@example.com",
    )
    assert (
        bounce.event_id
        == "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa068a-000000:jane@example.com"
    )
    assert (delivery.status, delivery.recipient) == (DeliveryStatus.DELIVERED, "jane@example.com")
    assert delivery.event_id is None  # no envelope, no feedback id: the gateway dedupes by state


def test_transient_bounce_is_soft_and_each_recipient_gets_a_receipt():
    event = sample("ses_notification_bounce_awsdoc.json")
    event["bounce"]["bounceType"] = "Transient"
    event["bounce"]["bouncedRecipients"].append({"emailAddress": "mary@example.com"})
    receipts = ses.parse_receipts(event)
    assert [(r.status, r.permanent, r.recipient) for r in receipts] == [
        (DeliveryStatus.FAILED, False, "jane@example.com"),
        (DeliveryStatus.FAILED, False, "mary@example.com"),
    ]


def test_event_publishing_format_returns_our_tag():
    event = {
        "eventType": "Delivery",
        "mail": {
            "messageId": "m-1",
            "destination": ["jane@example.com"],
            "tags": {"notify_id": ["4711"], "ses:configuration-set": ["daystar-events"]},
        },
        "delivery": {"recipients": ["jane@example.com"], "timestamp": "2026-11-27T09:30:05.000Z"},
    }
    [receipt] = ses.parse_receipts(json.dumps(event))
    assert (receipt.reference, receipt.provider_message_id) == ("4711", "m-1")
    for kind, status in [
        ("Reject", DeliveryStatus.UNDELIVERED),
        ("Send", DeliveryStatus.QUEUED),
        ("Subscription", DeliveryStatus.UNSUBSCRIBED),
    ]:
        [receipt] = ses.parse_receipts({**event, "eventType": kind})
        assert receipt.status == status
    assert ses.parse_receipts({**event, "eventType": "Open"}) == []


def test_non_ses_messages_give_no_receipts():
    assert ses.parse_receipts(sample("sns_notification.json")) == []  # "Hello world!"
    assert ses.parse_receipts(sample("sns_subscription_confirmation.json")) == []
    validation = {
        **sample("ses_sns_delivery.json"),
        "Message": "Successfully validated SNS topic for Amazon SES event publishing.",
    }
    assert ses.parse_receipts(validation) == []
