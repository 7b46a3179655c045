"""Amazon SES v2 on the sandbox: SigV4 (notify.md §7.2), SendEmail's answers (§7.1), and
Delivery / Bounce / Complaint notifications through SNS, signed with the sandbox's certificate
and verified here with `cryptography` (§7.3-§7.5)."""

import base64
import json
import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.sandbox.conftest import serve
from tests.sandbox.notify_support import (
    Providers,
    key_tree,
    sample_json,
    ses_body,
    sigv4_headers,
    sigv4_signature,
    sns_verified,
)

MESSAGE_ID = re.compile(r"[0-9a-f]{16}-[0-9a-f-]{36}-000000")


@pytest.fixture
def api(notify_sandbox):
    return Providers(notify_sandbox)


def envelopes(receiver, path: str) -> list[dict]:
    return [json.loads(p.raw) for p in receiver.on(path)]


def test_the_signer_used_here_reproduces_the_aws_get_vanilla_vector():
    signature = sigv4_signature(
        "GET",
        "/",
        {"host": "example.amazonaws.com", "x-amz-date": "20150830T123600Z"},
        b"",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        "20150830/us-east-1/service/aws4_request",
        "20150830T123600Z",
    )

    assert signature == "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"


def test_a_signed_send_answers_200_with_a_message_id(api, notify_sandbox):
    response = api.ses(ses_body())

    assert response.status_code == 200
    assert response.headers["x-amzn-RequestId"]
    body = response.json()
    assert list(body) == ["MessageId"] and MESSAGE_ID.fullmatch(body["MessageId"])
    [message] = notify_sandbox.messages("ses")
    assert (message["id"], message["subject"], message["html"]) == (
        body["MessageId"],
        "Loan approved",
        "<p>Your loan was approved.</p>",
    )
    assert message["metadata"] == {"notification_id": "N-42"}


def test_a_raw_mime_message_is_read_for_the_inbox(api, notify_sandbox):
    mime = EmailMessage()
    mime["From"], mime["To"], mime["Subject"] = (
        "no-reply@daystar.example.com",
        "m@example.com",
        "Raw",
    )
    mime.set_content("plain part")
    mime.add_alternative("<p>html part</p>", subtype="html")
    body = {"Content": {"Raw": {"Data": base64.b64encode(mime.as_bytes()).decode()}}}

    response = api.ses(body)

    assert response.status_code == 200
    [message] = notify_sandbox.messages("ses")
    assert (message["to"], message["subject"]) == ("m@example.com", "Raw")
    assert message["body"].strip() == "plain part"
    assert message["html"].strip() == "<p>html part</p>"


@pytest.mark.parametrize(
    ("sign", "code", "text"),
    [
        (
            {"secret": "x" * 40},
            "InvalidSignatureException",
            "The request signature we calculated does not match",
        ),
        (
            {"access_key": "AKIAUNKNOWN000000000"},
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ),
        (
            {"region": "eu-west-1"},
            "InvalidSignatureException",
            "Credential should be scoped to a valid region, not 'eu-west-1'.",
        ),
        (
            {"service": "email"},
            "InvalidSignatureException",
            "Credential should be scoped to correct service: 'ses'.",
        ),
        (
            {"when": datetime.now(UTC) - timedelta(minutes=20)},
            "InvalidSignatureException",
            "Signature expired:",
        ),
    ],
)
def test_bad_signatures_are_refused_with_aws_errors(api, notify_sandbox, sign, code, text):
    response = api.ses(ses_body(), **sign)

    assert response.status_code == 403
    assert response.headers["x-amzn-ErrorType"] == code
    assert list(response.json()) == ["message"]
    assert response.json()["message"].startswith(text)
    assert notify_sandbox.messages("ses") == []


