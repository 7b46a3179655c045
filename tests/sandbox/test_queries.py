"""Transaction Status and Account Balance on the sandbox: checks, answers and results, including
the true outcome of a B2C whose callback timed out or was lost."""

import re

import pytest

from tests.sandbox.conftest import sample, shape


def status_result(receiver) -> dict:
    return receiver.on("status/result")[-1].json["Result"]


def parameters(result: dict) -> list[tuple[str, object]]:
    return [(p["Key"], p.get("Value")) for p in result["ResultParameters"]["ResultParameter"]]


def test_status_query_answers_like_the_sample(daraja, receiver):
    response = daraja.status(receiver, TransactionID="UKR0000000")

    assert response.status_code == 200
    assert shape(response.json()) == shape(sample("transaction_status_response.json"))
    assert re.fullmatch(r"\d+-\d+-\d", response.json()["OriginatorConversationID"])


@pytest.mark.parametrize("outcome", ["timeout", "lost"])
def test_status_resolves_a_b2c_whose_callback_never_came(daraja_sandbox, daraja, receiver, outcome):
    phone = {"timeout": "254799009001", "lost": "254799009999"}[outcome]
    daraja.b2c(receiver, PartyB=phone, originator="DSB-100", Amount="300")
    daraja_sandbox.flush()
    assert receiver.on("b2c/result") == []

    query = daraja.status(receiver, OriginalConversationID="DSB-100")
    daraja_sandbox.flush()

    sent = receiver.on("status/result")[0]
    assert shape(sent.json) == shape(sample("transaction_status_result.json"))
    result = sent.json["Result"]
    values = parameters(result)
    receipt = daraja_sandbox.transaction("DSB-100")["receipt"]
    assert result["ResultCode"] == 0
    assert result["ConversationID"] == query.json()["ConversationID"]
    assert result["ReferenceData"] == {"ReferenceItem": {"Key": "Occasion"}}
    assert re.fullmatch(r"[A-Z][A-L][0-9A-V]0000000", result["TransactionID"])
    assert ("TransactionStatus", "Completed") in values
    assert ("ReceiptNo", receipt) in values
    assert ("Amount", "300") in values
    assert ("OriginatorConversationID", "DSB-100") in values
    assert ("DebitPartyName", "174379 - DAYSTAR SACCO SANDBOX") in values
    assert ("ReasonType", "Business Payment to Customer via API") in values
    assert ("DebitPartyCharges", "Fee For B2C Payment|KES|5.00") in values
    assert ("TransactionReason", None) in values


def test_the_occasion_is_echoed_in_the_reference_data(daraja_sandbox, daraja, receiver):
    daraja.status(receiver, TransactionID="ZZZ9999999", Occasion="check")
    daraja_sandbox.flush()

    reference = status_result(receiver)["ReferenceData"]
    assert reference == {"ReferenceItem": {"Key": "Occasion", "Value": "check"}}


def test_status_of_a_failed_b2c_by_receipt_says_failed(daraja_sandbox, daraja, receiver):
    daraja.b2c(receiver, PartyB="254799009002", originator="DSB-101")  # times out, then fails
    daraja_sandbox.flush()
    receipt = daraja_sandbox.transaction("DSB-101")["receipt"]

    daraja.status(receiver, TransactionID=receipt)
    daraja_sandbox.flush()

    assert ("TransactionStatus", "Failed") in parameters(status_result(receiver))


def test_status_of_an_stk_payment_by_receipt(daraja_sandbox, daraja, receiver):
    checkout_id = daraja.stk_push(receiver).json()["CheckoutRequestID"]
    daraja_sandbox.flush()
    receipt = daraja_sandbox.transaction(checkout_id)["receipt"]

    daraja.status(receiver, TransactionID=receipt)
    daraja_sandbox.flush()

    values = parameters(status_result(receiver))
    assert ("ReceiptNo", receipt) in values
    assert ("ReasonType", "Pay Bill Online") in values
    assert ("TransactionStatus", "Completed") in values


def test_the_documented_spelling_with_spaces_is_accepted(daraja_sandbox, daraja, receiver):
    daraja.b2c(receiver, originator="DSB-102")
    daraja_sandbox.flush()
    receipt = daraja_sandbox.transaction("DSB-102")["receipt"]
    body = daraja.status_body(receiver)
    del body["CommandID"], body["TransactionID"]
    body |= {"Command ID": "TransactionStatusQuery", "Transaction ID": receipt}

    assert daraja.post("/mpesa/transactionstatus/v1/query", body).status_code == 200
    daraja_sandbox.flush()
    assert ("ReceiptNo", receipt) in parameters(status_result(receiver))


