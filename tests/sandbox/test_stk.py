"""M-Pesa Express on the sandbox: field rules, password, answers, callbacks, outcome rules,
STK Query, the subscriber lock, and manual mode through the virtual phone page."""

import base64
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.sandbox.conftest import PHONE, TIMESTAMP, sample, shape

PUSH = "/mpesa/stkpush/v1/processrequest"


def push(daraja, receiver, **fields) -> dict:
    response = daraja.stk_push(receiver, **fields)
    assert response.status_code == 200, response.text
    return response.json()


def callback_of(receiver) -> dict:
    return receiver.on("stk")[-1].json["Body"]["stkCallback"]


def test_accepted_push_answers_like_the_sample(daraja, receiver):
    body = push(daraja, receiver)

    assert shape(body) == shape(sample("stk_push_response.json"))
    assert body["ResponseCode"] == "0"
    assert body["ResponseDescription"] == "Success. Request accepted for processing"
    assert re.fullmatch(r"ws_CO_\d{14}\d{3}712345678", body["CheckoutRequestID"])
    assert re.fullmatch(
        r"[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\d+", body["MerchantRequestID"]
    )


def test_the_sample_request_shape_is_accepted_with_numbers(daraja, receiver):
    """The official sample sends BusinessShortCode as a number and Amount as a string."""
    fields = sample("stk_push_request.json") | {
        "Password": daraja.password(),
        "Timestamp": TIMESTAMP,
        "BusinessShortCode": 174379,
        "PartyA": PHONE,
        "PhoneNumber": PHONE,
        "CallBackURL": receiver.url("stk"),
    }
    assert daraja.post(PUSH, fields).status_code == 200


def test_success_callback_matches_the_official_sample(daraja_sandbox, daraja, receiver):
    accepted = push(daraja, receiver, Amount=250)

    delivered = daraja_sandbox.flush()

    assert [d["kind"] for d in delivered] == ["stk_callback"]
    sent = receiver.on("stk")[0]
    assert sent.headers["Content-Type"] == "application/json"
    assert shape(sent.json) == shape(sample("stk_callback_success.json"))
    callback = sent.json["Body"]["stkCallback"]
    assert callback["CheckoutRequestID"] == accepted["CheckoutRequestID"]
    assert callback["MerchantRequestID"] == accepted["MerchantRequestID"]
    items = {item["Name"]: item.get("Value") for item in callback["CallbackMetadata"]["Item"]}
    assert b'"Value": 250.00' in sent.raw  # two decimals, as Daraja writes amounts
    assert items["PhoneNumber"] == 254712345678
    assert re.fullmatch(r"[A-Z][A-L][0-9A-V][0-9A-Z]{7}", items["MpesaReceiptNumber"])
    assert re.fullmatch(r"20\d{12}", str(items["TransactionDate"]))
    assert delivered[0]["status_code"] == 200
    assert delivered[0]["response_body"] == '{"ResultCode": 0, "ResultDesc": "Accepted"}'
    txn = daraja_sandbox.transaction(accepted["CheckoutRequestID"])
    assert (txn["status"], txn["receipt"]) == ("completed", items["MpesaReceiptNumber"])


def test_balance_item_without_value_can_be_included(daraja_sandbox, daraja, receiver):
    daraja_sandbox.set_mode(stk_balance_item=True)
    push(daraja, receiver)
    daraja_sandbox.flush()

    assert shape(receiver.on("stk")[0].json) == shape(
        sample("stk_callback_success_with_balance.json")
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("BusinessShortCode", "17A379"),
        ("BusinessShortCode", ""),
        ("Timestamp", "2026-01-01"),
        ("Timestamp", "20261301120000"),
        ("Password", ""),
        ("TransactionType", "CustomerPayBill"),
        ("Amount", "0"),
        ("Amount", "1.5"),
        ("Amount", "-5"),
        ("Amount", "abc"),
        ("Amount", 250001),
        ("Amount", None),
        ("Amount", True),
        ("PartyA", "0712345678"),
        ("PartyA", "254612345678"),
        ("PartyA", "2547123456789"),
        ("PartyB", "abc"),
        ("PhoneNumber", "+254712345678"),
        ("PhoneNumber", "25471234567"),
        ("CallBackURL", "mydomain.com/path"),
        ("CallBackURL", "https://my domain.com/path"),
        ("CallBackURL", "ftp://mydomain.com/path"),
        ("CallBackURL", ""),
        ("AccountReference", ""),
        ("AccountReference", "ABCDEFGHIJKLM"),
        ("TransactionDesc", "Fourteen chars"),
    ],
)
def test_each_field_rule_gives_invalid_field(daraja, receiver, field, value):
    response = daraja.stk_push(receiver, **{field: value})

    assert response.status_code == 400, response.text
    body = response.json()
    assert shape(body) == shape(sample("error_response.json"))
    assert body["errorCode"] == "400.002.02"
    assert body["errorMessage"] == f"Bad Request - Invalid {field}"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("Amount", 1),
        ("Amount", "1"),
        ("Amount", 250000),
        ("Amount", 7.0),
        ("PartyA", "254112345678"),
        ("PhoneNumber", "254112345678"),
        ("AccountReference", "ABCDEFGHIJKL"),
        ("TransactionDesc", "Thirteen char"),
        ("TransactionDesc", ""),
        ("CallBackURL", "http://127.0.0.1:9/callbacks/stk?x=1"),
        ("TransactionType", "CustomerBuyGoodsOnline"),
    ],
)
def test_values_at_the_limits_are_accepted(daraja, receiver, field, value):
    fields = {field: value}
    if field in ("PhoneNumber", "PartyA"):
        fields = {"PartyA": value, "PhoneNumber": value}
    assert daraja.stk_push(receiver, **fields).status_code == 200