def test_a_body_changed_after_signing_does_not_verify(api, notify_sandbox):
    c = notify_sandbox.credentials["ses"]
    url = f"{notify_sandbox.base_url}/v2/email/outbound-emails"
    raw = json.dumps(ses_body()).encode()
    headers = sigv4_headers(url, raw, c["access_key_id"], c["secret_access_key"], c["region"])

    response = requests.post(
        url, data=raw.replace(b"approved", b"declined"), headers=headers, timeout=10
    )

    assert response.status_code == 403
    assert "The Canonical String for this request should have been" in response.json()["message"]


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "MissingAuthenticationTokenException"),
        ({"Authorization": "AWS4-HMAC-SHA256 Credential=x"}, "IncompleteSignatureException"),
        ({"Authorization": "Bearer abc"}, "IncompleteSignatureException"),
    ],
)
def test_a_missing_or_malformed_authorization_is_refused(notify_sandbox, headers, code):
    response = requests.post(
        f"{notify_sandbox.base_url}/v2/email/outbound-emails",
        json=ses_body(),
        headers=headers,
        timeout=10,
    )

    assert (response.status_code, response.headers["x-amzn-ErrorType"]) == (403, code)


def test_format_mode_checks_the_header_shape_but_not_the_signature():
    with serve(SANDBOX_SES_SIGV4="format") as base:
        creds = requests.get(f"{base}/sandbox/api/notify/ses/credentials", timeout=10).json()
        url = f"{base}/v2/email/outbound-emails"
        raw = json.dumps(ses_body()).encode()
        wrong = sigv4_headers(url, raw, creds["access_key_id"], "y" * 40, creds["region"])

        accepted = requests.post(url, data=raw, headers=wrong, timeout=10)
        unsigned = requests.post(url, data=raw, timeout=10)

    assert accepted.status_code == 200
    assert unsigned.status_code == 403


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (ses_body(to="not-an-address"), "Illegal address"),
        (ses_body(to="invalid@simulator.example.com"), "Illegal address"),
        (ses_body(Content={}), "Content must hold exactly one of Simple, Raw or Template."),
        (ses_body(Destination={}), "Destination must name at least one recipient."),
    ],
)
def test_bad_requests_are_bad_request_exceptions(api, body, message):
    response = api.ses(body)

    assert response.status_code == 400
    assert response.headers["x-amzn-ErrorType"] == "BadRequestException"
    assert response.json() == {"message": message}


def test_delivery_arrives_as_a_signed_sns_notification(api, notify_sandbox, receiver):
    notify_sandbox.set_webhook("ses", receiver.url("callbacks/notify/ses"))
    message_id = api.ses(ses_body()).json()["MessageId"]

    notify_sandbox.flush()

    [post] = receiver.on("callbacks/notify/ses")
    assert post.headers["Content-Type"] == "text/plain; charset=UTF-8"
    envelope = json.loads(post.raw)
    assert post.headers["X-Amz-Sns-Message-Type"] == "Notification"
    assert post.headers["X-Amz-Sns-Message-Id"] == envelope["MessageId"]
    assert (
        post.headers["X-Amz-Sns-Topic-Arn"] == envelope["TopicArn"] == notify_sandbox.sns_topic_arn
    )
    assert set(envelope) == set(sample_json("sns_notification.json")) - {"Subject"}
    assert envelope["SignatureVersion"] == "1"
    assert sns_verified(envelope, notify_sandbox.sns_certificate_pem)
    assert not sns_verified(
        envelope | {"Message": envelope["Message"] + " "}, notify_sandbox.sns_certificate_pem
    )
    event = json.loads(envelope["Message"])
    reference = sample_json("ses_notification_delivery_awsdoc.json")
    assert set(event) == set(reference)
    assert set(event["mail"]) == set(reference["mail"])
    assert key_tree(event["delivery"]) == key_tree(reference["delivery"])
    assert event["notificationType"] == "Delivery"
    assert event["mail"]["messageId"] == message_id
    assert event["delivery"]["recipients"] == ["member@example.com"]


def test_the_signing_certificate_is_served_at_signing_cert_url(api, notify_sandbox, receiver):
    notify_sandbox.set_webhook("ses", receiver.url("ses"))
    api.ses(ses_body())
    notify_sandbox.flush()
    envelope = envelopes(receiver, "ses")[0]

    pem = requests.get(envelope["SigningCertURL"], timeout=10)

    assert envelope["SigningCertURL"] == notify_sandbox.sns_certificate_url
    assert urlsplit(envelope["SigningCertURL"]).path.startswith(
        "/sandbox/notify/sns/SimpleNotificationService-"
    )
    assert envelope["SigningCertURL"].endswith(".pem")
    assert pem.content == notify_sandbox.sns_certificate_pem


