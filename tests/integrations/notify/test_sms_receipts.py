"""Delivery receipts of the three SMS providers: every published sample through its parser, and
each status mapped as notify.md §2.3, §3.3, §4.4 and §8.1 say (DELIVERED_TO_OPERATOR is not
delivered; which failures make the number one to suppress)."""

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from werkzeug.datastructures import MultiDict

from app.integrations.notify import africastalking, infobip, twilio
from app.integrations.notify.base import DeliveryStatus
from tests.integrations.notify.sms_samples import (
    NOT_SENT,
    RECEIPTS,
    SEND_ANSWERS,
    SEND_REQUESTS,
    SIGNATURES,
    sample_form,
    sample_json,
    sample_text,
    sms_sample_names,
)


def test_every_sms_sample_is_used_exactly_once():
    groups = SEND_ANSWERS + SEND_REQUESTS + RECEIPTS + SIGNATURES + NOT_SENT
    assert sorted(groups) == sms_sample_names()


# --- Twilio ------------------------------------------------------------------------------------


def test_twilio_sent_callback_sample():
    [receipt] = twilio.parse_receipts(sample_form("twilio_status_callback.txt"), {"ref": "41"})
    assert receipt.provider == "twilio"
    assert receipt.status == DeliveryStatus.SENT
    assert receipt.provider_message_id == "SM0b6e2697aae04182a9f5b5c7a8994c7f"
    assert receipt.reference == "41"
    assert receipt.recipient == "2021"
    assert receipt.error_code is None
    assert receipt.permanent is False
    assert receipt.event_id == "SM0b6e2697aae04182a9f5b5c7a8994c7f:sent"
    assert receipt.raw["MessagingServiceSid"] == "MGdb23ec0f89ee2632e46e91d8128f5e2b"


def test_twilio_stop_callback_sample_is_an_unsubscribe():
    [receipt] = twilio.parse_receipts(sample_form("twilio_status_callback_failed_21610.txt"))
    assert receipt.status == DeliveryStatus.UNSUBSCRIBED
    assert receipt.permanent is True
    assert receipt.error_code == "21610"
    assert receipt.recipient == "12028831111"
    assert receipt.reference is None  # no `ref` in the callback URL
    assert receipt.event_id == "SMe287d7109a5a925f182f0e07fe5b223b:failed:21610"


@pytest.mark.parametrize(
    ("message_status", "error_code", "expected", "permanent"),
    [
        ("queued", None, DeliveryStatus.QUEUED, False),
        ("accepted", None, DeliveryStatus.QUEUED, False),
        ("scheduled", None, DeliveryStatus.QUEUED, False),
        ("sent", None, DeliveryStatus.SENT, False),
        ("delivered", None, DeliveryStatus.DELIVERED, False),
        ("read", None, DeliveryStatus.DELIVERED, False),
        ("undelivered", "30006", DeliveryStatus.UNDELIVERED, True),  # landline / unreachable
        ("failed", "21211", DeliveryStatus.UNDELIVERED, True),  # invalid number
        ("undelivered", "30003", DeliveryStatus.FAILED, False),  # handset off: can be transient
        ("undelivered", "30007", DeliveryStatus.UNDELIVERED, False),  # carrier filtered
        ("failed", None, DeliveryStatus.UNDELIVERED, False),
    ],
)
def test_twilio_status_mapping(message_status, error_code, expected, permanent):
    form = {"MessageSid": "SM1", "MessageStatus": message_status, "To": "+254722000000"}
    if error_code:
        form["ErrorCode"] = error_code
    [receipt] = twilio.parse_receipts(form)
    assert (receipt.status, receipt.permanent) == (expected, permanent)
    assert receipt.recipient == "254722000000"


def test_twilio_unknown_status_is_skipped_and_a_non_callback_refused():
    assert twilio.parse_receipts({"MessageSid": "SM1", "MessageStatus": "teleported"}) == []
    with pytest.raises(ValueError, match="MessageSid"):
        twilio.parse_receipts({"Body": "hello"})


# --- Africa's Talking --------------------------------------------------------------------------


