"""Twilio on the sandbox: the Messages API's answers (notify.md §2.1, §2.2) and signed status
callbacks (§2.4, §2.5), checked against the reference samples."""

import re
from urllib.parse import parse_qs

import pytest
import requests

from tests.sandbox.notify_support import (
    PHONE,
    Providers,
    key_tree,
    sample_bytes,
    sample_json,
    twilio_signature,
)


@pytest.fixture
def api(notify_sandbox):
    return Providers(notify_sandbox)


def test_the_signature_check_used_here_reproduces_twilios_published_vector():
    vector = sample_json("twilio_signature_test_vector.json")
    params = {k: [v] for k, v in vector["params"].items()}

    assert (
        twilio_signature(vector["auth_token"], vector["url"], params)
        == vector["expected_signature"]
    )


def test_a_send_answers_201_with_the_message_resource(api, notify_sandbox):
    response = api.twilio(Body="Hello! 👍")

    assert response.status_code == 201
    assert response.headers["Content-Type"] == "application/json"
    resource = response.json()
    assert key_tree(resource) == key_tree(sample_json("twilio_send_response.json"))
    assert re.fullmatch(r"SM[0-9a-f]{32}", resource["sid"])
    sid, account = resource["sid"], notify_sandbox.credentials["twilio"]["account_sid"]
    assert resource | {"date_created": None, "date_updated": None} == {
        "account_sid": account,
        "api_version": "2010-04-01",
        "body": "Hello! 👍",
        "date_created": None,
        "date_sent": None,
        "date_updated": None,
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": "+15005550006",
        "messaging_service_sid": None,
        "num_media": "0",
        "num_segments": "1",
        "price": None,
        "price_unit": None,
        "sid": sid,
        "status": "queued",
        "subresource_uris": {"media": f"/2010-04-01/Accounts/{account}/Messages/{sid}/Media.json"},
        "tags": {},
        "to": PHONE,
        "uri": f"/2010-04-01/Accounts/{account}/Messages/{sid}.json",
    }
    assert re.fullmatch(r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d \+0000", resource["date_created"])
    assert notify_sandbox.messages("twilio")[0]["id"] == sid


def test_a_messaging_service_send_starts_accepted_without_a_from(api):
    resource = api.twilio(From=None, MessagingServiceSid="MG" + "a" * 32).json()

    assert (resource["status"], resource["from"]) == ("accepted", None)
    assert resource["messaging_service_sid"] == "MG" + "a" * 32


def test_segments_follow_the_encoding(api):
    gsm = api.twilio(Body="x" * 161).json()
    ucs2 = api.twilio(Body="Habari 😀 " + "y" * 62).json()

    assert gsm["num_segments"] == "2"
    assert ucs2["num_segments"] == "2"


def test_wrong_credentials_answer_401_in_twilios_words(api, notify_sandbox):
    account = notify_sandbox.credentials["twilio"]["account_sid"]

    response = api.twilio(auth=(account, "0" * 32))

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="Twilio API"'
    assert response.json() == {
        "code": 20003,
        "detail": "Your AccountSid or AuthToken was incorrect.",
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }
    assert notify_sandbox.messages("twilio") == []


def test_another_accounts_path_is_not_found(api):
    response = api.twilio(account_sid="AC" + "0" * 32)

    assert response.status_code == 404
    assert response.json()["code"] == 20404


@pytest.mark.parametrize(
    ("form", "code", "message"),
    [
        ({"To": None}, 21604, "A 'To' phone number is required."),
        ({"From": None}, 21603, "A 'From' phone number is required."),
        ({"Body": None}, 21602, "Message body is required."),
        (
            {"Body": "x" * 1601},
            21617,
            "The concatenated message body exceeds the 1600 character limit.",
        ),
        ({"To": "0712345678"}, 21211, "The 'To' number 0712345678 is not a valid phone number."),
        (
            {"To": "+254799800001"},
            21211,
            "The 'To' number +254799800001 is not a valid phone number.",
        ),
        ({"To": "+254799800003"}, 21610, "Attempt to send to unsubscribed recipient"),
        (
            {"StatusCallback": "not a url"},
            21609,
            "The StatusCallback URL not a url is not a valid URL.",
        ),
    ],
)
def test_refusals_use_twilios_legacy_error_body(api, notify_sandbox, form, code, message):
    response = api.twilio(**form)

    assert response.status_code == 400
    body = response.json()
    assert set(body) == set(sample_json("twilio_error_response.json")) - {"details"}
    assert body == {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": 400,
    }
    assert notify_sandbox.messages("twilio") == []


def test_status_callbacks_are_signed_over_the_full_url_and_every_field(
    api, notify_sandbox, receiver
):
    url = receiver.url("callbacks/notify/twilio/status") + "?notification=N-42"
    sid = api.twilio(StatusCallback=url).json()["sid"]

    delivered = notify_sandbox.flush()

    posts = receiver.on("callbacks/notify/twilio/status")
    assert [d["body"]["MessageStatus"] for d in delivered] == ["sent", "delivered"]
    assert len(posts) == 2
    token = notify_sandbox.twilio_auth_token
    for post in posts:
        assert post.headers["Content-Type"] == "application/x-www-form-urlencoded"
        fields = parse_qs(post.raw.decode(), keep_blank_values=True)
        assert post.headers["X-Twilio-Signature"] == twilio_signature(token, url, fields)
        tampered = fields | {"MessageStatus": ["failed"]}
        assert post.headers["X-Twilio-Signature"] != twilio_signature(token, url, tampered)
        assert fields["MessageSid"] == fields["SmsSid"] == [sid]
        assert fields["To"] == [PHONE]
        assert fields["AccountSid"] == [notify_sandbox.credentials["twilio"]["account_sid"]]
    sample_fields = set(parse_qs(sample_bytes("twilio_status_callback.txt").decode()))
    sent = parse_qs(posts[0].raw.decode())
    # The sample's fields, plus SmsSid (notify.md §2.4 lists it among the observed ones).
    assert set(sent) == (sample_fields - {"MessagingServiceSid"}) | {"SmsSid"}
    final = parse_qs(posts[1].raw.decode())
    assert final["MessageStatus"] == ["delivered"]
    assert re.fullmatch(r"\d{10}", final["RawDlrDoneDate"][0])


def test_the_resource_follows_the_callbacks(api, notify_sandbox):
    sid = api.twilio().json()["sid"]
    account = notify_sandbox.credentials["twilio"]
    url = f"{notify_sandbox.base_url}/2010-04-01/Accounts/{account['account_sid']}/Messages/{sid}.json"

    notify_sandbox.flush()
    resource = requests.get(url, auth=(account["account_sid"], account["auth_token"]), timeout=10)

    assert resource.json()["status"] == "delivered"
    assert resource.json()["price"] == "-0.05000"
    assert resource.json()["date_sent"] is not None
    # Without a StatusCallback nothing is posted, yet the receipts are kept on the message.
    receipts = notify_sandbox.message(sid)["receipts"]
    assert [r["status"] for r in receipts] == ["sent", "delivered"]
    assert {r["note"] for r in receipts} == {"not posted: no callback URL"}
    assert notify_sandbox.deliveries("twilio") == []


def test_an_undeliverable_number_ends_undelivered_with_error_30006(api, notify_sandbox, receiver):
    url = receiver.url("status")
    api.twilio(To="+254799800002", StatusCallback=url)

    notify_sandbox.flush()

    final = parse_qs(receiver.on("status")[-1].raw.decode())
    assert (final["MessageStatus"], final["ErrorCode"]) == (["undelivered"], ["30006"])
    assert set(parse_qs(sample_bytes("twilio_status_callback_failed_21610.txt").decode())) <= set(
        final
    )


def test_a_number_without_a_handset_report_stays_sent(api, notify_sandbox, receiver):
    api.twilio(To="+254799800004", StatusCallback=receiver.url("status"))

    notify_sandbox.flush()

    assert [parse_qs(p.raw.decode())["MessageStatus"] for p in receiver.on("status")] == [["sent"]]