def test_an_unknown_transaction_is_a_failed_result(daraja_sandbox, daraja, receiver):
    daraja.status(receiver, TransactionID="ZZZ9999999")
    daraja_sandbox.flush()

    result = status_result(receiver)
    assert result["ResultCode"] == "R000002"
    assert list(result) == [
        "ResultType",
        "ResultCode",
        "ResultDesc",
        "OriginatorConversationID",
        "ConversationID",
        "TransactionID",
        "ReferenceData",
    ]


def test_a_wrong_initiator_password_fails_the_query_with_2001(daraja_sandbox, daraja, receiver):
    daraja.status(receiver, TransactionID="X", SecurityCredential=daraja.credential("nope"))
    daraja.balance(receiver, SecurityCredential=daraja.credential("nope"))
    daraja_sandbox.flush()

    assert status_result(receiver)["ResultCode"] == 2001
    assert receiver.on("balance/result")[0].json["Result"]["ResultCode"] == 2001


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("Initiator", ""),
        ("SecurityCredential", "abc"),
        ("CommandID", "AccountBalance"),
        ("PartyA", "x"),
        ("IdentifierType", "9"),
        ("ResultURL", "nowhere"),
        ("QueueTimeOutURL", ""),
        ("Remarks", "r" * 101),
        ("TransactionID", ""),
    ],
)
def test_status_field_rules(daraja, receiver, field, value):
    response = daraja.status(receiver, **{field: value})

    assert response.status_code == 400
    assert response.json()["errorMessage"] == f"Bad Request - Invalid {field}"


def test_balance_query_answers_and_reports_the_balances(daraja_sandbox, daraja, receiver):
    response = daraja.balance(receiver)
    daraja_sandbox.flush()

    assert shape(response.json()) == shape(sample("account_balance_response.json"))
    assert response.json()["ResponseDescription"] == "Accept the service request successfully"
    sent = receiver.on("balance/result")[0]
    assert shape(sent.json) == shape(sample("account_balance_result.json"))
    result = sent.json["Result"]
    assert (result["ResultType"], result["ResultCode"]) == ("0", "0")
    balance = {p["Key"]: p["Value"] for p in result["ResultParameters"]["ResultParameter"]}
    assert balance["AccountBalance"] == (
        "Working Account|KES|0.00|0.00|0.00|0.00&Float Account|KES|0.00|0.00|0.00|0.00"
        "&Utility Account|KES|1000000.00|1000000.00|0.00|0.00"
        "&Charges Paid Account|KES|0.00|0.00|0.00|0.00"
        "&Organization Settlement Account|KES|0.00|0.00|0.00|0.00"
    )
    assert re.fullmatch(r"20\d{12}", balance["BOCompletedTime"])


def test_balances_move_with_payments_in_and_out(daraja_sandbox, daraja, receiver):
    daraja.stk_push(receiver, Amount=2000)  # + 2,000 - 20.00 charge
    daraja.b2c(receiver, Amount="10000")  # - 10,000 - 11.00 charge
    daraja_sandbox.simulate_c2b("0712000001", 50, "M-0001")  # + 50, no charge
    daraja_sandbox.flush()

    daraja.balance(receiver)
    daraja_sandbox.flush()

    text = receiver.on("balance/result")[0].json["Result"]["ResultParameters"]["ResultParameter"]
    assert "Utility Account|KES|992019.00|992019.00|0.00|0.00" in text[0]["Value"]
    assert daraja_sandbox.balances()["174379"]["utility"] == "992019.00"


@pytest.mark.parametrize(
    ("field", "value"),
    [("CommandID", "TransactionStatusQuery"), ("IdentifierType", "1"), ("Initiator", "")],
)
def test_balance_field_rules(daraja, receiver, field, value):
    response = daraja.balance(receiver, **{field: value})

    assert response.status_code == 400
    assert response.json()["errorMessage"] == f"Bad Request - Invalid {field}"


def test_an_unknown_party_is_a_failed_result(daraja_sandbox, daraja, receiver):
    daraja.balance(receiver, PartyA="123456")
    daraja_sandbox.flush()

    assert receiver.on("balance/result")[0].json["Result"]["ResultCode"] == "SFC_IC0003"