def test_password_is_base64_of_shortcode_passkey_timestamp(daraja, receiver):
    passkey = daraja.credentials["passkey"]
    right = base64.b64encode(f"174379{passkey}20260202101010".encode()).decode()

    ok = daraja.stk_push(receiver, Password=right, Timestamp="20260202101010")
    other_timestamp = daraja.stk_push(receiver, Password=right, Timestamp="20260202101011")
    other_passkey = daraja.stk_push(
        receiver,
        Password=base64.b64encode(b"174379wrongpasskey20260101120000").decode(),
        PhoneNumber="254712000001",
    )
    not_base64 = daraja.stk_push(receiver, Password="%%%", PhoneNumber="254712000002")

    assert ok.status_code == 200
    for wrong in (other_timestamp, other_passkey, not_base64):
        assert wrong.status_code == 500
        assert wrong.json()["errorCode"] == "500.001.1001"
        assert wrong.json()["errorMessage"] == "Wrong credentials"


def test_the_public_sandbox_passkey_is_the_default(daraja):
    assert daraja.credentials["passkey"] == (
        "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"
    )


def test_an_unknown_shortcode_is_merchant_does_not_exist(daraja, receiver):
    response = daraja.stk_push(
        receiver, BusinessShortCode="999999", Password=daraja.password(shortcode="999999")
    )

    assert response.status_code == 500
    assert response.json()["errorMessage"] == "Merchant does not exist"


def test_a_second_prompt_on_a_busy_phone_cannot_lock_the_subscriber(
    daraja_sandbox, daraja, receiver
):
    push(daraja, receiver)

    busy = daraja.stk_push(receiver)
    other_phone = daraja.stk_push(receiver, PartyA="254712000009", PhoneNumber="254712000009")
    daraja_sandbox.flush()
    after = daraja.stk_push(receiver)

    assert busy.status_code == 500
    assert busy.json()["errorCode"] == "500.001.1001"
    assert busy.json()["errorMessage"] == (
        "Unable to lock subscriber, a transaction is already in process for the current subscriber"
    )
    assert other_phone.status_code == 200
    assert after.status_code == 200


def test_query_says_being_processed_until_the_customer_answers(daraja_sandbox, daraja, receiver):
    checkout_id = push(daraja, receiver)["CheckoutRequestID"]

    before = daraja.stk_query(checkout_id)
    daraja_sandbox.flush()
    after = daraja.stk_query(checkout_id)

    assert before.status_code == 500
    assert before.json() == {
        "requestId": checkout_id,
        "errorCode": "500.001.1001",
        "errorMessage": "The transaction is being processed",
    }
    assert shape(before.json()) == shape(sample("stk_query_processing_error.json"))
    assert after.status_code == 200
    assert shape(after.json()) == shape(sample("stk_query_response.json"))
    assert after.json()["ResultCode"] == "0"
    assert after.json()["CheckoutRequestID"] == checkout_id


def test_query_checks_password_and_checkout_id(daraja, receiver):
    checkout_id = push(daraja, receiver)["CheckoutRequestID"]

    wrong_password = daraja.stk_query(checkout_id, Password=daraja.password("20250101000000"))
    unknown = daraja.stk_query("ws_CO_000")
    missing = daraja.stk_query("")

    assert wrong_password.json()["errorMessage"] == "Wrong credentials"
    assert unknown.json()["errorMessage"] == "Bad Request - Invalid CheckoutRequestID"
    assert missing.status_code == 400