def test_at_success_report_sample_is_delivered():
    [receipt] = africastalking.parse_receipts(sample_form("at_delivery_report.txt"))
    assert receipt.provider == "africastalking"
    assert receipt.status == DeliveryStatus.DELIVERED
    assert receipt.provider_message_id == "ATXid_dda018a640edfcc5d2ce455de3e4a6e7"
    assert receipt.reference is None  # AT carries no id of ours (notify.md §8.2)
    assert receipt.event_id == "ATXid_dda018a640edfcc5d2ce455de3e4a6e7:Success"


def test_at_expired_report_sample_is_undelivered_not_suppressed():
    [receipt] = africastalking.parse_receipts(sample_form("at_delivery_report_expired.txt"))
    assert receipt.status == DeliveryStatus.UNDELIVERED
    assert receipt.permanent is False
    assert receipt.event_id.endswith(":Expired")


@pytest.mark.parametrize(
    ("status", "reason", "expected", "permanent"),
    [
        ("Sent", None, DeliveryStatus.SENT, False),
        ("Submitted", None, DeliveryStatus.SENT, False),
        ("Buffered", None, DeliveryStatus.SENT, False),
        ("DeliveredToOperator", None, DeliveryStatus.SENT, False),  # not on the phone yet
        ("Success", None, DeliveryStatus.DELIVERED, False),
        ("Rejected", "UserInBlackList", DeliveryStatus.UNSUBSCRIBED, True),
        ("Failed", "UserDoesNotExist", DeliveryStatus.UNDELIVERED, True),
        ("Failed", "InsufficientCredit", DeliveryStatus.FAILED, False),  # our account
        ("Failed", "DeliveryFailure", DeliveryStatus.UNDELIVERED, False),
        ("Failed", "UserIsInactive", DeliveryStatus.UNDELIVERED, False),
    ],
)
def test_at_status_mapping(status, reason, expected, permanent):
    form = {
        "id": "ATXid_1",
        "status": status,
        "phoneNumber": "+254722000000",
        "networkCode": "63902",
        "retryCount": "0",
    }
    if reason:
        form["failureReason"] = reason
    [receipt] = africastalking.parse_receipts(MultiDict(form))
    assert (receipt.status, receipt.permanent) == (expected, permanent)
    assert receipt.recipient == "254722000000"
    assert receipt.error_code == reason
    assert receipt.raw["networkCode"] == "63902"


def test_at_unknown_status_is_skipped_and_a_non_report_refused():
    assert africastalking.parse_receipts({"id": "ATXid_1", "status": "Teleported"}) == []
    with pytest.raises(ValueError, match="id and status"):
        africastalking.parse_receipts({"phoneNumber": "+254722000000"})


def test_at_opt_out_notification_unsubscribes_the_number():
    receipt = africastalking.parse_opt_out({"senderId": "DAYSTAR", "phoneNumber": "+254722000000"})
    assert receipt.status == DeliveryStatus.UNSUBSCRIBED
    assert receipt.permanent is True
    assert receipt.recipient == "254722000000"
    assert receipt.event_id == "opt-out:254722000000:DAYSTAR"
    with pytest.raises(ValueError):
        africastalking.parse_opt_out({"senderId": "DAYSTAR"})


# --- Infobip -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["infobip_delivery_report.json", "infobip_delivery_report_v3.json"]
)
def test_infobip_report_samples_are_delivered_with_their_price(name):
    [receipt] = infobip.parse_receipts(sample_text(name).encode())
    assert receipt.provider == "infobip"
    assert receipt.status == DeliveryStatus.DELIVERED
    assert receipt.provider_message_id == "MESSAGE-ID-123-xyz"
    assert receipt.recipient == "41793026727"
    assert receipt.cost == Decimal("0.01")
    assert receipt.currency == "EUR"
    assert receipt.error_code is None
    assert receipt.event_id == "MESSAGE-ID-123-xyz:5"
    assert receipt.occurred_at is not None and receipt.occurred_at.tzinfo is not None


def test_infobip_v2_sample_carries_callback_data_and_done_at():
    [receipt] = infobip.parse_receipts(sample_text("infobip_delivery_report.json"))
    assert receipt.reference == "my-callback-data"
    assert receipt.occurred_at == datetime(2019, 11, 9, 16, 1, tzinfo=UTC)
    json.dumps(receipt.raw)  # storable as it is in a JSON column


