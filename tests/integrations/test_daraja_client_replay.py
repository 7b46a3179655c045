"""The Daraja client against a replaying loopback server (real HTTP, scripted answers).

The sandbox app covers the normal flows (test_daraja_client_sandbox.py). These tests need what it
cannot give on purpose: Safaricom's official answer bodies byte for byte, a server that reads a
payment request and never answers (read timeout), a dropped connection, a broken gateway.
"""

import base64
import logging
from datetime import UTC, datetime

import pytest

from app.integrations.daraja import (
    DarajaAuthError,
    DarajaBadResponse,
    DarajaClient,
    DarajaConfig,
    DarajaNotConfigured,
    DarajaRejected,
    DarajaTimeout,
    DarajaUnavailable,
    is_accepted_code,
    nairobi_timestamp,
    stk_password,
    token_cache_key,
)
from tests.integrations.conftest import SANDBOX_PASSKEY, SECRETS, config_for
from tests.integrations.samples import sample, sample_text

OAUTH = "/oauth/v1/generate"
STK = "/mpesa/stkpush/v1/processrequest"
STK_QUERY = "/mpesa/stkpushquery/v1/query"
B2C = "/mpesa/b2c/v3/paymentrequest"
STATUS = "/mpesa/transactionstatus/v1/query"
BALANCE = "/mpesa/accountbalance/v1/query"
OFFICIAL_TOKEN = "c9SQxWWhmdVRlyh0zh8gZDTkubVF"  # oauth_response.json
NOW = datetime(2021, 6, 28, 6, 24, 8, tzinfo=UTC)  # 09:24:08 in Nairobi


@pytest.fixture
def authorised(replay):
    """The replay server hands out the official sample token."""
    replay.reply_raw(OAUTH, sample_text("oauth_response.json"))
    return replay


def _stk_push(client, **changes):
    arguments = {
        "phone": "254722000000",
        "amount": 1,
        "account_reference": "accountref",
        "description": "txndesc",
        "callback_url": "https://mydomain.com/path",
        "now": NOW,
        **changes,
    }
    return client.stk_push(**arguments)


def _b2c(client):
    return client.b2c_payment(
        "600997_Test_32et3241ed8yu",
        "254705912645",
        10,
        "remarked",
        "https://mydomain.com/path",
        "https://mydomain.com/path",
        occasion="ChristmasPay",
    )


# --- pure functions ----------------------------------------------------------------------------


def test_password_formula_matches_the_official_sample():
    official = sample("stk_push_request.json")
    assert official["Timestamp"] == "20210628092408"
    assert stk_password("174379", SANDBOX_PASSKEY, "20210628092408") == official["Password"]


def test_timestamp_is_nairobi_time():
    assert nairobi_timestamp(NOW) == "20210628092408"
    assert nairobi_timestamp(datetime(2024, 12, 31, 22, 30, tzinfo=UTC)) == "20250101013000"
    assert len(nairobi_timestamp()) == 14
    with pytest.raises(ValueError, match="aware"):
        nairobi_timestamp(datetime(2021, 6, 28, 9, 24, 8))  # noqa: DTZ001 (the refusal under test)


@pytest.mark.parametrize(
    ("code", "accepted"),
    [("0", True), (0, True), ("00000000", True), ("1", False), ("", False), (None, False)],
)
def test_accepted_response_codes(code, accepted):
    assert is_accepted_code(code) is accepted


def test_config_repr_masks_every_secret():
    config = config_for("http://127.0.0.1:9")
    shown = repr(config) + str(config) + repr(DarajaClient(config, redis=None))
    for secret in SECRETS.values():
        assert secret not in shown
    assert "consumer-key-Ab12" not in shown and "cons***" in shown
    assert "shortcode='174379'" in shown and "consumer_secret='***'" in shown


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"environment": "staging"}, "Unknown M-Pesa environment"),
        ({"base_url": None}, "needs a base URL"),
        ({"transaction_type": "PayBill"}, "TransactionType"),
        ({"c2b_register_version": "v3"}, "v1 or v2"),
        ({"read_timeout": 0}, "positive"),
    ],
)
def test_config_refuses_bad_settings(changes, message):
    with pytest.raises(ValueError, match=message):
        config_for("http://127.0.0.1:9", **changes)