@pytest.mark.parametrize(
    ("phone", "code", "desc", "sample_name"),
    [
        ("254799000001", 1, "The balance is insufficient for the transaction.", None),
        ("254799001032", 1032, "Request cancelled by user", "stk_callback_cancelled.json"),
        (
            "254799002001",
            2001,
            "The initiator information is invalid.",
            "stk_callback_wrong_pin.json",
        ),
        ("254799001037", 1037, "DS timeout user cannot be reached", "stk_callback_ds_timeout.json"),
        (
            "254799001036",
            1036,
            "[STK_CB - ]SMSC ACK timeout.",
            "stk_callback_smsc_ack_timeout.json",
        ),
        (
            "254799002028",
            2028,
            "The request is not permitted according to product assignment.",
            None,
        ),
    ],
)
def test_test_phone_numbers_choose_the_failure(
    daraja_sandbox, daraja, receiver, phone, code, desc, sample_name
):
    checkout_id = push(daraja, receiver, PartyA=phone, PhoneNumber=phone)["CheckoutRequestID"]

    daraja_sandbox.flush()
    query = daraja.stk_query(checkout_id).json()

    callback = callback_of(receiver)
    assert (callback["ResultCode"], callback["ResultDesc"]) == (code, desc)
    assert "CallbackMetadata" not in callback
    if sample_name:
        assert shape(receiver.on("stk")[0].json) == shape(sample(sample_name))
    assert (query["ResultCode"], query["ResultDesc"]) == (str(code), desc)
    assert daraja_sandbox.transaction(checkout_id)["status"] == "failed"
    assert daraja_sandbox.transaction(checkout_id)["receipt"] == ""


def test_an_ordinary_phone_succeeds(daraja_sandbox, daraja, receiver):
    push(daraja, receiver, PartyA="254799123456", PhoneNumber="254799123456")
    daraja_sandbox.flush()

    assert callback_of(receiver)["ResultCode"] == 0


def test_lost_callback_is_never_sent_but_query_tells_the_truth(daraja_sandbox, daraja, receiver):
    checkout_id = push(daraja, receiver, PartyA="254799009999", PhoneNumber="254799009999")[
        "CheckoutRequestID"
    ]

    delivered = daraja_sandbox.flush()

    assert receiver.on("stk") == []
    assert delivered[0]["dropped"] is True
    assert delivered[0]["body"]["Body"]["stkCallback"]["ResultCode"] == 0
    assert daraja.stk_query(checkout_id).json()["ResultCode"] == "0"


def test_a_paybill_push_to_another_partyb_is_not_permitted(daraja_sandbox, daraja, receiver):
    push(daraja, receiver, PartyB="600000")
    daraja_sandbox.flush()

    assert callback_of(receiver)["ResultCode"] == 2028


def test_forced_outcome_overrides_the_phone_rules(daraja_sandbox, daraja, receiver):
    daraja_sandbox.set_mode(stk_outcome="cancelled")
    push(daraja, receiver)
    daraja_sandbox.flush()

    assert callback_of(receiver)["ResultCode"] == 1032


def test_drop_and_duplicate_modes(daraja_sandbox, daraja, receiver):
    daraja_sandbox.set_mode(duplicate_callbacks=True)
    push(daraja, receiver)
    twice = daraja_sandbox.flush()
    daraja_sandbox.set_mode(duplicate_callbacks=False, drop_callbacks=True)
    push(daraja, receiver, PartyA="254712000077", PhoneNumber="254712000077")
    dropped = daraja_sandbox.flush()

    assert [d["copy"] for d in twice] == [1, 2]
    assert len(receiver.on("stk")) == 2
    assert receiver.on("stk")[0].raw == receiver.on("stk")[1].raw
    assert [d["dropped"] for d in dropped] == [True]
    assert len(receiver.on("stk")) == 2


def test_the_receivers_failure_is_recorded(daraja_sandbox, daraja, receiver):
    receiver.answer("stk", {"error": "boom"}, status=503)
    push(daraja, receiver)

    delivered = daraja_sandbox.flush()

    assert delivered[0]["status_code"] == 503
    assert delivered[0]["ok"] is False
    assert daraja_sandbox.deliveries("stk_callback")[0]["response_body"] == '{"error": "boom"}'


def test_an_unreachable_callback_url_is_recorded_not_raised(daraja_sandbox, daraja, receiver):
    push(daraja, receiver, CallBackURL="http://127.0.0.1:9/nothing-listens")

    delivered = daraja_sandbox.flush()

    assert delivered[0]["status_code"] is None
    assert "ConnectionError" in delivered[0]["error"]


