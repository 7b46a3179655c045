"""Daraja's HTTP API on loopback: the same paths, checks and answers as
https://sandbox.safaricom.co.ke (mpesa.md). Each view checks the token, then the fields in
Daraja's order, then hands the request to the simulator."""

import base64
import binascii

from flask import Blueprint, current_app, jsonify, request

from sandbox.daraja import ids, payloads, rules
from sandbox.daraja.errors import (
    INTERNAL_ERROR,
    INVALID_AUTHENTICATION,
    INVALID_GRANT_TYPE,
    INVALID_PAYLOAD,
    MERCHANT_DOES_NOT_EXIST,
    METHOD_NOT_ALLOWED,
    NO_API_PRODUCT,
    RESOURCE_NOT_FOUND,
    DarajaError,
    error,
    invalid,
)
from sandbox.daraja.simulator import DarajaSimulator

api = Blueprint("daraja_api", __name__)


def simulator() -> DarajaSimulator:
    return current_app.extensions["daraja"]


@api.errorhandler(DarajaError)
def daraja_error(exc: DarajaError):
    return exc.response()


def daraja_http_error(exc):
    """404, 405 and 500 on Daraja's paths answer in Daraja's body, not Flask's HTML."""
    pair = {404: RESOURCE_NOT_FOUND, 405: METHOD_NOT_ALLOWED}.get(
        getattr(exc, "code", 500), INTERNAL_ERROR
    )
    return error(pair).response()


def authorised_json() -> dict:
    """The bearer token is checked first, then the body must be a JSON object."""
    simulator().check_token(request.headers.get("Authorization"))
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise error(INVALID_PAYLOAD)
    return body


def known_shortcode(value: str, field: str) -> str:
    if value not in simulator().shortcodes:
        raise invalid(field)
    return value


def initiator_password(body: dict) -> str | None:
    """The initiator password decrypted from SecurityCredential (None if not ours)."""
    return simulator().keys.decrypt(rules.security_credential(body))


# --- OAuth --------------------------------------------------------------------------------------
@api.get("/oauth/v1/generate")
def generate_token():
    """Client-credentials token; each new token cancels the app's previous one."""
    config = current_app.config
    if request.args.get("grant_type") != "client_credentials":
        raise error(INVALID_GRANT_TYPE)
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        raise error(INVALID_AUTHENTICATION)
    try:
        key, _, secret = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise error(INVALID_AUTHENTICATION) from None
    if (key, secret) != (
        config["SANDBOX_DARAJA_CONSUMER_KEY"],
        config["SANDBOX_DARAJA_CONSUMER_SECRET"],
    ):
        raise error(INVALID_AUTHENTICATION)
    token = simulator().issue_token(key)
    return jsonify(
        payloads.oauth(
            token.value,
            config["SANDBOX_DARAJA_TOKEN_LIFETIME"],
            config["SANDBOX_DARAJA_EXPIRES_IN_TYPE"],
        )
    )


# --- M-Pesa Express -----------------------------------------------------------------------------
def _stk_shortcode(body: dict) -> str:
    code = rules.shortcode(body, "BusinessShortCode")
    if code not in simulator().shortcodes:
        raise error(MERCHANT_DOES_NOT_EXIST)
    return code


@api.post("/mpesa/stkpush/v1/processrequest")
def stk_push():
    """Prompts the customer's phone; the result follows on CallBackURL."""
    body = authorised_json()
    config = current_app.config
    code = _stk_shortcode(body)
    rules.timestamp(body)
    rules.check_stk_password(body, code, config["SANDBOX_DARAJA_PASSKEY"])
    checked = {
        "BusinessShortCode": code,
        "TransactionType": rules.choice(body, "TransactionType", rules.STK_TRANSACTION_TYPES),
        "Amount": rules.amount(body, maximum=config["SANDBOX_DARAJA_MAX_AMOUNT"]),
        "PartyA": rules.msisdn(body, "PartyA"),
        "PartyB": rules.shortcode(body, "PartyB"),
        "PhoneNumber": rules.msisdn(body, "PhoneNumber"),
        "CallBackURL": rules.url(body, "CallBackURL"),
        "AccountReference": rules.length(body, "AccountReference", 1, 12),
        "TransactionDesc": rules.length(body, "TransactionDesc", 0, 13),
    }
    return jsonify(payloads.stk_accepted(simulator().stk_push(checked)))


@api.post("/mpesa/stkpushquery/v1/query")
def stk_query():
    """The prompt's result, or "being processed" (HTTP 500) while the customer has not answered."""
    body = authorised_json()
    code = _stk_shortcode(body)
    rules.timestamp(body)
    rules.check_stk_password(body, code, current_app.config["SANDBOX_DARAJA_PASSKEY"])
    checkout_id = rules.text(body, "CheckoutRequestID")
    if not checkout_id:
        raise invalid("CheckoutRequestID")
    return jsonify(payloads.stk_query_result(simulator().stk_query(checkout_id)))


