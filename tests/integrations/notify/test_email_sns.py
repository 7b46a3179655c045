"""Amazon SNS signature verification and subscription confirmation.

Nothing here can reach AWS, and the verifier only fetches certificates from
`https://sns.<region>.amazonaws.com/....pem`. So the tests make a signing key and certificate of
their own, sign messages exactly as SNS does (the canonical string is rebuilt here independently,
from the AWS documentation's key lists), and serve the certificate over plain HTTP from the local
replay server through an injected fetcher, which maps the checked SNS URL to that server. The
host check itself is tested separately: a bad URL must be refused before any fetch happens."""

import base64
import datetime as dt
import json
from urllib.parse import urlsplit

import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from app.integrations.notify import ses, sns
from app.integrations.notify.base import DeliveryStatus, WebhookRejected
from app.integrations.notify.sns import SnsVerifier, confirm_subscription, is_sns_url
from tests.integrations.certificates import self_signed
from tests.integrations.notify.email_samples import sample

TOPIC = "arn:aws:sns:us-west-2:123456789012:MyTopic"
CERT_URL = "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem"
CERT_PATH = urlsplit(CERT_URL).path

# AWS docs (sns-verify-signature-of-message): the keys each type signs, in this order.
SIGNED_KEYS = {
    "Notification": ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"],
    "SubscriptionConfirmation": [
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ],
}


@pytest.fixture(scope="module")
def signing_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def certificate_pem(signing_key):
    return self_signed(signing_key, "sns.amazonaws.com").public_bytes(serialization.Encoding.PEM)


def sign_like_sns(message: dict, key, version: str = "1") -> dict:
    text = "".join(
        f"{name}\n{message[name]}\n" for name in SIGNED_KEYS[message["Type"]] if name in message
    )
    digest = hashes.SHA1() if version == "1" else hashes.SHA256()  # noqa: S303
    signature = key.sign(text.encode(), padding.PKCS1v15(), digest)
    return {
        **message,
        "SignatureVersion": version,
        "Signature": base64.b64encode(signature).decode(),
        "SigningCertURL": message.get("SigningCertURL", CERT_URL),
    }


@pytest.fixture
def served(replay, certificate_pem):
    """The certificate on the replay server, and a fetcher that records what it was asked."""
    replay.reply(CERT_PATH, 200, certificate_pem, content_type="application/x-x509-ca-cert")
    asked = []

    def fetch(url: str) -> bytes:
        asked.append(url)
        answer = requests.get(replay.url + urlsplit(url).path, timeout=2)
        answer.raise_for_status()
        return answer.content

    fetch.asked = asked
    return fetch


@pytest.fixture
def verifier(served):
    return SnsVerifier([TOPIC], fetch_certificate=served, certificate_cache={})


def notification(signing_key, version="1", **changes):
    return sign_like_sns({**sample("sns_notification.json"), **changes}, signing_key, version)


def confirmation(signing_key, version="1", **changes):
    return sign_like_sns(
        {**sample("sns_subscription_confirmation.json"), **changes}, signing_key, version
    )


# --- accepted -----------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_signed_notification_verifies_and_the_certificate_is_cached(
    verifier, served, signing_key, version
):
    body = notification(signing_key, version)
    raw = json.dumps(body).encode()

    assert verifier.verify(raw)["Message"] == "Hello world!"
    assert (
        verifier.verify(raw, message_type_header="Notification")["MessageId"] == body["MessageId"]
    )
    assert served.asked == [CERT_URL]  # fetched once, then from the cache


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_signed_subscription_confirmation_verifies(verifier, signing_key, version):
    message = verifier.verify(confirmation(signing_key, version))
    assert message["Token"] == "2336412f37..."


def test_a_notification_without_subject_verifies(verifier, signing_key):
    body = sample("sns_notification.json")
    del body["Subject"]
    assert verifier.verify(sign_like_sns(body, signing_key))["Type"] == "Notification"


def test_the_canonical_string_of_the_published_notification():
    assert (
        sns.string_to_sign(sample("sns_notification.json"))
        == (
            "Message\nHello world!\n"
            "MessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\n"
            "Subject\nMy First Message\n"
            "Timestamp\n2012-05-02T00:54:06.655Z\n"
            f"TopicArn\n{TOPIC}\n"
            "Type\nNotification\n"
        ).encode()
    )


