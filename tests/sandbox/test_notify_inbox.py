"""The inbox page (SMS per phone, email like a mail client, receipts), the providers page, the
notification control API and the `notify_sandbox` fixture itself."""

import html
import json
import re

import pytest
import requests

from tests.sandbox.notify_support import (
    PHONE,
    Providers,
    infobip_v3_body,
    sendgrid_body,
    ses_body,
)

HOSTILE_HTML = (
    '<p onclick="steal()">Hi</p><script>alert("owned")</script><img src=x onerror=alert(1)>'
)


@pytest.fixture
def api(notify_sandbox):
    return Providers(notify_sandbox)


def page(notify_sandbox, path: str, **params) -> requests.Response:
    return requests.get(notify_sandbox.base_url + path, params=params, timeout=10)


def test_sms_from_every_provider_lands_on_one_phone(api, notify_sandbox):
    api.twilio(Body="From Twilio")
    api.africastalking(message="From AT")
    api.infobip(infobip_v3_body(content={"text": "From Infobip"}))
    api.twilio(To="+254722000111", Body="Another phone")
    notify_sandbox.flush()

    response = page(notify_sandbox, "/sandbox/inbox")

    assert response.status_code == 200
    assert "script-src 'none'" in response.headers["Content-Security-Policy"]
    cards = {
        card.split('"', 1)[0]: card
        for card in response.text.split('<div class="phone" id="phone-')[1:]
    }
    assert set(cards) == {"254712345678", "254722000111"}
    phone = cards["254712345678"]
    for body in ("From Twilio", "From AT", "From Infobip"):
        assert body in phone
    assert phone.index("From Infobip") < phone.index("From AT") < phone.index("From Twilio")
    assert "delivered" in phone and "Success" in phone and "DELIVERED_TO_HANDSET" in phone
    assert "not posted: no callback URL" in phone


def test_the_inbox_filters_by_phone_provider_and_address(api, notify_sandbox):
    api.twilio(Body="Mine")
    api.twilio(To="+254722000111", Body="Theirs")
    api.sendgrid(sendgrid_body(to="a@example.com", subject="For A"))
    api.sendgrid(sendgrid_body(to="b@example.com", subject="For B"))

    one_phone = page(notify_sandbox, "/sandbox/inbox", phone="+254 722 000 111")
    one_address = page(notify_sandbox, "/sandbox/inbox", email="b@example.com")
    only_sms = page(notify_sandbox, "/sandbox/inbox", provider="twilio")

    assert "Theirs" in one_phone.text and "Mine" not in one_phone.text
    assert "For B" in one_address.text and "For A" not in one_address.text
    assert "Mine" in only_sms.text and "For A" not in only_sms.text


def test_emails_are_listed_and_their_html_is_only_shown_sandboxed(api, notify_sandbox):
    api.sendgrid(
        sendgrid_body(
            subject="Statement <June>",
            content=[
                {"type": "text/plain", "value": "Plain statement"},
                {"type": "text/html", "value": HOSTILE_HTML},
            ],
        )
    )
    api.ses(ses_body(to="bounce@simulator.example.com"))
    notify_sandbox.flush()
    [first, second] = notify_sandbox.messages()

    listing = page(notify_sandbox, "/sandbox/inbox").text
    detail = page(notify_sandbox, f"/sandbox/inbox/{first['n']}")
    bounced = page(notify_sandbox, f"/sandbox/inbox/{second['n']}").text

    assert "Statement &lt;June&gt;" in listing and "<June>" not in listing
    assert f'href="/sandbox/inbox/{first["n"]}"' in listing
    assert detail.status_code == 200
    assert "script-src 'none'" in detail.headers["Content-Security-Policy"]
    frame = re.search(r"<iframe[^>]*>", detail.text).group(0)
    assert 'sandbox=""' in frame
    srcdoc = re.search(r'srcdoc="([^"]*)"', frame).group(1)
    assert html.unescape(srcdoc) == HOSTILE_HTML  # shown as sent, inside the sandbox only
    assert "<script>" not in detail.text
    assert "Plain statement" in detail.text
    assert "processed" in detail.text and "delivered" in detail.text
    assert "Bounce" in bounced and "bounce@simulator.example.com" in bounced


def test_an_unknown_message_is_404(notify_sandbox):
    assert page(notify_sandbox, "/sandbox/inbox/999").status_code == 404


def test_the_index_and_the_providers_page_show_the_providers(notify_sandbox):
    index = page(notify_sandbox, "/sandbox/").text
    providers = page(notify_sandbox, "/sandbox/notify").text

    assert 'href="/sandbox/inbox"' in index and 'href="/sandbox/notify"' in index
    for name in ("Twilio", "Africa&#39;s Talking", "Infobip", "SendGrid", "Mailgun", "Amazon SES"):
        assert name in index and name in providers
    creds = notify_sandbox.credentials
    assert creds["twilio"]["auth_token"] in providers
    assert notify_sandbox.sendgrid_public_key in providers
    assert "+254799800001" in providers and "bounce@simulator.example.com" in providers