# --- B2C ----------------------------------------------------------------------------------------
def _b2c(version: str):
    body = authorised_json()
    config = current_app.config
    checked = {}
    if version == "v3":
        checked["OriginatorConversationID"] = rules.length(body, "OriginatorConversationID", 1, 100)
    checked["InitiatorName"] = rules.length(body, "InitiatorName", 1, 100)
    password = initiator_password(body)
    checked |= {
        "CommandID": rules.choice(body, "CommandID", rules.B2C_COMMAND_IDS),
        "Amount": rules.amount(body, maximum=config["SANDBOX_DARAJA_MAX_AMOUNT"]),
        "PartyA": known_shortcode(rules.shortcode(body, "PartyA"), "PartyA"),
        "PartyB": rules.msisdn(body, "PartyB"),
        "Remarks": rules.length(body, "Remarks", 2, 100),
        "QueueTimeOutURL": rules.url(body, "QueueTimeOutURL"),
        "ResultURL": rules.url(body, "ResultURL"),
    }
    # The v3 documentation spells it Occassion; older clients send Occasion.
    occasion_key = "Occassion" if "Occassion" in body else "Occasion"
    checked["Occassion"] = rules.length(body, occasion_key, 0, 100)
    return jsonify(payloads.b2c_accepted(simulator().b2c(checked, password, version)))


@api.post("/mpesa/b2c/v3/paymentrequest")
def b2c_v3():
    """Pays a customer; OriginatorConversationID is the caller's and must be unique."""
    return _b2c("v3")


@api.post("/mpesa/b2c/v1/paymentrequest")
def b2c_v1():
    """The older B2C path: the sandbox makes the OriginatorConversationID."""
    return _b2c("v1")


# --- Transaction Status and Account Balance -----------------------------------------------------
def _query_fields(body: dict, command: str, identifier_types: tuple[str, ...]) -> dict:
    # The official sample writes "Command ID" and "Transaction ID"; accept both spellings.
    for spaced, plain in (("Command ID", "CommandID"), ("Transaction ID", "TransactionID")):
        if plain not in body and spaced in body:
            body[plain] = body[spaced]
    return {
        "Initiator": rules.length(body, "Initiator", 1, 100),
        "CommandID": rules.choice(body, "CommandID", (command,)),
        "PartyA": rules.shortcode(body, "PartyA"),
        "IdentifierType": rules.choice(body, "IdentifierType", identifier_types),
        "Remarks": rules.length(body, "Remarks", 0, 100),
        "QueueTimeOutURL": rules.url(body, "QueueTimeOutURL"),
        "ResultURL": rules.url(body, "ResultURL"),
        "Occasion": rules.length(body, "Occasion", 0, 100),
    }


@api.post("/mpesa/transactionstatus/v1/query")
def transaction_status():
    """Looks a transaction up by receipt or OriginalConversationID; the result follows."""
    body = authorised_json()
    password = initiator_password(body)
    checked = _query_fields(body, "TransactionStatusQuery", ("1", "2", "4"))
    checked["TransactionID"] = rules.text(body, "TransactionID")
    checked["OriginalConversationID"] = rules.text(body, "OriginalConversationID")
    if not checked["TransactionID"] and not checked["OriginalConversationID"]:
        raise invalid("TransactionID")
    query = simulator().transaction_status(checked, password)
    return jsonify(payloads.query_accepted(query))


@api.post("/mpesa/accountbalance/v1/query")
def account_balance():
    """The organisation's balances follow on ResultURL."""
    body = authorised_json()
    password = initiator_password(body)
    checked = _query_fields(body, "AccountBalance", ("4",))
    query = simulator().account_balance(checked, password)
    return jsonify(payloads.query_accepted(query))


# --- C2B ----------------------------------------------------------------------------------------
def _c2b_product(version: str) -> None:
    if version not in current_app.config["SANDBOX_DARAJA_C2B_VERSIONS"]:
        raise error(NO_API_PRODUCT)


@api.post("/mpesa/c2b/<any(v1, v2):version>/registerurl")
def c2b_register(version: str):
    """Registers the shortcode's ConfirmationURL and ValidationURL (re-registering replaces)."""
    body = authorised_json()
    _c2b_product(version)
    code = rules.shortcode(body, "ShortCode")
    if code not in simulator().shortcodes:
        raise invalid("ShortCode", "400.003.02")
    response_type = rules.text(body, "ResponseType")
    if response_type not in rules.C2B_RESPONSE_TYPES:
        raise invalid("ResponseType", "400.003.02")
    checked = {
        "ShortCode": code,
        "ResponseType": response_type,
        "ConfirmationURL": rules.c2b_url(body, "ConfirmationURL"),
        "ValidationURL": rules.c2b_url(body, "ValidationURL") if body.get("ValidationURL") else "",
    }
    simulator().register_c2b(checked, version)
    if version == "v1":
        return jsonify(payloads.c2b_accepted(ids.short_originator_id(), "success"))
    return jsonify(payloads.c2b_accepted(ids.request_id(), "Success"))


@api.post("/mpesa/c2b/<any(v1, v2):version>/simulate")
def c2b_simulate(version: str):
    """A customer pays the paybill (sandbox only on Daraja too)."""
    body = authorised_json()
    _c2b_product(version)
    code = rules.shortcode(body, "ShortCode")
    if code not in simulator().shortcodes:
        raise invalid("ShortCode")
    command = rules.choice(body, "CommandID", rules.C2B_COMMAND_IDS)
    amount = rules.amount(body, maximum=current_app.config["SANDBOX_DARAJA_MAX_AMOUNT"])
    phone = rules.msisdn(body, "Msisdn")
    account = rules.text(body, "BillRefNumber")
    if command == "CustomerPayBillOnline" and not 1 <= len(account) <= 20:
        raise invalid("BillRefNumber")
    txn = simulator().start_c2b(code, phone, amount, account, command)
    return jsonify(payloads.c2b_accepted(txn.originator_conversation_id, payloads.ACCEPTED))
