"""Amazon SES delivery notifications through SNS, at the real route /callbacks/notify/ses/events.

The SNS envelopes are signed by the provider sandbox: either it sends them itself (an email the
gateway sent through its SES API, then flush()), or the published samples (tests/data/notify) are
signed here with the sandbox's own SNS key and signing function. The sandbox is told to put an
`sns.us-east-1.amazonaws.com` host in SigningCertURL and SubscribeURL, as SNS does, so the app's
host check runs as in production. Those URLs cannot be fetched from AWS in a test, so the
injected certificate fetcher (SNS_CERTIFICATE_FETCHER) maps that host to the sandbox, which
serves the real certificate and records the subscription confirmation; it is only ever handed a
URL that passed the host check."""

import json
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import func, select

from app.extensions import db
from app.integrations.notify import sns
from app.models import Notification, NotificationReceipt, NotificationStatus, Suppression
from sandbox.notify import signing
from tests import factories
from tests.integrations.notify.email_samples import sample

SNS_BASE = "https://sns.us-east-1.amazonaws.com"
ROUTE = "/callbacks/notify/ses/events"
URGENT = {"priority": "high"}  # ignores quiet hours, so the tests do not depend on the clock


@pytest.fixture
def sns_fetches(app, notify_sandbox, monkeypatch):
    """The certificate fetcher the app is given: SNS URLs answered by the sandbox (real HTTP);
    records every URL it is handed. The process-wide certificate cache starts empty."""
    asked = []

    def fetch(url: str) -> bytes:
        asked.append(url)
        assert url.startswith(SNS_BASE + "/")  # the host check ran before any fetch
        answer = requests.get(
            notify_sandbox.base_url + "/sandbox/notify/sns" + url.removeprefix(SNS_BASE),
            timeout=10,
        )
        if answer.status_code != 200:
            raise ValueError(f"HTTP {answer.status_code}")
        return answer.content

    monkeypatch.setattr(sns, "_certificates", {})
    monkeypatch.setitem(app.config, "SNS_CERTIFICATE_FETCHER", fetch)
    return asked


@pytest.fixture
def ses_live(app, live_server, notify_sandbox, sns_fetches, monkeypatch):
    """SES as the only email provider (the sandbox's SES API), our topic on the allow-list, and
    the sandbox's SNS subscription pointing at the live server's route."""
    creds = notify_sandbox.credentials["ses"]
    monkeypatch.setitem(
        app.config,
        "NOTIFY_OVERRIDES",
        {
            "email_providers": "ses",
            "ses.access_key_id": creds["access_key_id"],
            "ses.secret_access_key": creds["secret_access_key"],
            "ses.region": creds["region"],
            "ses.from_address": "no-reply@daystar.co.ke",
            "ses.base_url": notify_sandbox.base_url,
            "ses.sns_topic_arns": notify_sandbox.sns_topic_arn,
        },
    )
    notify_sandbox.set_settings(sns_url=SNS_BASE)
    notify_sandbox.set_webhook("ses", live_server + ROUTE)
    return notify_sandbox


@pytest.fixture
def sns_key(sandbox_server):
    """The RSA key the sandbox signs its SNS envelopes with (sandbox/notify/keys.py)."""
    return sandbox_server.app.extensions["notify"].keys.sns_key


def certificate_url(notify_sandbox) -> str:
    return f"{SNS_BASE}/{urlsplit(notify_sandbox.sns_certificate_url).path.rsplit('/', 1)[1]}"


def signed(envelope: dict, key, version: str = "1") -> dict:
    """The envelope signed as the sandbox signs (SNS's canonical string, RSA PKCS#1 v1.5)."""
    envelope = {k: v for k, v in envelope.items() if k not in ("Signature", "SignatureVersion")}
    envelope["SignatureVersion"] = version
    envelope["Signature"] = signing.sns_signature(key, envelope, version)
    return envelope


def sample_envelope(name: str, notify_sandbox, key, **changes) -> dict:
    """A published SES-through-SNS sample, for our topic and the sandbox's certificate, signed."""
    envelope = sample(name)
    envelope.update(
        TopicArn=notify_sandbox.sns_topic_arn, SigningCertURL=certificate_url(notify_sandbox)
    )
    envelope.update(changes)
    return signed(envelope, key)


def post(client, envelope: dict | bytes, kind: str = "Notification"):
    raw = envelope if isinstance(envelope, bytes) else json.dumps(envelope).encode()
    return client.post(
        ROUTE,
        data=raw,
        headers={"Content-Type": "text/plain; charset=UTF-8", "x-amz-sns-message-type": kind},
    )


def ses_message_id(name: str) -> str:
    return json.loads(sample(name)["Message"])["mail"]["messageId"]


