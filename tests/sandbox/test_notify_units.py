"""Units of the notification sandbox: SMS segments, the signers against the reference's test
vectors, SigV4 against AWS's published vector, keys kept on disk, and configuration checks."""

import base64
import hashlib
import hmac

import pytest

from sandbox.notify import keys, signing, sigv4, text
from sandbox.notify.outcomes import email_outcome, sms_outcome
from sandbox.settings import DEFAULTS, load_config
from tests.sandbox.notify_support import sample_json


@pytest.mark.parametrize(
    ("body", "encoding", "segments"),
    [
        ("x" * 160, "GSM-7", 1),
        ("x" * 161, "GSM-7", 2),
        ("x" * 306, "GSM-7", 2),
        ("x" * 307, "GSM-7", 3),
        ("€" * 80, "GSM-7", 1),  # extension characters take two septets
        ("€" * 81, "GSM-7", 2),
        ("Asante sana ✓" + "x" * 57, "UCS-2", 1),
        ("Asante sana ✓" + "x" * 58, "UCS-2", 2),
        ("😀" * 35, "UCS-2", 1),  # each emoji is two UTF-16 units
        ("😀" * 36, "UCS-2", 2),
    ],
)
def test_encoding_and_segments(body, encoding, segments):
    assert (text.encoding(body), text.segments(body)) == (encoding, segments)


def test_the_twilio_signer_reproduces_the_published_vector():
    vector = sample_json("twilio_signature_test_vector.json")

    signature = signing.twilio_signature(
        vector["auth_token"], vector["url"], list(vector["params"].items())
    )

    assert signature == vector["expected_signature"]


def test_the_twilio_signer_drops_duplicate_values_and_sorts_them():
    once = signing.twilio_signature("t", "https://x/y", [("A", "2"), ("A", "1")])
    twice = signing.twilio_signature("t", "https://x/y", [("A", "1"), ("A", "2"), ("A", "1")])

    assert once == twice


def test_the_mailgun_signer_reproduces_the_references_values():
    assert (
        signing.mailgun_signature(
            "TEST_WEBHOOK_SIGNING_KEY",
            "1534108637",
            "651869375b9df3c98fc15c4889b102119add1235c38fc92824",
        )
        == "2a75affe24846ead9e37e614a5e7643a04abf4d5b49b34d224ede9af23a00ccc"
    )


def test_the_sns_string_to_sign_follows_the_documented_order():
    envelope = sample_json("sns_notification.json")

    expected = "".join(
        f"{k}\n{envelope[k]}\n"
        for k in ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
    )

    assert signing.sns_string_to_sign(envelope) == expected


def test_the_sandbox_sigv4_reproduces_the_aws_get_vanilla_vector():
    request = sigv4.SignedRequest(
        "GET", "/", "", {"host": "example.amazonaws.com", "x-amz-date": "20150830T123600Z"}, b""
    )
    key = sigv4.signing_key(
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830", "us-east-1", "service"
    )
    canonical = sigv4.canonical_request(request, ["host", "x-amz-date"])
    to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            "20150830T123600Z",
            "20150830/us-east-1/service/aws4_request",
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )

    assert (
        hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        == "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    )


def test_keys_written_to_disk_are_kept_across_restarts(tmp_path):
    config = dict(
        DEFAULTS,
        SANDBOX_SENDGRID_KEY_PATH=str(tmp_path / "sendgrid.pem"),
        SANDBOX_SES_SNS_KEY_PATH=str(tmp_path / "sns-key.pem"),
        SANDBOX_SES_SNS_CERT_PATH=str(tmp_path / "sns-cert.pem"),
    )

    first, second = keys.load(config), keys.load(config)

    assert first.sendgrid_public_key == second.sendgrid_public_key
    assert first.sns_certificate_pem == second.sns_certificate_pem
    assert (tmp_path / "sns-key.pem").stat().st_mode & 0o777 == 0o600
    assert len(base64.b64decode(first.sendgrid_public_key)) == 91  # P-256 SubjectPublicKeyInfo


def test_generated_keys_differ_per_start():
    assert keys.load(DEFAULTS).sendgrid_public_key != keys.load(DEFAULTS).sendgrid_public_key


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"SANDBOX_SES_SIGV4": "maybe"}, "SANDBOX_SES_SIGV4 must be one of verify, format"),
        ({"SANDBOX_SES_SNS_SIGNATURE_VERSION": "3"}, "must be one of 1, 2"),
        ({"SANDBOX_MAILGUN_DOMAINS": ""}, "SANDBOX_MAILGUN_DOMAINS needs at least one"),
        ({"SANDBOX_NOTIFY_SLOW_SECONDS": "-1"}, "cannot be negative"),
    ],
)
def test_bad_configuration_stops_the_sandbox(overrides, message):
    with pytest.raises(ValueError, match=message):
        load_config(overrides, environ={})


def test_lists_come_from_the_environment():
    config = load_config(
        environ={
            "SANDBOX_AT_SENDER_IDS": "DAYSTAR, SACCO",
            "SANDBOX_MAILGUN_DOMAINS": "a.example,b.example",
        }
    )

    assert config["SANDBOX_AT_SENDER_IDS"] == ("DAYSTAR", "SACCO")
    assert config["SANDBOX_MAILGUN_DOMAINS"] == ("a.example", "b.example")


def test_reserved_recipients_and_modes():
    assert sms_outcome("+254799800001", None) == "invalid"
    assert sms_outcome("254 799 800 002", None) == "undelivered"
    assert sms_outcome("+254712345678", "bounce") == "undelivered"
    assert sms_outcome("+254712345678", "invalid_number") == "invalid"
    assert sms_outcome("+254712345678", "slow") == "delivered"
    assert email_outcome("Bounce@Simulator.Example.com", None) == "bounce"
    assert email_outcome("bounce@example.com", None) == "delivered"
    assert email_outcome("member@example.com", "bounce") == "bounce"