def test_environments_resolve_their_base_urls():
    assert DarajaConfig(environment="sandbox").url == "https://sandbox.safaricom.co.ke"
    assert DarajaConfig(environment="production").url == "https://api.safaricom.co.ke"
    override = DarajaConfig(environment="production", base_url="http://127.0.0.1:5001/")
    assert override.url == "http://127.0.0.1:5001"


def test_token_key_names_neither_the_secret_nor_the_key():
    config = config_for("http://127.0.0.1:9")
    key = token_cache_key(config)
    assert key.startswith("daraja:token:")
    assert config.consumer_key not in key and config.consumer_secret not in key
    assert key != token_cache_key(config_for("http://127.0.0.1:9", consumer_key="other"))
    assert key != token_cache_key(config_for("http://127.0.0.1:10"))


# --- requests carry the documented fields ------------------------------------------------------


def test_oauth_request_and_stk_push_body(authorised, replay_client):
    authorised.reply_raw(STK, sample_text("stk_push_response.json"))
    accepted = _stk_push(replay_client())

    official = sample("stk_push_response.json")
    assert accepted.checkout_request_id == official["CheckoutRequestID"]
    assert accepted.merchant_request_id == official["MerchantRequestID"]
    assert (accepted.response_code, accepted.customer_message) == ("0", official["CustomerMessage"])

    (oauth,) = authorised.requests_to(OAUTH)
    assert oauth.method == "GET" and oauth.query == {"grant_type": ["client_credentials"]}
    basic = base64.b64encode(b"consumer-key-Ab12:" + SECRETS["consumer_secret"].encode()).decode()
    assert oauth.headers["Authorization"] == f"Basic {basic}"

    (push,) = authorised.requests_to(STK)
    assert push.headers["Authorization"] == f"Bearer {OFFICIAL_TOKEN}"
    assert push.headers["User-Agent"] == "Daystar-Integrations/1.0"
    body = push.json
    assert set(body) == set(sample("stk_push_request.json"))
    assert body["Password"] == sample("stk_push_request.json")["Password"]
    assert body["Timestamp"] == "20210628092408"
    assert body["TransactionType"] == "CustomerPayBillOnline"
    assert (body["PartyA"], body["PhoneNumber"], body["PartyB"]) == (
        "254722000000",
        "254722000000",
        "174379",
    )
    assert body["Amount"] == 1


def test_buy_goods_sends_the_till_as_party_b(authorised, replay_client):
    authorised.reply_raw(STK, sample_text("stk_push_response.json"))
    _stk_push(replay_client(transaction_type="CustomerBuyGoodsOnline", party_b="5551234"))
    body = authorised.requests_to(STK)[0].json
    assert (body["TransactionType"], body["PartyB"], body["BusinessShortCode"]) == (
        "CustomerBuyGoodsOnline",
        "5551234",
        "174379",
    )


def test_stk_query_body_and_answers(authorised, replay_client):
    authorised.reply_raw(STK_QUERY, sample_text("stk_query_response.json"))
    authorised.reply_raw(STK_QUERY, sample_text("stk_query_response_cancelled.json"))
    client = replay_client()
    paid = client.stk_query("ws_CO_13012021093521236557", now=NOW)
    cancelled = client.stk_query("ws_CO_27072017151044001", now=NOW)
    assert (paid.pending, paid.result_code, paid.succeeded) == (False, "0", True)
    assert (cancelled.pending, cancelled.result_code) == (False, "1032")
    assert cancelled.result_desc == "[STK_CB - ]Request cancelled by user"
    body = authorised.requests_to(STK_QUERY)[0].json
    assert set(body) == set(sample("stk_query_request.json"))
    assert body["Password"] == stk_password("174379", SANDBOX_PASSKEY, "20210628092408")


