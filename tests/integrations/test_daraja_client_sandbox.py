"""The Daraja client against the Daraja sandbox over real HTTP, with the real Redis.

Every call's happy path, Daraja's error bodies as typed errors, and the shared token. The
callbacks the sandbox sends come to a loopback receiver (the replay server) and go through the
payload parsers, so client, sandbox and parsers are checked against each other. Failures the
sandbox cannot produce on purpose (a read timeout on a payment) are in
test_daraja_client_replay.py.
"""

import json
import threading
from decimal import Decimal

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from app.integrations import daraja_payloads as payloads
from app.integrations.daraja import (
    DarajaAuthError,
    DarajaClient,
    DarajaConfig,
    DarajaRejected,
    token_cache_key,
)
from app.integrations.daraja_security import security_credential
from tests.integrations.certificates import self_signed

CUSTOMER = "254708374149"


def _config(sandbox, **changes) -> DarajaConfig:
    creds = sandbox.credentials
    settings = {
        "environment": "simulator",
        "base_url": sandbox.base_url,
        "consumer_key": creds["consumer_key"],
        "consumer_secret": creds["consumer_secret"],
        "shortcode": creds["shortcode"],
        "passkey": creds["passkey"],
        "b2c_shortcode": creds["shortcodes"][1],
        "initiator_name": creds["initiator_name"],
        "security_credential": security_credential(creds["initiator_password"], sandbox.cert),
        "read_timeout": 10.0,
        "retry_delay": 0.0,
        **changes,
    }
    return DarajaConfig(**settings)


@pytest.fixture
def receiver(replay):
    """Where the sandbox posts its callbacks: answers as our callback routes do."""
    for path in ("/stk", "/b2c/result", "/b2c/timeout", "/status/result", "/balance/result"):
        replay.reply(path, body={"ResultCode": 0, "ResultDesc": "Accepted"})
    replay.reply("/c2b/validation", body={"ResultCode": "0", "ResultDesc": "Accepted"})
    replay.reply("/c2b/confirmation", body={"ResultCode": 0, "ResultDesc": "Accepted"})
    return replay


@pytest.fixture
def make_client(daraja_sandbox, redis_conn):
    """make(**config changes) -> a client of the sandbox with its own HTTP session."""
    return lambda **changes: DarajaClient(_config(daraja_sandbox, **changes), redis_conn)


def _delivered(sandbox, kind: str) -> dict:
    """The one callback of `kind` the sandbox sent on flush, parsed as our routes parse it."""
    (delivery,) = [d for d in sandbox.flush() if d["kind"] == kind]
    assert delivery["status_code"] == 200, delivery
    return json.loads(delivery["body_text"], parse_float=Decimal)


def _push(client, receiver, phone=CUSTOMER, amount=150):
    return client.stk_push(phone, amount, "M0001", "Contribution", receiver.url + "/stk")


# --- the shared token ---------------------------------------------------------------------------


def test_one_token_is_fetched_and_shared_by_two_clients(daraja_sandbox, make_client, receiver):
    first, second = make_client(), make_client()
    accepted = _push(first, receiver)
    assert second.stk_query(accepted.checkout_request_id).pending is True
    assert first.access_token() == second.access_token()
    assert daraja_sandbox.tokens_issued() == 1


