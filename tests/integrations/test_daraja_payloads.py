"""Daraja's callback and result bodies, from the official samples and from broken variants."""

import copy
import hashlib
import json
from datetime import datetime
from decimal import Decimal

import pytest

from app.clock import NAIROBI
from app.integrations.daraja_payloads import (
    PayloadError,
    account_balance,
    b2c_payment,
    msisdn_kind,
    msisdn_matches,
    parse_account_balances,
    parse_c2b,
    parse_result,
    parse_stk_callback,
    split_public_name,
    transaction_status,
)
from tests.integrations.samples import (
    C2B_BODIES,
    CLIENT_ANSWERS,
    CLIENT_REQUESTS,
    ELSEWHERE,
    RESULTS,
    sample,
    sample_names,
)

STK_CALLBACKS = sample_names("stk_callback_*.json")


def test_every_sample_has_exactly_one_home():
    """Each sample is parsed here, replayed or checked by the client tests, or named as another
    module's; a new sample fails this test until it is placed."""
    groups = [STK_CALLBACKS, RESULTS, C2B_BODIES, CLIENT_REQUESTS, CLIENT_ANSWERS, ELSEWHERE]
    placed = [name for group in groups for name in group]
    assert sorted(placed) == sample_names("*")


# --- STK callbacks -----------------------------------------------------------------------------


@pytest.mark.parametrize("decimal_floats", [False, True], ids=["float", "Decimal"])
@pytest.mark.parametrize("name", STK_CALLBACKS)
def test_every_stk_callback_sample_parses(name, decimal_floats):
    raw = sample(name, decimal_floats)["Body"]["stkCallback"]
    callback = parse_stk_callback(sample(name, decimal_floats))
    assert callback.checkout_request_id == raw["CheckoutRequestID"]
    assert callback.merchant_request_id == raw["MerchantRequestID"]
    assert callback.result_code == str(raw["ResultCode"])
    assert callback.succeeded == (raw["ResultCode"] == 0)
    if callback.succeeded:
        assert callback.amount == Decimal("1.00") and isinstance(callback.amount, Decimal)
        assert len(callback.receipt) == 10
        assert callback.transaction_date.tzinfo is NAIROBI
        assert callback.phone.startswith("2547")
    else:
        assert (callback.amount, callback.receipt, callback.transaction_date) == (None, None, None)


def test_stk_success_fields_are_read_by_name():
    callback = parse_stk_callback(sample("stk_callback_success.json"))
    assert callback.amount == Decimal("1.00")
    assert callback.receipt == "NLJ7RT61SV"
    assert callback.transaction_date == datetime(2019, 12, 19, 10, 21, 15, tzinfo=NAIROBI)
    assert callback.phone == "254708374149"
    assert callback.balance is None


def test_stk_balance_without_value_and_reordered_items():
    """Balance present without a Value, and items in another order, still land in their fields."""
    callback = parse_stk_callback(sample("stk_callback_success_captured_2022.json"))
    assert (callback.receipt, callback.phone, callback.balance) == (
        "QKH94M1Z11",
        "254796440427",
        None,
    )
    body = sample("stk_callback_success_captured_2022.json")
    items = body["Body"]["stkCallback"]["CallbackMetadata"]["Item"]
    items.reverse()
    items[2]["Value"] = 1500.5  # Balance, with a value this time
    moved = parse_stk_callback(body)
    assert moved.receipt == "QKH94M1Z11" and moved.amount == Decimal("1.00")
    assert moved.balance == Decimal("1500.50")


def test_stk_cancelled_keeps_result_text_but_code_decides():
    legacy = parse_stk_callback(sample("stk_callback_cancelled_legacy.json"))
    assert legacy.result_code == "1032"
    assert legacy.result_desc == "[STK_CB - ]Request cancelled by user"
    assert not legacy.succeeded


