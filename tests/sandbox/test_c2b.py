"""C2B on the sandbox: URL registration (v1 and v2) and its rules, and a paybill payment through
validation and confirmation, accepted, rejected or defaulted."""

import hashlib

import pytest
import requests

from tests.sandbox.conftest import (
    Daraja,
    certificate_of,
    credentials_of,
    flush,
    sample,
    serve,
    shape,
)
from tests.sandbox.receiver import CallbackReceiver

PHONE = "254712345126"


def test_register_v1_and_v2_answer_like_their_samples(daraja_sandbox, daraja, receiver):
    v1 = daraja.register(receiver, "v1")
    v2 = daraja.register(receiver, "v2")

    assert v1.status_code == v2.status_code == 200
    assert shape(v1.json()) == shape(sample("c2b_register_url_v1_response.json"))
    assert v1.json()["ResponseDescription"] == "success"
    assert shape(v2.json()) == shape(sample("c2b_register_url_response.json"))
    assert v2.json()["ResponseDescription"] == "Success"
    registered = requests.get(
        f"{daraja_sandbox.base_url}/sandbox/api/daraja/c2b/registrations", timeout=10
    ).json()["174379"]
    assert registered["version"] == "v2"
    assert registered["validation_url"] == receiver.url("c2b/validation")


@pytest.mark.parametrize(
    "response_type", ["completed", "Canceled", "Either Cancelled or Completed", ""]
)
def test_response_type_must_be_exactly_completed_or_cancelled(daraja, receiver, response_type):
    response = daraja.register(receiver, ResponseType=response_type)

    assert response.status_code == 400
    assert response.json()["errorCode"] == "400.003.02"
    assert response.json()["errorMessage"] == "Bad Request - Invalid ResponseType"


@pytest.mark.parametrize(
    ("path", "word"),
    [
        ("callbacks/mpesa/c2b", "MPESA"),
        ("callbacks/M-Pesa/c2b", "M-PESA"),
        ("safaricom/confirm", "SAFARICOM"),
        ("run.exe", "EXE"),
        ("exec/confirm", "EXEC"),
        ("cmd", "CMD"),
        ("sql/c2b", "SQL"),
        ("c2b?query=1", "QUERY"),
    ],
)
def test_urls_with_forbidden_words_are_refused(daraja, receiver, path, word):
    response = daraja.register(receiver, ValidationURL=receiver.url(path))

    assert response.status_code == 400
    assert response.json() | {"requestId": ""} == {
        "requestId": "",
        "errorCode": "400.003.02",
        "errorMessage": f"Bad Request - Invalid ValidationURL - URL has the word {word}",
    }


def test_confirmation_url_is_checked_too_and_loopback_http_is_fine(daraja, receiver):
    bad = daraja.register(receiver, ConfirmationURL="https://abc.ngrok.io/c2b")
    loopback = daraja.register(receiver, ConfirmationURL="http://127.0.0.1:5000/callbacks/c/c2b")

    assert bad.json()["errorMessage"] == (
        "Bad Request - Invalid ConfirmationURL - URL has the word NGROK"
    )
    assert loopback.status_code == 200


def test_an_unknown_shortcode_cannot_register(daraja, receiver):
    response = daraja.register(receiver, ShortCode="123456")

    assert response.json()["errorMessage"] == "Bad Request - Invalid ShortCode"


def test_a_version_the_app_lacks_is_no_api_product_match():
    with serve(SANDBOX_DARAJA_C2B_VERSIONS="v2") as url, CallbackReceiver() as receiver:
        client = Daraja(url, credentials_of(url), certificate_of(url))
        v1 = client.register(receiver, "v1")
        v2 = client.register(receiver, "v2")

    assert v1.status_code == 401
    assert v1.json() | {"requestId": ""} == sample("error_no_apiproduct_match.json") | {
        "requestId": ""
    }
    assert v2.status_code == 200