def sent_by_ses(email: str, message_id: str) -> Notification:
    """An email notification as the gateway leaves it once SES accepted it."""
    member = factories.member(email=email)
    row = Notification(
        recipient_id=member.id,
        notification_type="general",
        channel="email",
        subject="Your statement",
        message="Your statement is ready.",
        recipient_contact=email,
        status=NotificationStatus.SENT,
        provider="ses",
        provider_message_id=message_id,
        priority="normal",
        max_retries=3,
    )
    db.session.add(row)
    db.session.commit()
    return row


def reload(row) -> Notification:
    db.session.expire_all()
    return db.session.get(Notification, row.id)


def suppressed(email: str) -> str | None:
    return db.session.scalar(select(Suppression.reason).where(Suppression.contact == email))


def receipts_stored() -> int:
    return db.session.scalar(select(func.count()).select_from(NotificationReceipt))


# --- the whole path: gateway -> SES API (sandbox) -> SNS -> our route -----------------------------


def send_email(member):
    from app.services.notifications import gateway

    return gateway.create(member.id, "Your statement is ready.", "email", "Statement", URGENT)[0]


def test_an_email_sent_through_ses_is_delivered_by_its_signed_sns_notification(
    ses_live, sns_fetches, run_jobs
):
    row = send_email(factories.member(email="wanjiku@example.co.ke"))
    run_jobs()
    row = reload(row)
    assert (row.status, row.provider) == (NotificationStatus.SENT, "ses")

    deliveries = ses_live.flush()  # the sandbox's SNS posts the Delivery notification to our route
    run_jobs()  # the route stored it; the job applies it

    [delivery] = [d for d in deliveries if d["reference"] == row.provider_message_id]

    assert (delivery["status_code"], delivery["response_body"].strip()) == (200, '{"stored":1}')
    assert reload(row).status == NotificationStatus.DELIVERED
    assert reload(row).delivered_at is not None
    assert sns_fetches == [certificate_url(ses_live)]  # the signing certificate, once


@pytest.mark.parametrize(
    ("address", "status", "reason"),
    [
        ("bounce@simulator.example.com", NotificationStatus.FAILED, "hard_bounce"),
        ("complaint@simulator.example.com", NotificationStatus.DELIVERED, "complaint"),
    ],
)
def test_a_bounce_or_complaint_through_sns_suppresses_the_address(
    ses_live, run_jobs, address, status, reason
):
    row = send_email(factories.member(email=address))
    run_jobs()

    deliveries = [d for d in ses_live.flush() if d["reference"] == reload(row).provider_message_id]
    run_jobs()

    assert deliveries and all(d["status_code"] == 200 for d in deliveries), deliveries
    assert reload(row).status == status
    assert suppressed(address) == reason


def test_a_subscription_confirmation_is_verified_and_its_subscribe_url_visited(
    ses_live, sns_fetches, live_server
):
    sent = ses_live.ses_subscribe(live_server + ROUTE)  # SNS posts the confirmation to our route

    assert sent["delivery"]["status_code"] == 200
    [visit] = ses_live.sns_subscriptions()  # the sandbox's SubscribeURL was fetched by the app
    assert (visit["action"], visit["endpoint"]) == ("ConfirmSubscription", live_server + ROUTE)
    subscribe_url = next(url for url in sns_fetches if "Action=ConfirmSubscription" in url)
    assert subscribe_url.startswith(SNS_BASE + "/?") and f"Token={sent['token']}" in subscribe_url
    assert receipts_stored() == 0


# --- the published samples, signed with the sandbox's SNS key, posted to the route ---------------


@pytest.mark.parametrize(
    ("name", "email", "status", "reason"),
    [
        ("ses_sns_delivery.json", "jane@example.com", NotificationStatus.DELIVERED, None),
        ("ses_sns_bounce.json", "jane@example.com", NotificationStatus.FAILED, "hard_bounce"),
        ("ses_sns_complaint.json", "richard@example.com", NotificationStatus.SENT, "complaint"),
    ],
)
def test_a_signed_ses_sample_changes_the_status_or_suppresses(
    client, notify_sandbox, ses_live, sns_key, run_jobs, name, email, status, reason
):
    row = sent_by_ses(email, ses_message_id(name))

    response = post(client, sample_envelope(name, notify_sandbox, sns_key))
    run_jobs()

    assert (response.status_code, response.get_json()) == (200, {"stored": 1})
    assert reload(row).status == status
    assert suppressed(email) == reason
    assert post(client, sample_envelope(name, notify_sandbox, sns_key)).get_json() == {
        "stored": 0
    }  # the same event again changes nothing