def test_concurrent_first_calls_fetch_one_token(daraja_sandbox, make_client):
    """Eight processes' worth of clients start together on an empty cache: the Redis lock lets
    one fetch, the rest read its token (a second fetch would cancel the first on Daraja)."""
    clients = [make_client() for _ in range(8)]
    start = threading.Barrier(len(clients))
    tokens = []

    def fetch(client):
        start.wait()
        tokens.append(client.access_token())

    threads = [threading.Thread(target=fetch, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(tokens) == 8 and len(set(tokens)) == 1
    assert daraja_sandbox.tokens_issued() == 1


def test_token_is_refreshed_five_minutes_before_expiry(daraja_sandbox, make_client, redis_conn):
    """The sandbox issues 3599-second tokens with expires_in as a string ("3599"); the cache
    entry lives 300 seconds less, so the token is replaced while it still works."""
    client = make_client()
    token = client.access_token()
    key = token_cache_key(client.config)
    assert 3299 - 2 <= redis_conn.ttl(key) <= 3299
    redis_conn.delete(key)  # the cache entry's 55 minutes pass; the token has 5 left
    balance = client.account_balance("http://127.0.0.1:9/balance", "http://127.0.0.1:9/timeout")
    assert balance.conversation_id
    assert client.access_token() != token
    assert daraja_sandbox.tokens_issued() == 2


def test_invalid_token_is_refreshed_once_and_the_payment_sent_once(
    daraja_sandbox, make_client, receiver
):
    """Daraja cancelled our token (another app instance fetched one, or it expired early): the
    push is refused with 404.001.03, a new token is fetched, and the push goes through once."""
    client = make_client()
    client.access_token()
    daraja_sandbox.expire_tokens()
    accepted = _push(client, receiver)
    assert daraja_sandbox.tokens_issued() == 2
    (push,) = daraja_sandbox.transactions(kind="stk")
    assert push["checkout_request_id"] == accepted.checkout_request_id


def test_forced_refresh_replaces_the_shared_token(daraja_sandbox, make_client, receiver):
    """A forced refresh (the settings page's "test connection") cancels the token the other
    client holds on Daraja; that client's next call recovers through the shared cache."""
    first, second = make_client(), make_client()
    old = first.access_token()
    new = second.access_token(force_refresh=True)
    assert new != old and first.access_token() == new
    assert _push(first, receiver).checkout_request_id
    assert daraja_sandbox.tokens_issued() == 2


def test_wrong_consumer_secret_is_an_auth_error(daraja_sandbox, make_client):
    with pytest.raises(DarajaAuthError) as raised:
        make_client(consumer_secret="not-the-secret").access_token()
    assert (raised.value.error_code, raised.value.http_status) == ("400.008.01", 400)
    assert raised.value.request_id
    assert daraja_sandbox.tokens_issued() == 0


# --- happy paths, with the callbacks through the parsers ----------------------------------------


def test_stk_push_query_and_callback(daraja_sandbox, make_client, receiver):
    client = make_client()
    accepted = _push(client, receiver)
    assert accepted.response_code == "0" and accepted.merchant_request_id
    callback = payloads.parse_stk_callback(_delivered(daraja_sandbox, "stk_callback"))
    assert callback.checkout_request_id == accepted.checkout_request_id
    assert callback.succeeded and callback.amount == Decimal("150.00")
    assert callback.phone == CUSTOMER and callback.receipt
    answer = client.stk_query(accepted.checkout_request_id)
    assert (answer.pending, answer.result_code, answer.succeeded) == (False, "0", True)
    assert len(receiver.requests_to("/stk")) == 1


def test_stk_query_is_pending_until_the_customer_answers(daraja_sandbox, make_client, receiver):
    daraja_sandbox.set_mode(mode="manual")
    client = make_client()
    accepted = _push(client, receiver)
    waiting = client.stk_query(accepted.checkout_request_id)
    assert (waiting.pending, waiting.result_code) == (True, None)
    daraja_sandbox.press(accepted.checkout_request_id, "cancel")
    cancelled = client.stk_query(accepted.checkout_request_id)
    assert (cancelled.pending, cancelled.result_code) == (False, "1032")
    callback = payloads.parse_stk_callback(_delivered(daraja_sandbox, "stk_callback"))
    assert callback.result_code == "1032" and callback.amount is None


@pytest.mark.parametrize("encoding", [serialization.Encoding.PEM, serialization.Encoding.DER])
def test_b2c_with_a_credential_from_the_served_certificate(
    daraja_sandbox, make_client, receiver, encoding
):
    """The credential our security module makes from the sandbox's certificate (PEM or DER)
    decrypts to the initiator password there: the payment succeeds."""
    certificate = x509.load_pem_x509_certificate(daraja_sandbox.cert).public_bytes(encoding)
    password = daraja_sandbox.credentials["initiator_password"]
    client = make_client(security_credential=security_credential(password, certificate))
    accepted = client.b2c_payment(
        "DSB-LOAN-1",
        CUSTOMER,
        2500,
        "Loan disbursement",
        receiver.url + "/b2c/result",
        receiver.url + "/b2c/timeout",
        occasion="Loan 1",
    )
    assert accepted.originator_conversation_id == "DSB-LOAN-1" and accepted.conversation_id
    result = payloads.parse_result(_delivered(daraja_sandbox, "b2c_result"))
    assert result.succeeded and result.conversation_id == accepted.conversation_id
    payment = payloads.b2c_payment(result)
    assert payment.amount == Decimal("2500.00") and payment.recipient_phone == CUSTOMER


def test_b2c_with_a_credential_from_another_certificate_fails_2001(
    daraja_sandbox, make_client, receiver
):
    stranger = self_signed(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    password = daraja_sandbox.credentials["initiator_password"]
    client = make_client(security_credential=security_credential(password, stranger))
    client.b2c_payment(
        "DSB-LOAN-2", CUSTOMER, 100, "Loan", receiver.url + "/b2c/result", receiver.url + "/b2c/t"
    )
    result = payloads.parse_result(_delivered(daraja_sandbox, "b2c_result"))
    assert (result.result_code, result.succeeded) == ("2001", False)


def test_transaction_status_of_a_b2c_payment(daraja_sandbox, make_client, receiver):
    client = make_client()
    client.b2c_payment(
        "DSB-LOAN-3", CUSTOMER, 700, "Loan", receiver.url + "/b2c/result", receiver.url + "/b2c/t"
    )
    paid = payloads.b2c_payment(payloads.parse_result(_delivered(daraja_sandbox, "b2c_result")))
    accepted = client.transaction_status(
        receiver.url + "/status/result",
        receiver.url + "/status/timeout",
        original_conversation_id="DSB-LOAN-3",
    )
    assert accepted.conversation_id
    report = payloads.transaction_status(
        payloads.parse_result(_delivered(daraja_sandbox, "status_result"))
    )
    assert report.completed and report.receipt == paid.receipt
    assert report.amount == Decimal("700.00")


def test_account_balance(daraja_sandbox, make_client, receiver):
    accepted = make_client().account_balance(
        receiver.url + "/balance/result", receiver.url + "/balance/timeout"
    )
    assert accepted.conversation_id
    report = payloads.account_balance(
        payloads.parse_result(_delivered(daraja_sandbox, "balance_result"))
    )
    assert report.available("Utility Account") == Decimal("1000000.00")


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_register_c2b_urls_and_simulate_a_payment(daraja_sandbox, make_client, receiver, version):
    client = make_client(c2b_register_version=version)
    answer = client.register_c2b_urls(
        receiver.url + "/c2b/confirmation", receiver.url + "/c2b/validation"
    )
    assert answer["ResponseCode"] == "0"
    simulated = client.c2b_simulate(CUSTOMER, 300, "M0001")
    assert simulated["ResponseCode"] == "0"
    deliveries = daraja_sandbox.flush()
    (confirmation,) = [d for d in deliveries if d["kind"] == "c2b_confirmation"]
    payment = payloads.parse_c2b(json.loads(confirmation["body_text"]))
    assert (payment.amount, payment.bill_ref_number) == (Decimal("300.00"), "M0001")
    assert payment.paid_from(CUSTOMER)


# --- Daraja's error bodies as typed errors --------------------------------------------------------


def test_wrong_passkey_is_rejected_with_daraja_code(make_client, receiver):
    with pytest.raises(DarajaRejected) as raised:
        _push(make_client(passkey="0" * 64), receiver)
    error = raised.value
    assert (error.error_code, error.message, error.http_status) == (
        "500.001.1001",
        "Wrong credentials",
        500,
    )
    assert error.request_id and error.maybe_sent is False


def test_invalid_callback_url_is_rejected(make_client):
    with pytest.raises(DarajaRejected) as raised:
        make_client().stk_push(CUSTOMER, 10, "M0001", "Contribution", "not a url")
    assert raised.value.error_code == "400.002.02"
    assert raised.value.message == "Bad Request - Invalid CallBackURL"


def test_second_prompt_while_one_is_open_is_refused(daraja_sandbox, make_client, receiver):
    daraja_sandbox.set_mode(mode="manual")
    client = make_client()
    _push(client, receiver)
    with pytest.raises(DarajaRejected) as raised:
        _push(client, receiver)
    assert raised.value.error_code == "500.001.1001"
    assert "Unable to lock subscriber" in raised.value.message
    assert len(daraja_sandbox.transactions(kind="stk")) == 1


def test_duplicate_originator_conversation_id_is_refused(daraja_sandbox, make_client, receiver):
    client = make_client()
    urls = (receiver.url + "/b2c/result", receiver.url + "/b2c/timeout")
    client.b2c_payment("DSB-LOAN-4", CUSTOMER, 100, "Loan", *urls)
    with pytest.raises(DarajaRejected) as raised:
        client.b2c_payment("DSB-LOAN-4", CUSTOMER, 100, "Loan", *urls)
    assert (raised.value.error_code, raised.value.maybe_sent) == ("500.002.1001", False)
    assert len(daraja_sandbox.transactions(kind="b2c")) == 1


def test_unknown_checkout_id_is_rejected(make_client):
    with pytest.raises(DarajaRejected) as raised:
        make_client().stk_query("ws_CO_000000000000000000")
    assert raised.value.error_code == "400.002.02"


def test_c2b_url_with_a_forbidden_word_is_rejected(make_client):
    with pytest.raises(DarajaRejected) as raised:
        make_client().register_c2b_urls("http://127.0.0.1:9/mpesa/confirm", "http://127.0.0.1:9/v")
    assert raised.value.error_code == "400.003.02"
    assert "MPESA" in raised.value.message