def _stk(**changes):
    body = sample("stk_callback_success.json")
    callback = body["Body"]["stkCallback"]
    for key, value in changes.items():
        if value is ...:
            callback.pop(key)
        else:
            callback[key] = value
    return body


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "body"),
        ({}, "Body"),
        ({"Body": "x"}, "Body"),
        ({"Body": {}}, "Body.stkCallback"),
        (_stk(CheckoutRequestID=...), "CheckoutRequestID"),
        (_stk(MerchantRequestID=""), "MerchantRequestID"),
        (_stk(ResultCode=None), "ResultCode"),
        (_stk(ResultCode={"a": 1}), "ResultCode"),
        (_stk(CallbackMetadata=[]), "CallbackMetadata"),
        (_stk(CallbackMetadata={"Item": "x"}), "CallbackMetadata.Item"),
        (_stk(CallbackMetadata={"Item": [{"Value": 1}]}), "CallbackMetadata.Item[0]"),
        (
            _stk(CallbackMetadata={"Item": [{"Name": "PhoneNumber", "Value": 1}]}),
            "CallbackMetadata.Amount",
        ),
    ],
)
def test_malformed_stk_callbacks_name_the_field(body, field):
    with pytest.raises(PayloadError) as raised:
        parse_stk_callback(body)
    assert field in raised.value.errors, raised.value.errors


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("Amount", "one", "is not an amount"),
        ("Amount", 0, "must be more than zero"),
        ("Amount", 1.005, "more than two decimal places"),
        ("Amount", True, "must be an amount"),
        ("Amount", "NaN", "not a finite amount"),
        ("MpesaReceiptNumber", None, "is required"),
        ("TransactionDate", 2019121910, "is not a time"),
        ("TransactionDate", 20191319102115, "is not a time"),
        ("PhoneNumber", "+254708374149", "is not a phone number"),
    ],
)
def test_bad_stk_metadata_values(name, value, problem):
    body = sample("stk_callback_success.json")
    for item in body["Body"]["stkCallback"]["CallbackMetadata"]["Item"]:
        if item["Name"] == name:
            item["Value"] = value
    with pytest.raises(PayloadError) as raised:
        parse_stk_callback(body)
    assert problem in raised.value.errors[f"CallbackMetadata.{name}"]


def test_stk_duplicate_item_with_different_values_is_refused():
    body = sample("stk_callback_success.json")
    items = body["Body"]["stkCallback"]["CallbackMetadata"]["Item"]
    items.append({"Name": "Amount", "Value": 100})
    with pytest.raises(PayloadError) as raised:
        parse_stk_callback(body)
    assert "CallbackMetadata.Amount" in raised.value.errors


def test_stk_amount_is_never_a_float_even_from_float_json():
    body = json.loads(json.dumps(sample("stk_callback_success.json")).replace("1.0", "1234.56"))
    assert parse_stk_callback(body).amount == Decimal("1234.56")


# --- Result envelope ---------------------------------------------------------------------------


@pytest.mark.parametrize("decimal_floats", [False, True], ids=["float", "Decimal"])
@pytest.mark.parametrize("name", RESULTS)
def test_every_result_sample_parses(name, decimal_floats):
    raw = sample(name, decimal_floats)["Result"]
    result = parse_result(sample(name, decimal_floats))
    assert result.result_code == str(raw["ResultCode"])
    assert result.conversation_id == raw["ConversationID"]
    assert result.originator_conversation_id == raw["OriginatorConversationID"]
    assert result.transaction_id == raw.get("TransactionID")
    keys = [p["Key"] for p in raw.get("ResultParameters", {}).get("ResultParameter", [])]
    assert sum(len(values) for values in result.params.values()) == len(keys)


def test_b2c_success_fields():
    result = parse_result(sample("b2c_result_success.json"))
    assert result.succeeded and result.result_type == "0"
    payment = b2c_payment(result)
    assert payment.receipt == "SG632NMUAB"
    assert payment.amount == Decimal("10.00")
    assert payment.recipient_phone == "254705912645"
    assert payment.recipient_name == "NICHOLAS JOHN SONGOK"
    assert payment.completed_at == datetime(2024, 7, 6, 22, 48, 52, tzinfo=NAIROBI)
    assert payment.recipient_registered is True
    assert payment.utility_balance == Decimal("8959269.60")
    assert payment.working_balance == Decimal("1199371.00")
    assert payment.charges_paid_balance == Decimal("-1980.00")
    assert result.reference_items == {
        "QueueTimeoutURL": ("https://internalsandbox.safaricom.co.ke/mpesa/b2cresults/v1/submit",)
    }


