"""Authentication of the SMS providers' webhooks: Twilio's X-Twilio-Signature against the published
test vector (notify.md §2.5), and the secret path segment that stands in for a signature for
Africa's Talking and Infobip (§3.4, §4.7)."""

import base64
import hashlib
import hmac

import pytest
from werkzeug.datastructures import MultiDict

from app.integrations.notify.base import WebhookRejected
from app.integrations.notify.secrets_check import check_path_secret
from app.integrations.notify.twilio import (
    callback_url,
    compute_signature,
    signed_url,
    verify_signature,
)
from tests.integrations.notify.sms_samples import sample_json

VECTOR = sample_json("twilio_signature_test_vector.json")
URL, PARAMS, TOKEN = VECTOR["url"], VECTOR["params"], VECTOR["auth_token"]
SIGNATURE = VECTOR["expected_signature"]


def test_the_published_vector_is_computed_and_accepted():
    assert compute_signature(URL, PARAMS, TOKEN) == SIGNATURE
    verify_signature(URL, PARAMS, SIGNATURE, TOKEN)
    verify_signature(URL, MultiDict(PARAMS), SIGNATURE, TOKEN)  # Flask's request.form


def test_the_algorithm_is_the_one_of_the_reference():
    """Full URL, then name+value for each sorted name, HMAC-SHA1 with the token, base64."""
    signed = URL + "".join(name + PARAMS[name] for name in sorted(PARAMS))
    digest = hmac.new(TOKEN.encode(), signed.encode(), hashlib.sha1).digest()
    assert base64.b64encode(digest).decode() == SIGNATURE


@pytest.mark.parametrize(
    ("url", "params", "token"),
    [
        (URL, {**PARAMS, "Digits": "1235"}, TOKEN),  # tampered field
        (URL, {**PARAMS, "Extra": "1"}, TOKEN),  # a field added
        (URL, {k: v for k, v in PARAMS.items() if k != "To"}, TOKEN),  # a field removed
        (URL, PARAMS, "12346"),  # wrong token
        ("https://mycompany.com/myapp.php?foo=1&bar=3", PARAMS, TOKEN),  # tampered query
        ("https://evil.example/myapp.php?foo=1&bar=2", PARAMS, TOKEN),  # another host
        ("http://mycompany.com/myapp.php?foo=1&bar=2", PARAMS, TOKEN),  # the proxy's http URL
    ],
)
def test_anything_changed_is_rejected(url, params, token):
    with pytest.raises(WebhookRejected):
        verify_signature(url, params, SIGNATURE, token)


@pytest.mark.parametrize("header", [None, "", "not-a-signature", SIGNATURE[:-1], "é" * 28])
def test_a_missing_or_malformed_header_is_rejected(header):
    with pytest.raises(WebhookRejected):
        verify_signature(URL, PARAMS, header, TOKEN)


def test_no_configured_token_rejects_even_a_matching_signature():
    empty_key_signature = compute_signature(URL, PARAMS, "")
    with pytest.raises(WebhookRejected, match="auth token"):
        verify_signature(URL, PARAMS, empty_key_signature, "")


def test_the_url_is_accepted_with_or_without_the_default_port():
    with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2"
    verify_signature(with_port, PARAMS, SIGNATURE, TOKEN)  # Twilio signed it without
    signed_with_port = compute_signature(with_port, PARAMS, TOKEN)
    verify_signature(URL, PARAMS, signed_with_port, TOKEN)  # and the other way round


def test_repeated_fields_are_signed_sorted_and_once_each():
    form = MultiDict([("MediaUrl", "b"), ("MediaUrl", "a"), ("MediaUrl", "b"), ("To", "+2547")])
    expected = URL + "MediaUrla" + "MediaUrlb" + "To+2547"
    digest = hmac.new(TOKEN.encode(), expected.encode(), hashlib.sha1).digest()
    verify_signature(URL, form, base64.b64encode(digest).decode(), TOKEN)


def test_a_json_webhook_is_checked_by_its_body_hash():
    body = b'{"MessageSid": "SM1"}'
    url = f"https://example.com/hook?bodySHA256={hashlib.sha256(body).hexdigest()}"
    signature = compute_signature(url, {}, TOKEN)
    verify_signature(url, {}, signature, TOKEN, raw_body=body)
    with pytest.raises(WebhookRejected, match="bodySHA256"):
        verify_signature(url, {}, signature, TOKEN, raw_body=body + b" ")
    with pytest.raises(WebhookRejected, match="bodySHA256"):
        verify_signature(url, {}, signature, TOKEN)


def test_our_reference_in_the_callback_url_is_covered_by_the_signature():
    url = callback_url("https://sacco.example/callbacks/notify/twilio/status?x=1&ref=9", "42")
    assert url == "https://sacco.example/callbacks/notify/twilio/status?x=1&ref=42"
    form = {"MessageSid": "SM1", "MessageStatus": "delivered"}
    signature = compute_signature(url, form, TOKEN)
    verify_signature(url, form, signature, TOKEN)
    with pytest.raises(WebhookRejected):
        verify_signature(url.replace("ref=42", "ref=43"), form, signature, TOKEN)


def test_signed_url_rebuilds_the_public_url_without_a_dangling_question_mark():
    base = "https://sacco.example/"
    assert signed_url(base, "/callbacks/notify/twilio/status", b"ref=42") == (
        "https://sacco.example/callbacks/notify/twilio/status?ref=42"
    )
    assert signed_url(base, "/callbacks/x", b"") == "https://sacco.example/callbacks/x"


# --- secret path segment (Africa's Talking, Infobip) -------------------------------------------


def test_the_right_path_secret_passes():
    check_path_secret("s3cr3t-Path-Segment", "s3cr3t-Path-Segment")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("wrong", "s3cr3t"),
        ("", "s3cr3t"),
        (None, "s3cr3t"),
        ("s3cr3t", ""),  # nothing configured: nothing passes
        ("", ""),
        (None, None),
        ("s3cr3té", "s3cr3t"),
    ],
)
def test_a_wrong_or_unconfigured_path_secret_is_rejected(given, expected):
    with pytest.raises(WebhookRejected):
        check_path_secret(given, expected)