def test_an_ses_bounce_signed_by_sns_verifies_and_parses(served, signing_key):
    envelope = sign_like_sns(
        {
            **sample("ses_sns_bounce.json"),
            "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-x.pem",
        },
        signing_key,
        "2",
    )
    served_elsewhere = SnsVerifier(
        [envelope["TopicArn"]], fetch_certificate=lambda url: served(CERT_URL), certificate_cache={}
    )
    [receipt] = ses.parse_receipts(served_elsewhere.verify(envelope))
    assert (receipt.status, receipt.permanent) == (DeliveryStatus.BOUNCED, True)


# --- rejected -----------------------------------------------------------------------------------


def test_a_tampered_message_is_rejected(verifier, signing_key):
    body = notification(signing_key)
    body["Message"] = "Hello world?"
    with pytest.raises(WebhookRejected, match="signature does not match"):
        verifier.verify(body)


def test_a_tampered_subscribe_url_is_rejected(verifier, signing_key):
    body = confirmation(signing_key)
    body["SubscribeURL"] = body["SubscribeURL"].replace("Token=", "Token=x")
    with pytest.raises(WebhookRejected, match="signature does not match"):
        verifier.verify(body)


def test_a_sha1_signature_labelled_version_2_is_rejected(verifier, signing_key):
    body = notification(signing_key, "1")
    body["SignatureVersion"] = "2"
    with pytest.raises(WebhookRejected, match="signature does not match"):
        verifier.verify(body)


def test_an_unknown_signature_version_is_rejected(verifier, signing_key):
    with pytest.raises(WebhookRejected, match="SignatureVersion"):
        verifier.verify({**notification(signing_key), "SignatureVersion": "3"})


def test_a_signature_by_another_key_is_rejected(verifier):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(WebhookRejected, match="signature does not match"):
        verifier.verify(notification(other))


def test_the_published_samples_placeholder_signatures_are_rejected(verifier):
    for name in ("sns_notification.json", "sns_subscription_confirmation.json"):
        with pytest.raises(WebhookRejected):
            verifier.verify(sample(name))


def test_a_topic_not_on_the_allow_list_is_rejected_before_any_fetch(verifier, served, signing_key):
    other_topic = "arn:aws:sns:us-west-2:999999999999:AttackerTopic"
    with pytest.raises(WebhookRejected, match="allow-list"):
        verifier.verify(notification(signing_key, TopicArn=other_topic))
    assert served.asked == []
    with pytest.raises(WebhookRejected, match="allow-list"):
        SnsVerifier([], fetch_certificate=served).verify(notification(signing_key))


BAD_CERT_URLS = [
    "http://sns.us-west-2.amazonaws.com/SimpleNotificationService-1.pem",
    "https://s3.amazonaws.com/my-bucket/SimpleNotificationService-1.pem",
    "https://sns.us-west-2.amazonaws.com.evil.example/SimpleNotificationService-1.pem",
    "https://evil.example/sns.us-west-2.amazonaws.com/SimpleNotificationService-1.pem",
    "https://sns.us-west-2.amazonaws.com@evil.example/SimpleNotificationService-1.pem",
    "https://sns.us-west-2.amazonaws.com:8443/SimpleNotificationService-1.pem",
    "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-1.txt",
    "https://sns.x.amazonaws.com/SimpleNotificationService-1.pem",
    "https://bucket.sns.us-west-2.amazonaws.com/SimpleNotificationService-1.pem",
    "https://sns.us_west_2.amazonaws.com/SimpleNotificationService-1.pem",
    "https://[::1]/x.pem",
    "",
]


@pytest.mark.parametrize("url", BAD_CERT_URLS)
def test_a_certificate_url_off_sns_is_rejected_before_any_fetch(verifier, served, signing_key, url):
    with pytest.raises(WebhookRejected, match="SigningCertURL"):
        verifier.verify(notification(signing_key, SigningCertURL=url))
    assert served.asked == []


@pytest.mark.parametrize(
    "url",
    [
        "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-1.pem",
        "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-1.pem",
        "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-1.pem",
        "https://SNS.us-east-1.amazonaws.com/SimpleNotificationService-1.pem",
    ],
)
def test_the_host_check_accepts_sns_endpoints(url):
    assert is_sns_url(url, pem=True)


