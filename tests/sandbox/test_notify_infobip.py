"""Infobip on the sandbox: v3 and v2 sends (notify.md §4.2, §4.3), error bodies (§4.5) and
delivery reports in each version's shape (§4.6), where DELIVERED_TO_OPERATOR is not final."""

import json

import pytest

from tests.sandbox.notify_support import (
    Providers,
    infobip_v2_body,
    infobip_v3_body,
    key_tree,
    sample_json,
)


@pytest.fixture
def api(notify_sandbox):
    return Providers(notify_sandbox)


def test_a_v3_send_answers_like_the_sample(api, notify_sandbox):
    response = api.infobip(infobip_v3_body())

    assert response.status_code == 200
    body = response.json()
    assert key_tree(body) == key_tree(sample_json("infobip_send_response_v3.json"))
    entry = body["messages"][0]
    sample_entry = sample_json("infobip_send_response_v3.json")["messages"][0]
    assert entry["status"] == sample_entry["status"]  # PENDING / MESSAGE_ACCEPTED
    assert (entry["messageId"], entry["destination"]) == ("N-42", "254712345678")
    assert entry["details"] == {"messageCount": 1}
    assert notify_sandbox.messages("infobip")[0]["id"] == "N-42"


def test_a_v2_send_answers_like_the_sample(api):
    body = api.infobip(infobip_v2_body(), version=2).json()

    assert key_tree(body) == key_tree(sample_json("infobip_send_response_v2.json"))
    assert body["messages"][0]["to"] == "254712345678"
    assert body["messages"][0]["status"]["name"] == "MESSAGE_ACCEPTED"


def test_the_reference_requests_are_accepted_as_they_stand(api):
    v3 = api.infobip(sample_json("infobip_send_request_v3.json"))
    v2 = api.infobip(sample_json("infobip_send_request_v2.json"), version=2)

    assert v3.status_code == v2.status_code == 200
    assert v3.json()["messages"][0]["destination"] == "41793026727"
    assert "smsCount" not in v2.json()["messages"][0]  # includeSmsCountInResponse: false


def test_an_id_is_made_when_none_is_given(api):
    body = infobip_v3_body()
    del body["messages"][0]["destinations"][0]["messageId"]

    entry = api.infobip(body).json()["messages"][0]

    assert len(entry["messageId"]) >= 30


def test_an_invalid_destination_is_rejected_inside_the_200(api, notify_sandbox):
    entry = api.infobip(infobip_v3_body(to="254799800001")).json()["messages"][0]

    assert entry["status"] == {
        "groupId": 5,
        "groupName": "REJECTED",
        "id": 52,
        "name": "REJECTED_DESTINATION",
        "description": "Invalid destination address.",
    }
    assert notify_sandbox.messages("infobip") == []


def test_a_v2_validation_error_has_the_reference_shape(api):
    body = infobip_v2_body()
    body["messages"][0]["destinations"] = []

    response = api.infobip(body, version=2)

    assert response.status_code == 400
    assert response.json() == sample_json("infobip_error_response.json")


def test_a_v3_validation_error_is_an_api_error(api):
    body = infobip_v3_body()
    body["messages"][0]["destinations"] = []

    response = api.infobip(body)

    assert response.status_code == 400
    error = response.json()
    assert list(error) == ["errorCode", "description", "action", "violations", "resources"]
    assert error["violations"] == [
        {"property": "messages[0].destinations", "violation": "must not be empty"}
    ]


@pytest.mark.parametrize("version", [2, 3])
def test_a_wrong_key_is_a_401(api, version):
    body = infobip_v3_body() if version == 3 else infobip_v2_body()

    response = api.infobip(body, version=version, api_key="nope")

    assert response.status_code == 401
    if version == 2:
        assert response.json() == {
            "requestError": {
                "serviceException": {"messageId": "UNAUTHORIZED", "text": "Invalid login details"}
            }
        }
    else:
        assert response.json()["errorCode"] == "E401"


def test_v3_reports_go_to_the_message_webhook_in_the_v3_shape(api, notify_sandbox, receiver):
    body = infobip_v3_body(
        webhooks={"delivery": {"url": receiver.url("ib/dlr")}, "callbackData": "N-42"},
        options={"platform": {"entityId": "e1", "applicationId": "a1"}},
    )
    api.infobip(body)

    notify_sandbox.flush()

    [post] = receiver.on("ib/dlr")
    assert post.headers["Content-Type"] == "application/json"
    report = json.loads(post.raw)
    sample = sample_json("infobip_delivery_report_v3.json")
    assert set(report["results"][0]) == set(sample["results"][0]) | {"callbackData"}
    result = report["results"][0]
    assert result["status"] == sample["results"][0]["status"]  # DELIVERED_TO_HANDSET
    assert (result["messageId"], result["to"], result["sender"]) == (
        "N-42",
        "254712345678",
        "DAYSTAR",
    )
    assert (result["callbackData"], result["platform"]) == (
        "N-42",
        {"entityId": "e1", "applicationId": "a1"},
    )
    assert result["error"]["name"] == "NO_ERROR"
    assert result["price"] == {"pricePerMessage": 0.8, "currency": "KES"}


def test_v2_reports_go_to_notify_url_in_the_v2_shape(api, notify_sandbox, receiver):
    api.infobip(infobip_v2_body(notifyUrl=receiver.url("ib/v2"), callbackData="cb"), version=2)

    notify_sandbox.flush()

    result = json.loads(receiver.on("ib/v2")[0].raw)["results"][0]
    sample = sample_json("infobip_delivery_report.json")["results"][0]
    assert set(result) == set(sample) - {"entityId", "applicationId"}
    assert result["status"]["name"] == "DELIVERED_TO_HANDSET"
    assert (result["from"], result["smsCount"], result["callbackData"]) == ("DAYSTAR", 1, "cb")


def test_reports_fall_back_to_the_account_url(api, notify_sandbox, receiver):
    notify_sandbox.set_webhook("infobip", receiver.url("account"))
    api.infobip(infobip_v3_body())

    notify_sandbox.flush()

    assert len(receiver.on("account")) == 1


def test_intermediate_reports_come_first_when_asked_for(api, notify_sandbox, receiver):
    webhooks = {"delivery": {"url": receiver.url("dlr"), "intermediateReport": True}}
    api.infobip(infobip_v3_body(webhooks=webhooks))

    notify_sandbox.flush()

    names = [json.loads(p.raw)["results"][0]["status"]["name"] for p in receiver.on("dlr")]
    assert names == ["PENDING_ENROUTE", "DELIVERED_TO_HANDSET"]


@pytest.mark.parametrize(
    ("to", "status", "error", "permanent"),
    [
        ("254799800002", "UNDELIVERABLE_NOT_DELIVERED", "EC_UNKNOWN_SUBSCRIBER", True),
        ("254799800004", "DELIVERED_TO_OPERATOR", "NO_ERROR", False),
        ("254799800005", "EXPIRED_EXPIRED", "EC_ABSENT_SUBSCRIBER", False),
    ],
)
def test_reserved_numbers_end_as_documented(
    api, notify_sandbox, receiver, to, status, error, permanent
):
    api.infobip(infobip_v3_body(to=to, webhooks={"delivery": {"url": receiver.url("dlr")}}))

    notify_sandbox.flush()

    result = json.loads(receiver.on("dlr")[-1].raw)["results"][0]
    assert result["status"]["name"] == status
    assert (result["error"]["name"], result["error"]["permanent"]) == (error, permanent)
    if status == "DELIVERED_TO_OPERATOR":
        assert (result["status"]["groupName"], result["status"]["id"]) == ("DELIVERED", 2)