def test_simulate_validates_then_confirms(daraja_sandbox, daraja, receiver):
    daraja.register(receiver)
    daraja_sandbox.register_customer(PHONE, "Nicholas Songok")
    simulated = daraja.post(
        "/mpesa/c2b/v2/simulate",
        {
            "ShortCode": 174379,
            "CommandID": "CustomerPayBillOnline",
            "Amount": 500,
            "Msisdn": int(PHONE),
            "BillRefNumber": "M-000042",
        },
    )

    delivered = daraja_sandbox.flush()

    assert simulated.status_code == 200
    assert shape(simulated.json()) == shape(sample("c2b_simulate_response.json"))
    assert [d["kind"] for d in delivered] == ["c2b_validation", "c2b_confirmation"]
    validation = receiver.on("c2b/validation")[0].json
    confirmation = receiver.on("c2b/confirmation")[0].json
    assert shape(confirmation) == shape(sample("c2b_confirmation.json"))
    assert shape(validation) == shape(sample("c2b_validation.json"))
    assert validation["OrgAccountBalance"] == ""
    assert confirmation["TransID"] == validation["TransID"]
    assert confirmation | {"TransID": "", "TransTime": ""} == {
        "TransactionType": "Pay Bill",
        "TransID": "",
        "TransTime": "",
        "TransAmount": "500.00",
        "BusinessShortCode": "174379",
        "BillRefNumber": "M-000042",
        "InvoiceNumber": "",
        "OrgAccountBalance": "1000495.00",  # + 500 - the 5.00 charge
        "ThirdPartyTransID": "",
        "MSISDN": "2547 ***** 126",
        "FirstName": "NICHOLAS",
        "MiddleName": "",
        "LastName": "SONGOK",
    }
    assert daraja_sandbox.transaction(confirmation["TransID"])["status"] == "completed"


def test_the_control_api_simulates_a_payment(daraja_sandbox, daraja, receiver):
    daraja.register(receiver)

    txn = daraja_sandbox.simulate_c2b("0712345126", 50, "LN-9", name="Grace Achieng")
    daraja_sandbox.flush()

    confirmation = receiver.on("c2b/confirmation")[0].json
    assert confirmation["TransID"] == txn["receipt"]
    assert (confirmation["FirstName"], confirmation["LastName"]) == ("GRACE", "ACHIENG")


def test_a_rejection_means_no_confirmation_and_a_failed_row(daraja_sandbox, daraja, receiver):
    daraja.register(receiver)
    receiver.answer("c2b/validation", sample("c2b_validation_reject_response.json"))

    txn = daraja_sandbox.simulate_c2b(PHONE, 100, "UNKNOWN-1")
    delivered = daraja_sandbox.flush()

    assert [d["kind"] for d in delivered] == ["c2b_validation"]
    assert receiver.on("c2b/confirmation") == []
    stored = daraja_sandbox.transaction(txn["receipt"])
    assert (stored["status"], stored["result_code"]) == ("failed", "C2B00011")
    assert f"{txn['receipt']},".encode() in daraja_sandbox.statement_csv().encode()
    assert ",Failed," in daraja_sandbox.statement_csv()
    assert daraja_sandbox.balances()["174379"]["utility"] == "1000000.00"


def test_validation_may_return_a_third_party_id(daraja_sandbox, daraja, receiver):
    daraja.register(receiver)
    receiver.answer(
        "c2b/validation", {"ResultCode": "0", "ResultDesc": "Accepted", "ThirdPartyTransID": "ABC1"}
    )

    daraja_sandbox.simulate_c2b(PHONE, 100, "M-1")
    daraja_sandbox.flush()

    assert receiver.on("c2b/confirmation")[0].json["ThirdPartyTransID"] == "ABC1"


@pytest.mark.parametrize(
    ("response_type", "confirmed"), [("Completed", True), ("Cancelled", False)]
)
def test_an_unreachable_validation_url_applies_the_default_action(
    daraja_sandbox, daraja, receiver, response_type, confirmed
):
    daraja.register(
        receiver, ResponseType=response_type, ValidationURL="http://127.0.0.1:9/c2b/validation"
    )

    daraja_sandbox.simulate_c2b(PHONE, 100, "M-1")
    delivered = daraja_sandbox.flush()

    assert "ConnectionError" in delivered[0]["error"]
    assert (len(receiver.on("c2b/confirmation")) == 1) is confirmed


def test_a_late_validation_answer_applies_the_default_action():
    with (
        serve(SANDBOX_DARAJA_VALIDATION_TIMEOUT=0.3) as url,
        CallbackReceiver() as receiver,
    ):
        client = Daraja(url, credentials_of(url), certificate_of(url))
        client.register(receiver, ResponseType="Cancelled")
        receiver.answer("c2b/validation", {"ResultCode": "0"}, delay=1.0)
        requests.post(
            f"{url}/sandbox/api/daraja/c2b",
            json={"phone": PHONE, "amount": 10, "account": "M-1"},
            timeout=10,
        )
        delivered = flush(url)

    assert "Timeout" in delivered[0]["error"]
    assert receiver.on("c2b/confirmation") == []