def test_the_providers_page_sets_webhooks_and_the_delay(notify_sandbox, receiver):
    base = notify_sandbox.base_url
    requests.post(
        f"{base}/sandbox/notify/mailgun/webhook", data={"url": receiver.url("mg")}, timeout=10
    )
    requests.post(
        f"{base}/sandbox/notify/settings",
        data={"delay": "", "duplicate_receipts": "on"},
        timeout=10,
    )
    refused = requests.post(
        f"{base}/sandbox/notify/mailgun/webhook", data={"url": "ftp://x"}, timeout=10
    )

    api = Providers(notify_sandbox)
    api.mailgun()
    notify_sandbox.flush()

    assert "invalid URL" in refused.text
    assert len(receiver.on("mg")) == 2  # duplicate receipts: the same body twice
    assert receiver.on("mg")[0].raw == receiver.on("mg")[1].raw


def test_receipts_can_flow_in_the_background(api, notify_sandbox, receiver):
    notify_sandbox.set_settings(delay=0.05)

    api.twilio(StatusCallback=receiver.url("status"))

    assert len(receiver.wait_for("status", count=2, timeout=5)) == 2


def test_the_control_api_lists_messages_and_deliveries(api, notify_sandbox, receiver):
    notify_sandbox.set_webhook("sendgrid", receiver.url("sg"))
    message_id = api.sendgrid(sendgrid_body()).headers["X-Message-Id"]
    api.twilio()

    delivered = notify_sandbox.flush()

    assert {d["provider"] for d in delivered} == {"sendgrid"}  # Twilio named no StatusCallback
    assert [m["provider"] for m in notify_sandbox.messages()] == ["sendgrid", "twilio"]
    assert notify_sandbox.messages(to=PHONE)[0]["provider"] == "twilio"
    assert notify_sandbox.message(message_id)["to"] == "member@example.com"
    [first, second] = notify_sandbox.deliveries("sendgrid")
    assert first["body_text"] == receiver.on("sg")[0].raw.decode()  # the exact bytes
    assert json.loads(first["body_text"]) == first["body"]
    assert first["headers"]["X-Twilio-Email-Event-Webhook-Signature"]
    assert (first["meta"]["status"], second["meta"]["status"]) == ("processed", "delivered")
    assert first["reference"] == message_id


def test_rotated_credentials_lock_out_the_old_key_until_reset(api, notify_sandbox):
    old = notify_sandbox.credentials["sendgrid"]["api_key"]
    notify_sandbox.set_credentials("sendgrid", api_key="SG.rotated.key")

    refused = api.sendgrid(sendgrid_body(), api_key=old)
    accepted = api.sendgrid(sendgrid_body(), api_key="SG.rotated.key")
    notify_sandbox.reset()

    assert (refused.status_code, accepted.status_code) == (401, 202)
    assert notify_sandbox.credentials["sendgrid"]["api_key"] == old
    assert notify_sandbox.messages() == []


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/sandbox/api/notify/twilio/webhook", {"url": "http://127.0.0.1:1/x"}),
        ("/sandbox/api/notify/mailgun/webhook", {"url": "not a url"}),
        ("/sandbox/api/notify/sendgrid/credentials", {"colour": "red"}),
        ("/sandbox/api/notify/settings", {"delay": "soon"}),
        ("/sandbox/api/notify/settings", {"sns_signature_version": "3"}),
        ("/sandbox/api/notify/settings", {"duplicate_receipts": "yes"}),
    ],
)
def test_control_changes_are_validated(notify_sandbox, path, body):
    response = requests.post(notify_sandbox.base_url + path, json=body, timeout=10)

    assert response.status_code == 400
    assert "error" in response.json()


def test_the_fixture_exposes_what_clients_and_verifiers_need(notify_sandbox):
    assert set(notify_sandbox.base_urls) == {
        "twilio",
        "africastalking",
        "infobip",
        "sendgrid",
        "mailgun",
        "ses",
    }
    assert set(notify_sandbox.base_urls.values()) == {notify_sandbox.base_url}
    creds = notify_sandbox.credentials
    assert set(creds["twilio"]) == {"account_sid", "auth_token"}
    assert set(creds["ses"]) == {"access_key_id", "secret_access_key", "region"}
    assert notify_sandbox.twilio_auth_token == creds["twilio"]["auth_token"]
    assert notify_sandbox.mailgun_signing_key == creds["mailgun"]["webhook_signing_key"]
    assert notify_sandbox.sns_certificate_pem.startswith(b"-----BEGIN CERTIFICATE-----")
    assert notify_sandbox.sendgrid_public_key_pem.startswith("-----BEGIN PUBLIC KEY-----")


def test_the_global_reset_cancels_held_receipts(api, notify_sandbox, receiver):
    api.twilio(StatusCallback=receiver.url("status"))

    notify_sandbox.reset()
    delivered = notify_sandbox.flush()

    assert delivered == [] and receiver.on("status") == []