def test_infobip_v3_sample_without_callback_data_takes_the_message_id_as_reference():
    [receipt] = infobip.parse_receipts(sample_json("infobip_delivery_report_v3.json"))
    assert receipt.reference == "MESSAGE-ID-123-xyz"


def _report(status: dict, error: dict | None = None) -> dict:
    result = {"messageId": "42", "to": "254722000000", "callbackData": "42", "status": status}
    if error is not None:
        result["error"] = error
    return {"results": [result]}


OPERATOR = {"groupId": 3, "groupName": "DELIVERED", "id": 2, "name": "DELIVERED_TO_OPERATOR"}
HANDSET = {"groupId": 3, "groupName": "DELIVERED", "id": 5, "name": "DELIVERED_TO_HANDSET"}
PENDING = {"groupId": 1, "groupName": "PENDING", "id": 7, "name": "PENDING_ENROUTE"}
UNDELIVERABLE = {
    "groupId": 2,
    "groupName": "UNDELIVERABLE",
    "id": 9,
    "name": "UNDELIVERABLE_NOT_DELIVERED",
}
EXPIRED = {"groupId": 4, "groupName": "EXPIRED", "id": 15, "name": "EXPIRED_EXPIRED"}
REJECTED = {"groupId": 5, "groupName": "REJECTED", "id": 6, "name": "REJECTED_NETWORK"}
UNKNOWN_SUBSCRIBER = {"groupId": 1, "id": 1, "name": "EC_UNKNOWN_SUBSCRIBER", "permanent": True}
ABSENT_SUBSCRIBER = {"groupId": 1, "id": 27, "name": "EC_ABSENT_SUBSCRIBER", "permanent": False}
OPERATOR_ERROR = {"groupId": 3, "id": 2049, "name": "EC_NETWORK_ERROR", "permanent": True}


@pytest.mark.parametrize(
    ("status", "error", "expected", "permanent"),
    [
        (OPERATOR, None, DeliveryStatus.SENT, False),  # DELIVERED group, but not delivered
        (HANDSET, None, DeliveryStatus.DELIVERED, False),
        (PENDING, None, DeliveryStatus.SENT, False),
        (UNDELIVERABLE, UNKNOWN_SUBSCRIBER, DeliveryStatus.UNDELIVERED, True),
        (UNDELIVERABLE, ABSENT_SUBSCRIBER, DeliveryStatus.FAILED, False),
        (EXPIRED, ABSENT_SUBSCRIBER, DeliveryStatus.UNDELIVERED, False),
        (REJECTED, OPERATOR_ERROR, DeliveryStatus.UNDELIVERED, False),  # not the recipient's
        (
            {"groupName": "DELIVERED", "name": "DELIVERED_TO_OPERATOR"},
            None,
            DeliveryStatus.SENT,
            False,
        ),
    ],
)
def test_infobip_status_mapping(status, error, expected, permanent):
    [receipt] = infobip.parse_receipts(_report(status, error))
    assert (receipt.status, receipt.permanent) == (expected, permanent)
    assert receipt.reference == "42"
    if error:
        assert receipt.error_code == error["name"]


def test_infobip_posts_many_reports_at_once_and_skips_unknown_statuses():
    body = {
        "results": [
            _report(HANDSET)["results"][0],
            {**_report(OPERATOR)["results"][0], "messageId": "43"},
            {**_report({"groupId": 9, "name": "NEW"})["results"][0], "messageId": "44"},
        ]
    }
    receipts = infobip.parse_receipts(json.dumps(body))
    assert [(r.provider_message_id, r.status) for r in receipts] == [
        ("42", DeliveryStatus.DELIVERED),
        ("43", DeliveryStatus.SENT),
    ]


@pytest.mark.parametrize(
    "body", [b"not json", b"[]", b'{"results": {}}', b'{"results": [{"status": {}}]}']
)
def test_infobip_refuses_what_is_not_a_delivery_report(body):
    with pytest.raises(ValueError):
        infobip.parse_receipts(body)