def test_stk_query_while_processing_is_pending_and_not_retried(authorised, replay_client):
    """The official "being processed" answer is an HTTP 500 error body: pending, asked once."""
    authorised.reply_raw(STK_QUERY, sample_text("stk_query_processing_error.json"), status=500)
    answer = replay_client().stk_query("ws_CO_20022018230142206")
    assert (answer.pending, answer.result_code) == (True, None)
    assert answer.result_desc == "The transaction is being processed"
    assert len(authorised.requests_to(STK_QUERY)) == 1


def test_stk_query_wrong_credentials_is_an_error_not_pending(authorised, replay_client):
    error = {"requestId": "r-1", "errorCode": "500.001.1001", "errorMessage": "Wrong credentials"}
    authorised.reply(STK_QUERY, 500, error)
    with pytest.raises(DarajaRejected) as raised:
        replay_client().stk_query("ws_CO_1")
    assert (raised.value.error_code, raised.value.request_id) == ("500.001.1001", "r-1")


def test_b2c_body_uses_v3_and_the_documented_occassion(authorised, replay_client):
    authorised.reply_raw(B2C, sample_text("b2c_response.json"))
    accepted = _b2c(replay_client())
    assert accepted.conversation_id == "AG_20240706_20106e9209f64bebd05b"
    assert accepted.originator_conversation_id == "600997_Test_32et3241ed8yu"
    body = authorised.requests_to(B2C)[0].json
    assert set(body) == set(sample("b2c_request.json"))
    assert body["Occassion"] == "ChristmasPay" and "Occasion" not in body
    assert (body["PartyA"], body["PartyB"], body["Amount"]) == ("600992", "254705912645", 10)
    assert body["SecurityCredential"] == SECRETS["security_credential"]
    assert body["InitiatorName"] == "testapi"


def test_transaction_status_body_avoids_the_doc_bug_spellings(authorised, replay_client):
    authorised.reply_raw(STATUS, sample_text("transaction_status_response.json"))
    accepted = replay_client().transaction_status(
        "http://myservice:8080/transactionstatus/result",
        "http://myservice:8080/timeout",
        transaction_id="NEF61H8J60",
        original_conversation_id="7071-4170-a0e5-8345632bad442144258",
        occasion="OK",
    )
    assert accepted.conversation_id == "AG_20210709_1234409f86436c583e3f"
    body = authorised.requests_to(STATUS)[0].json
    documented = {key.replace(" ", "") for key in sample("transaction_status_request.json")}
    assert set(body) == documented
    assert (body["CommandID"], body["TransactionID"], body["PartyA"]) == (
        "TransactionStatusQuery",
        "NEF61H8J60",
        "600992",
    )


def test_transaction_status_needs_an_id(replay_client):
    with pytest.raises(ValueError, match="receipt or an OriginatorConversationID"):
        replay_client().transaction_status("https://x/result", "https://x/timeout")


def test_account_balance_body(authorised, replay_client):
    authorised.reply_raw(BALANCE, sample_text("account_balance_response.json"))
    accepted = replay_client().account_balance("https://x/result", "https://x/timeout")
    assert accepted.originator_conversation_id == "515-5258779-3"
    body = authorised.requests_to(BALANCE)[0].json
    assert set(body) == set(sample("account_balance_request.json"))
    assert (body["CommandID"], body["IdentifierType"], body["PartyA"]) == (
        "AccountBalance",
        "4",
        "600992",
    )


@pytest.mark.parametrize(
    ("version", "answer"),
    [("v1", "c2b_register_url_v1_response.json"), ("v2", "c2b_register_url_response.json")],
)
def test_register_c2b_urls(authorised, replay_client, version, answer):
    path = f"/mpesa/c2b/{version}/registerurl"
    authorised.reply_raw(path, sample_text(answer))
    result = replay_client(c2b_register_version=version).register_c2b_urls(
        "https://x/confirmation", "https://x/validation"
    )
    assert result["ResponseCode"] == "0"
    body = authorised.requests_to(path)[0].json
    assert set(body) == set(sample(f"c2b_register_url_{version}_request.json"))
    assert (body["ResponseType"], body["ShortCode"]) == ("Completed", "174379")


