"""Africa's Talking on the sandbox: 201 with a status per recipient, whole-request failures
(notify.md §3.2) and unsigned delivery reports to the account's callback URL (§3.3)."""

import re
from urllib.parse import parse_qs

import pytest

from tests.sandbox.notify_support import PHONE, Providers, key_tree, sample_bytes, sample_json


@pytest.fixture
def api(notify_sandbox):
    return Providers(notify_sandbox)


def test_a_send_answers_201_with_each_recipients_status(api, notify_sandbox):
    response = api.africastalking(to=f"{PHONE},+254722000111")

    assert response.status_code == 201
    body = response.json()
    assert key_tree(body) == key_tree(sample_json("at_send_response.json"))
    recipients = body["SMSMessageData"]["Recipients"]
    assert [r["number"] for r in recipients] == [PHONE, "+254722000111"]
    for recipient in recipients:
        assert (recipient["statusCode"], recipient["status"]) == (101, "Success")
        assert recipient["cost"] == "KES 0.8000"
        assert re.fullmatch(r"ATXid_[0-9a-f]{32}", recipient["messageId"])
    assert body["SMSMessageData"]["Message"] == "Sent to 2/2 Total Cost: KES 1.6000"
    assert [m["id"] for m in notify_sandbox.messages("africastalking")] == [
        r["messageId"] for r in recipients
    ]


def test_enqueued_sends_report_status_code_102(api):
    recipient = api.africastalking(enqueue="1").json()["SMSMessageData"]["Recipients"][0]

    assert (recipient["statusCode"], recipient["status"]) == (102, "Success")
    assert key_tree(recipient) == key_tree(
        sample_json("at_send_response_recorded_201.json")["SMSMessageData"]["Recipients"][0]
    )


def test_bad_recipients_fail_inside_the_201(api, notify_sandbox):
    response = api.africastalking(to=f"{PHONE},0712345678,+254799800001,+254799800003")

    assert response.status_code == 201
    data = response.json()["SMSMessageData"]
    assert data["Message"] == "Sent to 1/4 Total Cost: KES 0.8000"
    assert [(r["statusCode"], r["status"]) for r in data["Recipients"]] == [
        (101, "Success"),
        (403, "InvalidPhoneNumber"),
        (403, "InvalidPhoneNumber"),
        (406, "UserInBlacklist"),
    ]
    assert data["Recipients"][1] == {
        "statusCode": 403,
        "number": "0712345678",
        "status": "InvalidPhoneNumber",
        "cost": "0",
        "messageId": "None",
    }
    assert len(notify_sandbox.messages("africastalking")) == 1


def test_an_invalid_sender_id_is_a_201_with_no_recipients(api, notify_sandbox):
    response = api.africastalking(**{"from": "BADSENDER"})

    assert response.status_code == 201
    assert response.json() == sample_json("at_send_response_invalid_sender.json")
    assert notify_sandbox.messages("africastalking") == []


@pytest.mark.parametrize("change", [{"api_key": "wrong"}, {"username": "someone-else"}])
def test_bad_credentials_answer_401_in_plain_text(api, change):
    response = api.africastalking(**change)

    assert response.status_code == 401
    assert response.headers["Content-Type"].startswith("text/plain")
    assert response.headers["WWW-Authenticate"] == 'Basic realm="api"'
    assert response.content == sample_bytes("at_send_error_401.txt").strip()


@pytest.mark.parametrize("field", ["username", "to", "message"])
def test_a_missing_field_is_a_400(api, field):
    response = api.africastalking(**{field: None})

    assert response.status_code == 400
    assert response.text == f"Request is missing required form field '{field}'"


def test_delivery_reports_go_to_the_account_callback_url_as_forms(api, notify_sandbox, receiver):
    notify_sandbox.set_webhook("africastalking", receiver.url("callbacks/notify/at/secret"))
    message_id = api.africastalking().json()["SMSMessageData"]["Recipients"][0]["messageId"]

    notify_sandbox.flush()

    posts = receiver.on("callbacks/notify/at/secret")
    reports = [parse_qs(p.raw.decode()) for p in posts]
    assert [r["status"] for r in reports] == [["Sent"], ["Success"]]
    sample = parse_qs(sample_bytes("at_delivery_report.txt").decode())
    for post, report in zip(posts, reports, strict=True):
        assert post.headers["Content-Type"] == "application/x-www-form-urlencoded"
        assert set(sample) <= set(report)
        assert report["id"] == [message_id]
        assert report["phoneNumber"] == [PHONE]
        assert (report["networkCode"], report["retryCount"]) == (["63902"], ["0"])
        assert "failureReason" not in report
        assert not any(h.lower().endswith("signature") for h in post.headers)


@pytest.mark.parametrize(
    ("number", "final", "reason"),
    [
        ("+254799800002", "Failed", ["UserDoesNotExist"]),
        ("+254799800004", "Buffered", None),
        ("+254799800005", "Expired", None),
    ],
)
def test_reserved_numbers_end_as_documented(api, notify_sandbox, receiver, number, final, reason):
    notify_sandbox.set_webhook("africastalking", receiver.url("dlr"))
    api.africastalking(to=number)

    notify_sandbox.flush()

    last = parse_qs(receiver.on("dlr")[-1].raw.decode())
    assert last["status"] == [final]
    assert last.get("failureReason") == reason


def test_without_a_callback_url_nothing_is_posted(api, notify_sandbox):
    api.africastalking()

    notify_sandbox.flush()

    assert notify_sandbox.deliveries("africastalking") == []
    message = notify_sandbox.messages("africastalking")[0]
    assert message["status"] == "Success"
    assert [r["note"] for r in message["receipts"]] == ["not posted: no callback URL"] * 2