def test_callbacks_are_sent_after_the_delay_without_flush(daraja_sandbox, daraja, receiver):
    daraja_sandbox.set_mode(delay=0.1)
    push(daraja, receiver)

    received = receiver.wait_for("stk")

    assert received[0].json["Body"]["stkCallback"]["ResultCode"] == 0


# --- manual mode and the virtual phone ---------------------------------------------------------
def test_manual_prompts_wait_for_the_phone_and_flush_does_not_answer_them(
    daraja_sandbox, daraja, receiver
):
    daraja_sandbox.set_mode(mode="manual")
    checkout_id = push(daraja, receiver)["CheckoutRequestID"]

    assert daraja_sandbox.flush() == []
    assert (
        daraja.stk_query(checkout_id).json()["errorMessage"] == "The transaction is being processed"
    )

    daraja_sandbox.press(checkout_id, "wrong_pin")
    delivered = daraja_sandbox.flush()

    assert callback_of(receiver)["ResultCode"] == 2001
    assert [d["kind"] for d in delivered] == ["stk_callback"]
    assert daraja.stk_query(checkout_id).json()["ResultCode"] == "2001"


@pytest.mark.parametrize(
    ("action", "code"),
    [
        ("pay", 0),
        ("cancel", 1032),
        ("wrong_pin", 2001),
        ("insufficient_funds", 1),
        ("timeout", 1037),
    ],
)
def test_phone_page_buttons_settle_the_prompt(daraja_sandbox, daraja, receiver, action, code):
    daraja_sandbox.set_mode(mode="manual")
    checkout_id = push(daraja, receiver, Amount=75)["CheckoutRequestID"]
    page = requests.get(f"{daraja_sandbox.base_url}/sandbox/phone", timeout=10)
    assert f'id="prompt-{checkout_id}"' in page.text
    assert "Ksh 75" in page.text and "LN-000123" in page.text

    # A plain HTML form post, as a browser without JavaScript sends it.
    pressed = requests.post(
        f"{daraja_sandbox.base_url}/sandbox/phone/{checkout_id}",
        data={"action": action, "phone": ""},
        timeout=10,
    )
    daraja_sandbox.flush()

    assert pressed.status_code == 200  # followed the redirect back to the phone page
    assert f'id="prompt-{checkout_id}"' not in pressed.text
    assert 'id="message"' in pressed.text
    assert callback_of(receiver)["ResultCode"] == code


def test_pressing_twice_or_an_unknown_prompt_is_refused(daraja_sandbox, daraja, receiver):
    daraja_sandbox.set_mode(mode="manual")
    checkout_id = push(daraja, receiver)["CheckoutRequestID"]
    daraja_sandbox.press(checkout_id, "pay")
    api = f"{daraja_sandbox.base_url}/sandbox/api/daraja/stk"

    again = requests.post(f"{api}/{checkout_id}/press", json={"action": "cancel"}, timeout=10)
    unknown = requests.post(f"{api}/ws_CO_nothing/press", json={"action": "pay"}, timeout=10)
    bad_action = requests.post(f"{api}/{checkout_id}/press", json={"action": "dance"}, timeout=10)

    assert again.status_code == 409
    assert unknown.status_code == 404
    assert bad_action.status_code == 400
    assert "action must be one of" in bad_action.json()["error"]


def test_the_no_answer_test_phone_waits_on_the_phone_in_auto_mode(daraja_sandbox, daraja, receiver):
    checkout_id = push(daraja, receiver, PartyA="254799009998", PhoneNumber="254799009998")[
        "CheckoutRequestID"
    ]

    assert daraja_sandbox.flush() == []
    daraja_sandbox.press(checkout_id, "pay")
    daraja_sandbox.flush()

    assert callback_of(receiver)["ResultCode"] == 0


def test_phone_page_filters_by_phone(daraja_sandbox, daraja, receiver):
    daraja_sandbox.set_mode(mode="manual")
    push(daraja, receiver)
    push(daraja, receiver, PartyA="254712000055", PhoneNumber="254712000055")

    page = requests.get(
        f"{daraja_sandbox.base_url}/sandbox/phone", params={"phone": "254712000055"}, timeout=10
    ).text

    assert 'id="phone-254712000055"' in page
    assert f'id="phone-{PHONE}"' not in page


def test_concurrent_pushes_to_one_phone_lock_it_once(daraja_sandbox, daraja, receiver):
    body = daraja.stk_body(receiver)
    url, headers = f"{daraja.base_url}{PUSH}", {"Authorization": f"Bearer {daraja.token}"}
    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(
            pool.map(
                lambda _: requests.post(url, json=body, headers=headers, timeout=10).status_code,
                range(10),
            )
        )

    assert sorted(statuses) == [200] + [500] * 9
    assert len(daraja_sandbox.transactions("stk")) == 1