def test_a_signed_subscription_confirmation_sample_is_confirmed(
    client, notify_sandbox, ses_live, sns_key, sns_fetches
):
    # The sample's SubscribeURL, with the sandbox's topic and a token the sandbox issued.
    token = notify_sandbox.ses_subscribe("http://127.0.0.1:9/not-listening")["token"]
    topic = notify_sandbox.sns_topic_arn
    envelope = sample_envelope(
        "sns_subscription_confirmation.json",
        notify_sandbox,
        sns_key,
        Token=token,
        SubscribeURL=f"{SNS_BASE}/?Action=ConfirmSubscription&TopicArn={topic}&Token={token}",
        Message=sample("sns_subscription_confirmation.json")["Message"].replace(
            sample("sns_subscription_confirmation.json")["TopicArn"], topic
        ),
    )

    response = post(client, envelope, "SubscriptionConfirmation")

    assert (response.status_code, response.get_json()) == (200, {"stored": 0})
    assert [v["action"] for v in notify_sandbox.sns_subscriptions()] == ["ConfirmSubscription"]


# --- refused: 403, nothing stored, nothing changed ------------------------------------------------


def refused(client, row, envelope, kind="Notification"):
    response = post(client, envelope, kind)
    assert response.status_code == 403
    assert reload(row).status == NotificationStatus.SENT
    assert receipts_stored() == 0
    assert suppressed(row.recipient_contact) is None


def test_a_topic_not_on_the_allow_list_is_refused_before_any_fetch(
    app, client, notify_sandbox, ses_live, sns_key, sns_fetches
):
    row = sent_by_ses("jane@example.com", ses_message_id("ses_sns_bounce.json"))
    other_topic = "arn:aws:sns:us-east-1:123456789012:someone-elses-topic"

    refused(client, row, sample_envelope("ses_sns_bounce.json", notify_sandbox, sns_key,
                                         TopicArn=other_topic))  # fmt: skip
    # A correctly signed message of our topic, but the allow-list names another one.
    app.config["NOTIFY_OVERRIDES"]["ses.sns_topic_arns"] = other_topic
    refused(client, row, sample_envelope("ses_sns_bounce.json", notify_sandbox, sns_key))
    assert sns_fetches == []


@pytest.mark.parametrize(
    "url",
    [
        "https://sns.us-east-1.amazonaws.com.evil.example/cert.pem",
        "https://evil.example/SimpleNotificationService-x.pem",
        "https://s3.amazonaws.com/sns.us-east-1.amazonaws.com/SimpleNotificationService-x.pem",
        "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-x.pem",
        "https://sns.us-east-1.amazonaws.com@evil.example/SimpleNotificationService-x.pem",
    ],
)
def test_a_certificate_url_off_sns_is_refused_and_never_fetched(
    client, notify_sandbox, ses_live, sns_key, sns_fetches, url
):
    row = sent_by_ses("jane@example.com", ses_message_id("ses_sns_delivery.json"))

    refused(client, row, sample_envelope("ses_sns_delivery.json", notify_sandbox, sns_key,
                                         SigningCertURL=url))  # fmt: skip
    assert sns_fetches == []


def test_a_tampered_body_is_refused(client, notify_sandbox, ses_live, sns_key):
    row = sent_by_ses("jane@example.com", ses_message_id("ses_sns_bounce.json"))
    envelope = sample_envelope("ses_sns_bounce.json", notify_sandbox, sns_key)
    event = json.loads(envelope["Message"])
    event["bounce"]["bouncedRecipients"][0]["emailAddress"] = "someone@example.com"

    refused(client, row, {**envelope, "Message": json.dumps(event)})
    refused(client, row, {**envelope, "Timestamp": "2030-01-01T00:00:00.000Z"})
    raw = json.dumps(envelope).encode()
    refused(client, row, raw.replace(b"Permanent", b"Transient"))


def test_a_notification_signed_by_another_key_or_mislabelled_is_refused(
    client, notify_sandbox, ses_live, sns_key
):
    from cryptography.hazmat.primitives.asymmetric import rsa

    row = sent_by_ses("jane@example.com", ses_message_id("ses_sns_delivery.json"))
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    refused(client, row, sample_envelope("ses_sns_delivery.json", notify_sandbox, stranger))
    genuine = sample_envelope("ses_sns_delivery.json", notify_sandbox, sns_key)
    refused(client, row, genuine, kind="SubscriptionConfirmation")  # header and body disagree
    refused(client, row, sample("ses_sns_delivery.json"))  # the published, unsigned sample


def test_a_forged_subscription_confirmation_is_refused_and_nothing_is_visited(
    client, notify_sandbox, ses_live, sns_key, sns_fetches
):
    row = sent_by_ses("jane@example.com", ses_message_id("ses_sns_delivery.json"))
    envelope = sample_envelope(
        "sns_subscription_confirmation.json",
        notify_sandbox,
        sns_key,
        SubscribeURL=f"{SNS_BASE}/?Action=ConfirmSubscription&Token=forged",
    )
    forged = {**envelope, "SubscribeURL": "https://evil.example/?Action=ConfirmSubscription"}

    refused(client, row, forged, kind="SubscriptionConfirmation")
    assert not any("evil" in url for url in sns_fetches)
    assert notify_sandbox.sns_subscriptions() == []