def test_b2c_success_in_another_order_and_with_decimal_json():
    """The 2017 sample lists the parameters in another order; values land by Key."""
    payment = b2c_payment(parse_result(sample("b2c_result_success_legacy.json", True)))
    assert (payment.receipt, payment.amount) == ("LGH3197RIB", Decimal("8000.00"))
    assert (payment.recipient_phone, payment.recipient_name) == ("254708374149", "John Doe")
    assert payment.completed_at == datetime(2017, 7, 17, 10, 54, 57, tzinfo=NAIROBI)
    assert payment.charges_paid_balance == Decimal("0.00")


def test_b2c_failure_carries_a_transaction_id_but_is_no_payment():
    result = parse_result(sample("b2c_result_failure.json"))
    assert result.result_code == "2001" and result.transaction_id == "SG722NMVXQ"
    assert not result.succeeded
    with pytest.raises(PayloadError) as raised:
        b2c_payment(result)
    assert raised.value.errors == {"Result.ResultCode": "is 2001, not a success"}


def test_b2c_success_without_receipt_or_amount_is_refused():
    body = sample("b2c_result_success.json")
    body["Result"]["ResultParameters"]["ResultParameter"] = [
        p
        for p in body["Result"]["ResultParameters"]["ResultParameter"]
        if p["Key"] not in ("TransactionReceipt", "TransactionAmount")
    ]
    with pytest.raises(PayloadError) as raised:
        b2c_payment(parse_result(body))
    assert set(raised.value.errors) == {
        "Result.ResultParameters.TransactionReceipt",
        "Result.ResultParameters.TransactionAmount",
    }


def test_b2c_timeout_sample_is_an_envelope_without_parameters():
    result = parse_result(sample("b2c_timeout.json"))
    assert (result.conversation_id, result.params, result.transaction_id) == (
        "AG_20170717_00006c6f7f5b8b6b1a62",
        {},
        None,
    )


def test_result_codes_are_normalised_to_text():
    assert parse_result(sample("account_balance_result.json")).result_code == "0"
    assert parse_result(sample("reversal_result_failure.json")).result_code == "R000002"
    body = sample("b2c_result_success.json")
    body["Result"]["ResultCode"] = 0.0
    assert parse_result(body).result_code == "0"


def test_account_balance_accounts():
    report = account_balance(parse_result(sample("account_balance_result.json")))
    assert set(report.accounts) == {
        "Working Account",
        "Float Account",
        "Utility Account",
        "Charges Paid Account",
        "Organization Settlement Account",
    }
    utility = report.accounts["Utility Account"]
    assert (utility.currency, utility.current, utility.available) == (
        "KES",
        Decimal("228037.00"),
        Decimal("228037.00"),
    )
    assert (utility.reserved, utility.uncleared) == (Decimal("0.00"), Decimal("0.00"))
    assert report.accounts["Charges Paid Account"].current == Decimal("-1540.00")
    assert report.available("Working Account") == Decimal("700000.00")
    assert report.available("No Such Account") is None
    assert report.completed_at == datetime(2020, 1, 9, 12, 57, 10, tzinfo=NAIROBI)


def test_reversal_debit_balance_parses_with_the_same_helper():
    result = parse_result(sample("reversal_result_success.json"))
    balances = parse_account_balances(result.param("DebitAccountBalance"))
    assert balances["Utility Account"].available == Decimal("7722179.62")


@pytest.mark.parametrize(
    "text",
    [
        "",
        None,
        "Working Account|KES",
        "|KES|1.00",
        "Working Account|KES|abc|1.00",
        "Utility|KES||1",
    ],
)
def test_bad_account_balance_strings(text):
    with pytest.raises(PayloadError):
        parse_account_balances(text)


def test_short_account_group_keeps_what_is_there():
    accounts = parse_account_balances("Utility Account|KES|5.5")
    assert accounts["Utility Account"].current == Decimal("5.50")
    assert accounts["Utility Account"].available is None


def test_transaction_status_fields_and_repeated_key():
    result = parse_result(sample("transaction_status_result.json"))
    assert result.param_values("DebitPartyName") == (
        "600310 - Safaricom333",
        "254708374149 - John Doe",
    )
    assert result.param("TransactionReason", "none") == "none"  # listed without a Value
    assert result.reference_items == {"Occasion": (None,)}
    status = transaction_status(result)
    assert status.completed and status.status == "Completed"
    assert status.receipt == "MBN31H462N"
    assert status.amount == Decimal("300.00")
    assert status.finalised_at == datetime(2018, 2, 23, 5, 41, 12, tzinfo=NAIROBI)
    assert status.initiated_at == status.finalised_at
    assert status.originator_conversation_id == "3211-416020-3"
    assert status.conversation_id == "AG_20180223_000041b09c22e613d6c9"
    assert status.debit_party_names[1] == "254708374149 - John Doe"
    assert status.debit_party_charges == "Fee For B2C Payment|KES|22.40"
    assert status.reason_type == "Business Payment to Customer via API"


