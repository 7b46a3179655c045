"""B2C on the sandbox: field rules, SecurityCredential, duplicate OriginatorConversationID,
result and time-out callbacks, outcome rules and balances."""

import base64
import re
from decimal import Decimal

import pytest
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.sandbox.conftest import (
    PHONE,
    Daraja,
    certificate_of,
    credentials_of,
    flush,
    sample,
    serve,
    shape,
)
from tests.sandbox.receiver import CallbackReceiver


def pay(daraja, receiver, **fields) -> dict:
    response = daraja.b2c(receiver, **fields)
    assert response.status_code == 200, response.text
    return response.json()


def result_of(receiver) -> dict:
    return receiver.on("b2c/result")[-1].json["Result"]


def parameters(result: dict) -> dict:
    return {p["Key"]: p["Value"] for p in result["ResultParameters"]["ResultParameter"]}


def test_accepted_payment_answers_like_the_sample(daraja, receiver):
    body = pay(daraja, receiver, originator="DSB-42")

    assert shape(body) == shape(sample("b2c_response.json"))
    assert body["OriginatorConversationID"] == "DSB-42"
    assert body["ResponseDescription"] == "Accept the service request successfully."
    assert re.fullmatch(r"AG_\d{8}_[0-9a-f]{20}", body["ConversationID"])


def test_success_result_matches_the_official_sample(daraja_sandbox, daraja, receiver):
    daraja_sandbox.register_customer(PHONE, "Wanjiku Kamau")
    accepted = pay(daraja, receiver, Amount="5000")

    daraja_sandbox.flush()

    sent = receiver.on("b2c/result")[0]
    assert shape(sent.json) == shape(sample("b2c_result_success.json"))
    result = sent.json["Result"]
    values = parameters(result)
    assert result["ResultCode"] == 0
    assert result["ConversationID"] == accepted["ConversationID"]
    assert result["OriginatorConversationID"] == "DSB-000001"
    assert values["TransactionReceipt"] == result["TransactionID"]
    assert values["TransactionAmount"] == 5000
    assert values["ReceiverPartyPublicName"] == f"{PHONE} - WANJIKU KAMAU"
    assert re.fullmatch(r"\d\d\.\d\d\.\d{4} \d\d:\d\d:\d\d", values["TransactionCompletedDateTime"])
    assert values["B2CRecipientIsRegisteredCustomer"] == "Y"
    # 1,000,000.00 - 5,000 - the 9.00 charge of the sandbox tariff
    assert b'"B2CUtilityAccountAvailableFunds", "Value": 994991.00' in sent.raw
    assert daraja_sandbox.balances()["174379"]["utility"] == "994991.00"


def test_the_sample_customer_has_the_sample_name(daraja_sandbox, daraja, receiver):
    pay(daraja, receiver, PartyB="254705912645")
    daraja_sandbox.flush()

    name = parameters(result_of(receiver))["ReceiverPartyPublicName"]
    assert name == "254705912645 - NICHOLAS JOHN SONGOK"


def test_v1_makes_its_own_originator_conversation_id(daraja_sandbox, daraja, receiver):
    body = daraja.b2c_body(receiver, Occasion="x")
    del body["OriginatorConversationID"], body["Occassion"]

    response = daraja.post("/mpesa/b2c/v1/paymentrequest", body)
    daraja_sandbox.flush()

    assert response.status_code == 200
    assert re.fullmatch(r"\d+-\d+-\d", response.json()["OriginatorConversationID"])
    assert result_of(receiver)["ResultCode"] == 0


def test_reusing_an_originator_conversation_id_is_the_documented_error(daraja, receiver):
    pay(daraja, receiver, originator="DSB-7")

    again = daraja.b2c(receiver, originator="DSB-7")

    assert again.status_code == 500
    expected = sample("b2c_error_duplicate_originator_conversation_id.json")
    assert again.json() | {"requestId": expected["requestId"]} == expected
    assert re.fullmatch(
        r"[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\d+", again.json()["requestId"]
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("OriginatorConversationID", ""),
        ("InitiatorName", ""),
        ("SecurityCredential", ""),
        ("SecurityCredential", "not base64!"),
        ("SecurityCredential", "c2hvcnQ="),  # decodes, but is not one RSA-2048 block
        ("CommandID", "Payment"),
        ("Amount", "0"),
        ("Amount", "10.50"),
        ("PartyA", "99999"),
        ("PartyA", "abc"),
        ("PartyB", "0712345678"),
        ("Remarks", "x"),
        ("Remarks", "x" * 101),
        ("QueueTimeOutURL", "not a url"),
        ("ResultURL", "https://ex ample.com/r"),
        ("Occassion", "x" * 101),
    ],
)
def test_each_field_rule_gives_invalid_field(daraja, receiver, field, value):
    response = daraja.b2c(receiver, **{field: value})

    assert response.status_code == 400, response.text
    assert response.json()["errorCode"] == "400.002.02"
    assert response.json()["errorMessage"] == f"Bad Request - Invalid {field}"