def test_register_c2b_urls_refuses_other_response_types(replay_client):
    with pytest.raises(ValueError, match="Completed or Cancelled"):
        replay_client().register_c2b_urls("https://x/c", "https://x/v", response_type="Canceled")


def test_c2b_simulate(authorised, replay_client):
    authorised.reply_raw("/mpesa/c2b/v2/simulate", sample_text("c2b_simulate_response.json"))
    answer = replay_client().c2b_simulate("254708374149", 1, "M0001", version="v2")
    assert answer["OriginatorCoversationID"] == "53e3-4aa8-9fe0-8fb5e4092cdd3405976"
    body = authorised.requests_to("/mpesa/c2b/v2/simulate")[0].json
    assert set(body) == set(sample("c2b_simulate_request.json"))
    assert (body["CommandID"], body["Msisdn"], body["BillRefNumber"]) == (
        "CustomerPayBillOnline",
        "254708374149",
        "M0001",
    )


def test_c2b_simulate_is_refused_in_production(redis_conn):
    client = DarajaClient(DarajaConfig(environment="production", shortcode="1"), redis_conn)
    with pytest.raises(DarajaNotConfigured, match="only in the sandbox"):
        client.c2b_simulate("254708374149", 1, "M0001")


@pytest.mark.parametrize(
    ("changes", "missing"),
    [
        ({"initiator_name": None}, "initiator_name"),
        ({"security_credential": ""}, "security_credential"),
        ({"b2c_shortcode": None}, "b2c_shortcode"),
    ],
)
def test_b2c_without_its_settings_sends_nothing(replay, replay_client, changes, missing):
    with pytest.raises(DarajaNotConfigured, match=missing) as raised:
        _b2c(replay_client(**changes))
    assert raised.value.maybe_sent is False
    assert replay.received == []


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"amount": 0}, "at least 1"), ({"amount": 1.5}, "whole"), ({"phone": "0722000000"}, "2547")],
)
def test_stk_push_refuses_bad_arguments_before_sending(authorised, replay_client, changes, message):
    with pytest.raises(ValueError, match=message):
        _stk_push(replay_client(), **changes)
    assert authorised.requests_to(STK) == []


# --- error bodies --------------------------------------------------------------------------------


def test_error_body_becomes_a_typed_rejection(authorised, replay_client):
    authorised.reply_raw(STK, sample_text("error_response.json"), status=400)
    with pytest.raises(DarajaRejected) as raised:
        _stk_push(replay_client())
    error = raised.value
    assert error.error_code == "400.002.02"
    assert error.request_id == "1c5b-4ba8-815c-ac45c57a3db01495926"
    assert error.message == "Bad Request - Invalid BusinessShortCode"
    assert (error.http_status, error.maybe_sent) == (400, False)
    assert "400.002.02" in str(error) and "1c5b-4ba8" in str(error)


def test_duplicate_b2c_is_refused_once_without_retry(authorised, replay_client):
    authorised.reply_raw(
        B2C, sample_text("b2c_error_duplicate_originator_conversation_id.json"), status=500
    )
    with pytest.raises(DarajaRejected) as raised:
        _b2c(replay_client())
    assert raised.value.error_code == "500.002.1001" and raised.value.maybe_sent is False
    assert len(authorised.requests_to(B2C)) == 1


def test_internal_server_error_to_a_payment_is_maybe_sent(authorised, replay_client):
    """500.003.1001 does not say the payment was refused, unlike the other error bodies."""
    error = {
        "requestId": "i-1",
        "errorCode": "500.003.1001",
        "errorMessage": "Internal Server Error",
    }
    authorised.reply(STK, 500, error)
    authorised.reply(STK_QUERY, 500, error)
    client = replay_client()
    with pytest.raises(DarajaRejected) as push:
        _stk_push(client)
    with pytest.raises(DarajaRejected) as query:
        client.stk_query("ws_CO_1")
    assert (push.value.maybe_sent, query.value.maybe_sent) == (True, False)
    assert len(authorised.requests_to(STK)) == 1