def test_transaction_status_daraja_1_keys_with_spaces():
    """Daraja 1.0 results spell keys with spaces and name the customer CreditPartyName."""
    body = sample("transaction_status_result.json")
    parameters = body["Result"]["ResultParameters"]["ResultParameter"]
    for parameter in parameters:
        if parameter["Key"] == "OriginatorConversationID":
            parameter["Key"] = "Originator Conversation ID"
        if parameter["Key"] == "Amount":
            parameter["Value"] = 300
    parameters.append({"Key": "CreditPartyName", "Value": "254708374149 - John Doe"})
    status = transaction_status(parse_result(body))
    assert status.originator_conversation_id == "3211-416020-3"
    assert status.amount == Decimal("300.00")
    assert status.credit_party_name == "254708374149 - John Doe"


def test_reference_item_as_array():
    body = sample("b2c_result_success.json")
    body["Result"]["ReferenceData"]["ReferenceItem"] = [
        {"Key": "BillReferenceNumber", "Value": "19008"},
        {"Key": "QueueTimeoutURL", "Value": "https://example.invalid/timeout"},
    ]
    result = parse_result(body)
    assert result.reference_items["BillReferenceNumber"] == ("19008",)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda r: r.pop("ResultCode"), "Result.ResultCode"),
        (
            lambda r: (r.pop("ConversationID"), r.pop("OriginatorConversationID")),
            "Result.ConversationID",
        ),
        (lambda r: r.update(ResultParameters=[]), "Result.ResultParameters"),
        (
            lambda r: r.update(ResultParameters={"ResultParameter": [1]}),
            "Result.ResultParameters.ResultParameter[0]",
        ),
        (
            lambda r: r.update(ReferenceData={"ReferenceItem": 5}),
            "Result.ReferenceData.ReferenceItem",
        ),
        (lambda r: r.update(ResultDesc=["x"]), "Result.ResultDesc"),
    ],
)
def test_malformed_results_name_the_field(change, field):
    body = copy.deepcopy(sample("b2c_result_success.json"))
    change(body["Result"])
    with pytest.raises(PayloadError) as raised:
        parse_result(body)
    assert field in raised.value.errors


@pytest.mark.parametrize("body", [None, "text", [], {}, {"Result": None}, {"Result": []}])
def test_result_without_envelope(body):
    with pytest.raises(PayloadError):
        parse_result(body)


def test_bad_b2c_parameter_values_are_reported():
    body = sample("b2c_result_success.json")
    for parameter in body["Result"]["ResultParameters"]["ResultParameter"]:
        if parameter["Key"] == "TransactionCompletedDateTime":
            parameter["Value"] = "2024-07-06 22:48:52"
        if parameter["Key"] == "B2CUtilityAccountAvailableFunds":
            parameter["Value"] = "lots"
    with pytest.raises(PayloadError) as raised:
        b2c_payment(parse_result(body))
    assert (
        "DD.MM.YYYY HH:mm:ss"
        in raised.value.errors["Result.ResultParameters.TransactionCompletedDateTime"]
    )
    assert "Result.ResultParameters.B2CUtilityAccountAvailableFunds" in raised.value.errors


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("254705912645 - NICHOLAS JOHN SONGOK", ("254705912645", "NICHOLAS JOHN SONGOK")),
        ("600992 - Safaricom Daraja 992", ("600992", "Safaricom Daraja 992")),
        ("JOHN DOE", (None, "JOHN DOE")),
        ("", (None, None)),
        (None, (None, None)),
    ],
)
def test_split_public_name(text, expected):
    assert split_public_name(text) == expected


# --- C2B ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", C2B_BODIES)
def test_every_c2b_sample_parses(name):
    raw = sample(name)
    payment = parse_c2b(raw)
    assert payment.trans_id == raw["TransID"]
    assert payment.amount == Decimal(raw["TransAmount"])
    assert payment.trans_time.tzinfo is NAIROBI
    assert payment.business_short_code == raw["BusinessShortCode"]
    assert payment.bill_ref_number == raw["BillRefNumber"]