def test_without_validation_url_the_payment_is_confirmed_directly(daraja_sandbox, daraja, receiver):
    body = {
        "ShortCode": "174379",
        "ResponseType": "Completed",
        "ConfirmationURL": receiver.url("c2b/confirmation"),
    }
    daraja.post("/mpesa/c2b/v1/registerurl", body)

    daraja_sandbox.simulate_c2b(PHONE, 100, "M-1")
    delivered = daraja_sandbox.flush()

    assert [d["kind"] for d in delivered] == ["c2b_confirmation"]


def test_without_registration_money_arrives_and_nobody_is_told(daraja_sandbox, receiver):
    txn = daraja_sandbox.simulate_c2b(PHONE, 100, "M-1")

    assert daraja_sandbox.flush() == []
    assert daraja_sandbox.transaction(txn["receipt"])["status"] == "completed"
    assert txn["receipt"] in daraja_sandbox.statement_csv()


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        ("hashed", hashlib.sha256(PHONE.encode()).hexdigest()),
        ("plain", PHONE),
        ("masked", "2547 ***** 126"),
    ],
)
def test_msisdn_style_is_configurable(daraja_sandbox, daraja, receiver, style, expected):
    daraja.register(receiver)
    daraja_sandbox.set_mode(c2b_msisdn=style)

    daraja_sandbox.simulate_c2b(PHONE, 100, "M-1")
    daraja_sandbox.flush()

    assert receiver.on("c2b/confirmation")[0].json["MSISDN"] == expected


def test_stk_payments_can_also_arrive_as_c2b_confirmations(daraja_sandbox, daraja, receiver):
    daraja.register(receiver)
    daraja_sandbox.set_mode(stk_c2b_confirmation=True)
    daraja.stk_push(receiver)

    delivered = daraja_sandbox.flush()

    assert [d["kind"] for d in delivered] == ["stk_callback", "c2b_confirmation"]
    items = receiver.on("stk")[0].json["Body"]["stkCallback"]["CallbackMetadata"]["Item"]
    receipt = next(i["Value"] for i in items if i["Name"] == "MpesaReceiptNumber")
    assert receiver.on("c2b/confirmation")[0].json["TransID"] == receipt


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("ShortCode", "99"),
        ("CommandID", "PayBill"),
        ("Amount", 0),
        ("Msisdn", "0712345678"),
        ("BillRefNumber", ""),
        ("BillRefNumber", "x" * 21),
    ],
)
def test_simulate_field_rules(daraja, field, value):
    body = {
        "ShortCode": "174379",
        "CommandID": "CustomerPayBillOnline",
        "Amount": 1,
        "Msisdn": PHONE,
        "BillRefNumber": "M-1",
    }
    response = daraja.post("/mpesa/c2b/v1/simulate", body | {field: value})

    assert response.status_code == 400
    assert response.json()["errorMessage"] == f"Bad Request - Invalid {field}"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"phone": "12345", "amount": 1, "account": "A"}, "phone must be"),
        ({"phone": PHONE, "amount": "1.5", "account": "A"}, "amount must be"),
        ({"phone": PHONE, "amount": 1, "account": ""}, "account"),
        ({"phone": PHONE, "amount": 1, "account": "A", "shortcode": "1"}, "unknown shortcode"),
    ],
)
def test_control_api_explains_bad_payments(daraja_sandbox, body, message):
    response = requests.post(
        f"{daraja_sandbox.base_url}/sandbox/api/daraja/c2b", json=body, timeout=10
    )

    assert response.status_code == 400
    assert message in response.json()["error"]


def test_paybill_page_form_pays_and_redisplays_errors(daraja_sandbox, daraja, receiver):
    daraja.register(receiver)
    page = f"{daraja_sandbox.base_url}/sandbox/paybill"

    bad = requests.post(page, data={"phone": "07", "amount": "10", "account": "M-1"}, timeout=10)
    good = requests.post(
        page,
        data={"phone": "0712345126", "amount": "10", "account": "M-1", "shortcode": "174379"},
        timeout=10,
    )
    daraja_sandbox.flush()

    assert bad.status_code == 422
    assert 'id="error"' in bad.text and 'value="07"' in bad.text
    assert good.status_code == 200 and 'id="done"' in good.text
    assert receiver.on("c2b/confirmation")[0].json["TransAmount"] == "10.00"
    assert "M-1" in requests.get(page, timeout=10).text