def test_signature_version_2_and_a_configured_sns_url(api, notify_sandbox, receiver):
    notify_sandbox.set_webhook("ses", receiver.url("ses"))
    notify_sandbox.set_settings(
        sns_signature_version="2", sns_url="https://sns.us-east-1.amazonaws.com"
    )
    api.ses(ses_body())

    notify_sandbox.flush()

    envelope = envelopes(receiver, "ses")[0]
    assert envelope["SignatureVersion"] == "2"
    assert sns_verified(envelope, notify_sandbox.sns_certificate_pem)
    assert urlsplit(envelope["SigningCertURL"]).hostname == "sns.us-east-1.amazonaws.com"
    assert envelope["UnsubscribeURL"].startswith(
        "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"
    )


@pytest.mark.parametrize(
    ("address", "events"),
    [
        ("bounce@simulator.example.com", [("Bounce", "Permanent")]),
        ("deferred@simulator.example.com", [("Bounce", "Transient")]),
        ("complaint@simulator.example.com", [("Delivery", None), ("Complaint", None)]),
    ],
)
def test_reserved_addresses_produce_the_documented_notifications(
    api, notify_sandbox, receiver, address, events
):
    notify_sandbox.set_webhook("ses", receiver.url("ses"))
    api.ses(ses_body(to=address))

    notify_sandbox.flush()

    got = [json.loads(e["Message"]) for e in envelopes(receiver, "ses")]
    assert [(e["notificationType"], e.get("bounce", {}).get("bounceType")) for e in got] == events
    for event in got:
        if event["notificationType"] == "Bounce":
            reference = sample_json("ses_notification_bounce_awsdoc.json")["bounce"]
            assert set(event["bounce"]) == set(reference)
            assert event["bounce"]["bouncedRecipients"][0]["emailAddress"] == address
        if event["notificationType"] == "Complaint":
            assert event["complaint"]["complainedRecipients"] == [{"emailAddress": address}]


def test_a_configuration_set_switches_to_event_publishing_with_tags(api, notify_sandbox, receiver):
    notify_sandbox.set_webhook("ses", receiver.url("ses"))
    api.ses(ses_body(ConfigurationSetName="daystar"))

    notify_sandbox.flush()

    envelope = envelopes(receiver, "ses")[0]
    assert envelope["Subject"] == "Amazon SES Email Event Notification"
    assert sns_verified(envelope, notify_sandbox.sns_certificate_pem)
    event = json.loads(envelope["Message"])
    assert event["eventType"] == "Delivery" and "notificationType" not in event
    assert event["mail"]["tags"]["notification_id"] == ["N-42"]
    assert event["mail"]["tags"]["ses:configuration-set"] == ["daystar"]


def test_a_subscription_is_confirmed_through_subscribe_url(notify_sandbox, receiver):
    notify_sandbox.set_webhook("ses", receiver.url("ses"))

    sent = notify_sandbox.ses_subscribe()

    [post] = receiver.on("ses")
    envelope = json.loads(post.raw)
    assert post.headers["X-Amz-Sns-Message-Type"] == "SubscriptionConfirmation"
    assert set(envelope) == set(sample_json("sns_subscription_confirmation.json"))
    assert sns_verified(envelope, notify_sandbox.sns_certificate_pem)
    assert envelope["Token"] == sent["token"]
    query = parse_qs(urlsplit(envelope["SubscribeURL"]).query)
    assert query["Action"] == ["ConfirmSubscription"] and query["Token"] == [sent["token"]]

    confirmed = requests.get(envelope["SubscribeURL"], timeout=10)
    refused = requests.get(envelope["SubscribeURL"].replace(sent["token"], "forged"), timeout=10)

    assert confirmed.status_code == 200
    assert "<ConfirmSubscriptionResponse" in confirmed.text
    assert refused.status_code == 400 and "InvalidParameter" in refused.text
    [visit] = notify_sandbox.sns_subscriptions()
    assert (visit["action"], visit["endpoint"]) == ("ConfirmSubscription", receiver.url("ses"))