def test_invalid_token_refreshes_once_and_repeats_the_call(replay, replay_client, redis_conn):
    replay.reply(OAUTH, body={"access_token": "first", "expires_in": 3599})
    replay.reply(OAUTH, body={"access_token": "second", "expires_in": "3599"})
    replay.reply_raw(B2C, sample_text("error_invalid_access_token.json"), status=404)
    replay.reply_raw(B2C, sample_text("b2c_response.json"))
    client = replay_client()
    assert _b2c(client).conversation_id == "AG_20240706_20106e9209f64bebd05b"
    posts = replay.requests_to(B2C)
    assert [p.headers["Authorization"] for p in posts] == ["Bearer first", "Bearer second"]
    assert posts[0].body == posts[1].body  # the same payment, refused the first time
    assert redis_conn.get(token_cache_key(client.config)) == b"second"


def test_a_sealed_token_is_refreshed_and_replaced_in_its_sealed_form(replay, redis_conn):
    replay.reply(OAUTH, body={"access_token": "first", "expires_in": 3599})
    replay.reply(OAUTH, body={"access_token": "second", "expires_in": 3599})
    replay.reply_raw(B2C, sample_text("error_invalid_access_token.json"), status=404)
    replay.reply_raw(B2C, sample_text("b2c_response.json"))
    client = DarajaClient(
        config_for(replay.url),
        redis_conn,
        seal=lambda token: f"sealed({token})",
        unseal=lambda stored: stored[7:-1] if stored.startswith("sealed(") else None,
    )
    key = token_cache_key(client.config)
    redis_conn.set(key, "not ours", ex=600)  # cannot be unsealed: fetched again
    assert _b2c(client).conversation_id == "AG_20240706_20106e9209f64bebd05b"
    posts = replay.requests_to(B2C)
    assert [p.headers["Authorization"] for p in posts] == ["Bearer first", "Bearer second"]
    assert redis_conn.get(key) == b"sealed(second)"  # the refused one deleted in its stored form


def test_invalid_token_twice_gives_up_after_one_refresh(replay, replay_client):
    replay.reply(OAUTH, body={"access_token": "first", "expires_in": 3599})
    replay.reply(OAUTH, body={"access_token": "second", "expires_in": 3599})
    replay.reply_raw(STK, sample_text("error_invalid_access_token.json"), status=404)
    with pytest.raises(DarajaRejected) as raised:
        _stk_push(replay_client())
    assert raised.value.error_code == "404.001.03"
    assert (len(replay.requests_to(OAUTH)), len(replay.requests_to(STK))) == (2, 2)


def test_product_mismatch_is_not_a_token_problem(authorised, replay_client):
    """401.003.01: the Daraja app lacks the product; a new token cannot help."""
    authorised.reply_raw(
        "/mpesa/c2b/v2/registerurl", sample_text("error_no_apiproduct_match.json"), status=401
    )
    with pytest.raises(DarajaRejected) as raised:
        replay_client().register_c2b_urls("https://x/c", "https://x/v", version="v2")
    assert raised.value.error_code == "401.003.01"
    assert len(authorised.requests_to(OAUTH)) == 1


def test_refused_token_is_not_dropped_when_another_process_replaced_it(
    replay, replay_client, redis_conn
):
    """Compare-and-delete: while our call with the old token failed, another process cached a
    new one; we must use it, not delete it and fetch a third (which would cancel theirs)."""
    client = replay_client()
    key = token_cache_key(client.config)
    redis_conn.set(key, "old", ex=600)
    replay.reply(
        STK,
        404,
        {"requestId": "r", "errorCode": "404.001.03", "errorMessage": "Invalid Access Token"},
        hook=lambda: redis_conn.set(key, "newer-from-another-process", ex=600),
    )
    replay.reply_raw(STK, sample_text("stk_push_response.json"))
    _stk_push(client)
    auth = [request.headers["Authorization"] for request in replay.requests_to(STK)]
    assert auth == ["Bearer old", "Bearer newer-from-another-process"]
    assert replay.requests_to(OAUTH) == []
    assert redis_conn.get(key) == b"newer-from-another-process"