def test_c2b_masked_confirmation():
    payment = parse_c2b(sample("c2b_confirmation.json"))
    assert payment.transaction_type == "Pay Bill"
    assert payment.trans_time == datetime(2023, 11, 21, 12, 13, 25, tzinfo=NAIROBI)
    assert payment.amount == Decimal("5.00")
    assert payment.org_account_balance == Decimal("25.00")
    assert (payment.msisdn, payment.msisdn_kind) == ("2547 ***** 126", "masked")
    assert payment.payer_name == "NICHOLAS"
    assert payment.paid_from("254700000126")
    assert not payment.paid_from("254700000127")


def test_c2b_hashed_msisdn_matches_the_sha256_of_the_phone():
    payment = parse_c2b(sample("c2b_confirmation_hashed_msisdn.json"))
    assert payment.msisdn_kind == "hashed"
    assert payment.paid_from("254705912645")  # the sandbox customer of the official B2C sample
    assert not payment.paid_from("254705912646")
    assert payment.payer_name == "NICHOLAS JOHN SONGOK"
    assert payment.invoice_number == "ThisInvoice"


def test_c2b_validation_has_a_blank_balance_and_plain_msisdn():
    payment = parse_c2b(sample("c2b_validation.json"))
    assert payment.org_account_balance is None
    assert (payment.msisdn_kind, payment.transaction_type) == ("plain", "")
    assert payment.paid_from("254708374149")
    legacy = parse_c2b(sample("c2b_confirmation_legacy_unmasked.json"))
    assert legacy.third_party_trans_id == "1234567890"


@pytest.mark.parametrize(
    ("changes", "field", "problem"),
    [
        ({"TransID": None}, "TransID", "is required"),
        ({"TransTime": "21-11-2023"}, "TransTime", "is not a time"),
        ({"TransAmount": "5.50"}, "TransAmount", "whole shillings"),
        ({"TransAmount": "-5"}, "TransAmount", "more than zero"),
        ({"TransAmount": ""}, "TransAmount", "is required"),
        ({"BusinessShortCode": ""}, "BusinessShortCode", "is required"),
        ({"OrgAccountBalance": "n/a"}, "OrgAccountBalance", "is not an amount"),
        ({"BillRefNumber": {"x": 1}}, "BillRefNumber", "must be text"),
    ],
)
def test_malformed_c2b_bodies_name_the_field(changes, field, problem):
    body = {**sample("c2b_confirmation.json"), **changes}
    with pytest.raises(PayloadError) as raised:
        parse_c2b(body)
    assert problem in raised.value.errors[field]


def test_c2b_buy_goods_without_account_number_and_numeric_fields():
    body = {**sample("c2b_confirmation.json"), "BillRefNumber": None, "BusinessShortCode": 600966}
    payment = parse_c2b(body)
    assert (payment.bill_ref_number, payment.business_short_code) == ("", "600966")


def test_c2b_not_an_object():
    with pytest.raises(PayloadError) as raised:
        parse_c2b(["TransID"])
    assert raised.value.errors == {"body": "must be a JSON object"}


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ("254708374149", "plain"),
        ("0708374149", "plain"),
        ("2547 ***** 126", "masked"),
        ("25470****149", "masked"),
        ("2547*****149", "masked"),
        (hashlib.sha256(b"254705912645").hexdigest().upper(), "hashed"),
        ("", "missing"),
        (None, "missing"),
        ("hidden", "unknown"),
    ],
)
def test_msisdn_kinds(raw, kind):
    assert msisdn_kind(raw) == kind


@pytest.mark.parametrize(
    ("raw", "phone", "matches"),
    [
        ("254708374149", "254708374149", True),
        ("0708374149", "254708374149", True),
        ("+254708374149", "254708374149", True),
        ("254708374149", "254708374148", False),
        ("25470****149", "254701234149", True),
        ("25470****149", "254711234149", False),
        ("****", "254711234149", False),  # a mask that hides everything proves nothing
        ("2547************", "254711234149", False),
        (hashlib.sha256(b"254705912645").hexdigest().upper(), "254705912645", True),
        ("hidden", "254705912645", False),
        ("254708374149", "not a phone", False),
    ],
)
def test_msisdn_matches(raw, phone, matches):
    assert msisdn_matches(raw, phone) is matches