@pytest.mark.parametrize("url", BAD_CERT_URLS)
def test_the_host_check_refuses_everything_else(url):
    assert not is_sns_url(url, pem=True)


def test_an_expired_certificate_is_rejected(served, signing_key):
    late = SnsVerifier(
        [TOPIC],
        fetch_certificate=served,
        certificate_cache={},
        clock=lambda: dt.datetime.now(dt.UTC) + dt.timedelta(days=60),
    )
    with pytest.raises(WebhookRejected, match="not currently valid"):
        late.verify(notification(signing_key))


def test_an_unfetchable_certificate_is_rejected(signing_key):
    def failing(url):
        raise requests.ConnectionError("no route")

    with pytest.raises(WebhookRejected, match="Could not load"):
        SnsVerifier([TOPIC], fetch_certificate=failing, certificate_cache={}).verify(
            notification(signing_key)
        )
    with pytest.raises(WebhookRejected, match="Could not load"):
        SnsVerifier(
            [TOPIC], fetch_certificate=lambda url: b"not a pem", certificate_cache={}
        ).verify(notification(signing_key))


@pytest.mark.parametrize(
    ("body", "header", "match"),
    [
        (b"not json", None, "not JSON"),
        (b"[]", None, "not a JSON object"),
        (b'{"Type": "Other"}', None, "message type"),
        (None, "SubscriptionConfirmation", "does not match"),
    ],
)
def test_malformed_messages_are_rejected(verifier, signing_key, body, header, match):
    body = notification(signing_key) if body is None else body
    with pytest.raises(WebhookRejected, match=match):
        verifier.verify(body, message_type_header=header)


def test_a_confirmation_without_token_is_rejected(verifier, signing_key):
    body = confirmation(signing_key)
    del body["Token"]
    with pytest.raises(WebhookRejected, match="lacks Token"):
        verifier.verify(body)


# --- subscription confirmation ------------------------------------------------------------------


def test_confirming_fetches_the_subscribe_url(verifier, signing_key):
    message = verifier.verify(confirmation(signing_key))
    fetched = []
    assert confirm_subscription(message, fetch=lambda url: fetched.append(url) or b"<ok/>") is True
    assert fetched == [message["SubscribeURL"]]


@pytest.mark.parametrize(
    "url",
    [
        "http://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription",
        "https://s3.amazonaws.com/?Action=ConfirmSubscription",
        "https://sns.us-west-2.amazonaws.com.evil.example/?Action=ConfirmSubscription",
        None,
    ],
)
def test_a_subscribe_url_off_sns_is_never_fetched(url):
    fetched = []
    message = {**sample("sns_subscription_confirmation.json"), "SubscribeURL": url}
    with pytest.raises(WebhookRejected, match="SubscribeURL"):
        confirm_subscription(message, fetch=fetched.append)
    assert fetched == []


def test_only_a_subscription_confirmation_is_confirmed():
    with pytest.raises(WebhookRejected, match="Not a SubscriptionConfirmation"):
        confirm_subscription(sample("sns_notification.json"), fetch=lambda url: b"")


def test_a_failed_confirmation_is_reported_not_raised():
    def failing(url):
        raise requests.HTTPError("403")

    assert (
        confirm_subscription(sample("sns_subscription_confirmation.json"), fetch=failing) is False
    )


# --- the default fetcher (over plain HTTP to the replay server: it is the verifier, not the
# fetcher, that insists on https and the SNS host) --------------------------------------------


def test_the_default_fetcher_returns_a_200_body(replay, certificate_pem):
    replay.reply("/cert.pem", 200, certificate_pem)
    assert sns.fetch_over_https(replay.url + "/cert.pem") == certificate_pem


@pytest.mark.parametrize(
    ("status", "body"), [(302, b""), (404, b"missing"), (200, b"x" * (64 * 1024 + 1))]
)
def test_the_default_fetcher_refuses_redirects_errors_and_huge_bodies(replay, status, body):
    replay.reply("/cert.pem", status, body)
    with pytest.raises(ValueError):
        sns.fetch_over_https(replay.url + "/cert.pem")