def test_non_zero_response_code_is_a_rejection(authorised, replay_client):
    authorised.reply(
        STK,
        body={
            "MerchantRequestID": "m",
            "CheckoutRequestID": "c",
            "ResponseCode": "1",
            "ResponseDescription": "Rejected by the rule engine",
        },
    )
    with pytest.raises(DarajaRejected) as raised:
        _stk_push(replay_client())
    assert (raised.value.error_code, raised.value.maybe_sent) == ("1", False)


# --- OAuth failures -------------------------------------------------------------------------------


def test_bad_credentials_are_an_auth_error(replay, replay_client):
    replay.reply(OAUTH, 400, b"")  # Daraja answers wrong credentials with an empty 400
    with pytest.raises(DarajaAuthError) as raised:
        _stk_push(replay_client())
    assert raised.value.http_status == 400
    assert replay.requests_to(STK) == []


def test_oauth_error_codes_are_kept(replay, replay_client):
    replay.reply(
        OAUTH,
        400,
        {
            "requestId": "o-1",
            "errorCode": "400.008.02",
            "errorMessage": "Invalid grant type passed",
        },
    )
    with pytest.raises(DarajaAuthError) as raised:
        replay_client().access_token()
    assert (raised.value.error_code, raised.value.request_id) == ("400.008.02", "o-1")


@pytest.mark.parametrize(
    "body",
    [
        {"access_token": "t"},
        {"access_token": "", "expires_in": 3599},
        {"access_token": "t", "expires_in": "soon"},
        [1],
    ],
)
def test_unusable_token_answers(replay, replay_client, body):
    replay.reply(OAUTH, body=body)
    with pytest.raises(DarajaBadResponse):
        replay_client().access_token()


def test_token_lifetime_as_a_string_sets_the_cache_expiry(replay, replay_client, redis_conn):
    replay.reply_raw(OAUTH, sample_text("oauth_response_expires_in_string.json"))
    client = replay_client()
    assert client.access_token() == "SGWcJPtNtYNPGm6uSYR9yPYrAI3Bm"
    ttl = redis_conn.ttl(token_cache_key(client.config))
    assert 3599 - 300 - 2 <= ttl <= 3599 - 300  # refreshed five minutes before expiry


def test_token_service_gateway_failure_is_retried_once(replay, replay_client):
    replay.reply(OAUTH, 503, b"<html>Service Unavailable</html>")
    replay.reply_raw(OAUTH, sample_text("oauth_response.json"))
    assert replay_client().access_token() == OFFICIAL_TOKEN
    assert len(replay.requests_to(OAUTH)) == 2


def test_token_service_down_twice_is_unavailable(replay, replay_client):
    replay.reply(OAUTH, 503, b"<html>Service Unavailable</html>")
    with pytest.raises(DarajaUnavailable) as raised:
        replay_client().access_token()
    assert raised.value.http_status == 503
    assert len(replay.requests_to(OAUTH)) == 2


# --- timeouts, dropped connections, gateways -----------------------------------------------------


def test_read_timeout_on_stk_push_is_maybe_sent_and_never_retried(authorised, replay_client):
    """The server reads the push and stays silent: M-Pesa may have sent the prompt."""
    authorised.reply(STK, hang=True)
    with pytest.raises(DarajaTimeout) as raised:
        _stk_push(replay_client())
    assert raised.value.maybe_sent is True
    assert len(authorised.requests_to(STK)) == 1


def test_read_timeout_on_b2c_is_maybe_sent_and_never_retried(authorised, replay_client):
    authorised.reply(B2C, hang=True)
    with pytest.raises(DarajaTimeout) as raised:
        _b2c(replay_client())
    assert raised.value.maybe_sent is True
    assert len(authorised.requests_to(B2C)) == 1


def test_dropped_connection_after_a_payment_is_maybe_sent(authorised, replay_client):
    authorised.reply(B2C, drop=True)
    with pytest.raises(DarajaTimeout) as raised:
        _b2c(replay_client())
    assert raised.value.maybe_sent is True
    assert len(authorised.requests_to(B2C)) == 1