@pytest.mark.parametrize("command", ["BusinessPayment", "SalaryPayment", "PromotionPayment"])
def test_every_documented_command_id_is_accepted(daraja, receiver, command):
    assert daraja.b2c(receiver, CommandID=command, originator=command).status_code == 200


@pytest.mark.parametrize(
    "fields",
    [
        {"SecurityCredential": "wrong password"},  # encrypted by the test below
        {"InitiatorName": "someone-else"},
    ],
)
def test_wrong_initiator_is_accepted_then_fails_with_2001(daraja_sandbox, daraja, receiver, fields):
    if "SecurityCredential" in fields:
        fields = {"SecurityCredential": daraja.credential("wrong password")}

    accepted = daraja.b2c(receiver, **fields)
    daraja_sandbox.flush()

    assert accepted.status_code == 200
    sent = receiver.on("b2c/result")[0]
    assert shape(sent.json) == shape(sample("b2c_result_failure.json"))
    assert sent.json["Result"]["ResultCode"] == 2001
    assert sent.json["Result"]["ResultDesc"] == "The initiator information is invalid."
    assert daraja_sandbox.balances()["174379"]["utility"] == "1000000.00"


def test_a_credential_encrypted_for_another_key_fails_with_2001(daraja_sandbox, daraja, receiver):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    credential = base64.b64encode(
        other.encrypt(daraja.credentials["initiator_password"].encode(), padding.PKCS1v15())
    ).decode()

    assert daraja.b2c(receiver, SecurityCredential=credential).status_code == 200
    daraja_sandbox.flush()
    assert result_of(receiver)["ResultCode"] == 2001


@pytest.mark.parametrize(
    ("phone", "code", "desc"),
    [
        ("254799000001", 1, "The balance is insufficient for the transaction."),
        ("254799002001", 2001, "The initiator information is invalid."),
        ("254799000003", "SFC_IC0003", "The operator does not exist."),
    ],
)
def test_test_phone_numbers_choose_the_failure(daraja_sandbox, daraja, receiver, phone, code, desc):
    pay(daraja, receiver, PartyB=phone)
    daraja_sandbox.flush()

    result = result_of(receiver)
    assert (result["ResultCode"], result["ResultDesc"]) == (code, desc)
    assert "ResultParameters" not in result
    assert re.fullmatch(r"[A-Z0-9]{10}", result["TransactionID"])  # failures carry one too
    assert daraja_sandbox.balances()["174379"]["utility"] == "1000000.00"


def test_more_than_the_utility_balance_fails_with_1():
    with serve(SANDBOX_DARAJA_UTILITY_BALANCE="1000.00") as url, CallbackReceiver() as receiver:
        client = Daraja(url, credentials_of(url), certificate_of(url))
        assert client.b2c(receiver, Amount="996").status_code == 200  # 996 + the 5.00 charge > 1000
        flush(url)
        assert result_of(receiver)["ResultCode"] == 1


def test_queue_time_out_goes_to_the_timeout_url(daraja_sandbox, daraja, receiver):
    accepted = pay(daraja, receiver, PartyB="254799009001", originator="DSB-T1")

    delivered = daraja_sandbox.flush()

    assert [d["kind"] for d in delivered] == ["b2c_timeout"]
    assert receiver.on("b2c/result") == []
    sent = receiver.on("b2c/timeout")[0]
    assert shape(sent.json) == shape(sample("b2c_timeout.json"))
    assert sent.json["Result"]["OriginatorConversationID"] == "DSB-T1"
    assert sent.json["Result"]["ConversationID"] == accepted["ConversationID"]
    # The payment itself went through: the money left the account.
    assert daraja_sandbox.transaction("DSB-T1")["status"] == "completed"
    assert Decimal(daraja_sandbox.balances()["174379"]["utility"]) < Decimal("1000000")


def test_lost_result_is_recorded_as_dropped(daraja_sandbox, daraja, receiver):
    pay(daraja, receiver, PartyB="254799009999")

    delivered = daraja_sandbox.flush()

    assert receiver.received == []
    assert delivered[0]["dropped"] is True
    assert delivered[0]["body"]["Result"]["ResultCode"] == 0


def test_forced_b2c_outcome(daraja_sandbox, daraja, receiver):
    daraja_sandbox.set_mode(b2c_outcome="msisdn_invalid")
    pay(daraja, receiver)
    daraja_sandbox.flush()

    assert result_of(receiver)["ResultCode"] == "SFC_IC0003"


def test_duplicate_result_callbacks(daraja_sandbox, daraja, receiver):
    daraja_sandbox.set_mode(duplicate_callbacks=True)
    pay(daraja, receiver)
    daraja_sandbox.flush()

    first, second = receiver.on("b2c/result")
    assert first.raw == second.raw