def test_read_timeout_on_a_query_is_retried_once(authorised, replay_client):
    authorised.reply(STK_QUERY, hang=True)
    authorised.reply_raw(STK_QUERY, sample_text("stk_query_response.json"))
    assert replay_client().stk_query("ws_CO_13012021093521236557").result_code == "0"
    assert len(authorised.requests_to(STK_QUERY)) == 2


def test_query_timing_out_twice_raises(authorised, replay_client):
    authorised.reply(STATUS, hang=True)
    with pytest.raises(DarajaTimeout):
        replay_client().transaction_status(
            "https://x/r", "https://x/t", transaction_id="NEF61H8J60"
        )
    assert len(authorised.requests_to(STATUS)) == 2


def test_gateway_failure_on_a_payment_is_not_retried(authorised, replay_client):
    authorised.reply(B2C, 502, b"<html>Bad Gateway</html>", content_type="text/html")
    with pytest.raises(DarajaBadResponse) as raised:
        _b2c(replay_client())
    assert (raised.value.http_status, raised.value.maybe_sent) == (502, True)
    assert len(authorised.requests_to(B2C)) == 1


def test_gateway_failure_on_a_query_is_retried_once(authorised, replay_client):
    authorised.reply(BALANCE, 502, b"<html>Bad Gateway</html>", content_type="text/html")
    authorised.reply_raw(BALANCE, sample_text("account_balance_response.json"))
    accepted = replay_client().account_balance("https://x/r", "https://x/t")
    assert accepted.conversation_id == "AG_20200123_0000417fed8ed666e976"
    assert len(authorised.requests_to(BALANCE)) == 2


def test_non_json_success_to_a_payment_is_maybe_sent(authorised, replay_client):
    authorised.reply(STK, 200, b"OK", content_type="text/plain")
    with pytest.raises(DarajaBadResponse) as raised:
        _stk_push(replay_client())
    assert raised.value.maybe_sent is True


def test_accepted_push_without_ids_is_maybe_sent(authorised, replay_client):
    authorised.reply(STK, body={"ResponseCode": "0", "ResponseDescription": "Success"})
    with pytest.raises(DarajaBadResponse) as raised:
        _stk_push(replay_client())
    assert raised.value.maybe_sent is True


def test_nothing_listening_is_unavailable_and_not_sent(redis_conn):
    import socket

    with socket.socket() as probe:  # a port that was free a moment ago and now has no listener
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = DarajaClient(config_for(f"http://127.0.0.1:{port}"), redis_conn)
    with pytest.raises(DarajaUnavailable) as raised:
        client.access_token()
    assert raised.value.maybe_sent is False
    redis_conn.set(token_cache_key(client.config), "cached", ex=60)
    with pytest.raises(DarajaUnavailable) as raised:
        _b2c(client)
    assert raised.value.maybe_sent is False


# --- secrets stay out of logs and errors ---------------------------------------------------------


def test_no_secret_reaches_the_logs_or_the_errors(replay, replay_client, caplog):
    caplog.set_level(logging.DEBUG)
    replay.reply(OAUTH, body={"access_token": "TOKEN-never-logged-123", "expires_in": 3599})
    replay.reply(STK, 404, {"requestId": "r", "errorCode": "404.001.03", "errorMessage": "Invalid"})
    replay.reply_raw(STK, sample_text("stk_push_response.json"))
    replay.reply(B2C, hang=True)
    client = replay_client()
    _stk_push(client)
    with pytest.raises(DarajaTimeout) as raised:
        _b2c(client)
    password = stk_password("174379", SANDBOX_PASSKEY, nairobi_timestamp(NOW))
    seen = caplog.text + str(raised.value) + repr(raised.value)
    assert "processrequest -> HTTP 404 errorCode=404.001.03" in caplog.text
    for secret in [*SECRETS.values(), "TOKEN-never-logged-123", password]:
        assert secret not in seen
