"""OAuth on the sandbox: Basic auth, Daraja's error codes, one current token per app, lifetime."""

import time

import pytest
import requests

from tests.sandbox.conftest import Daraja, certificate_of, credentials_of, sample, serve, shape


def generate(base_url: str, auth=None, grant_type="client_credentials", headers=None):
    params = {"grant_type": grant_type} if grant_type is not None else {}
    return requests.get(
        f"{base_url}/oauth/v1/generate", params=params, auth=auth, headers=headers, timeout=10
    )


def test_token_is_issued_with_expires_in_as_a_string_by_default(daraja_sandbox):
    c = daraja_sandbox.credentials
    response = generate(daraja_sandbox.base_url, (c["consumer_key"], c["consumer_secret"]))

    assert response.status_code == 200
    body = response.json()
    assert shape(body) == shape(sample("oauth_response_expires_in_string.json"))
    assert body["expires_in"] == "3599"
    assert len(body["access_token"]) == 28
    assert daraja_sandbox.tokens_issued() == 1


def test_expires_in_can_be_a_number_and_the_lifetime_is_configurable():
    with serve(SANDBOX_DARAJA_EXPIRES_IN_TYPE="number", SANDBOX_DARAJA_TOKEN_LIFETIME=120) as url:
        c = credentials_of(url)
        body = generate(url, (c["consumer_key"], c["consumer_secret"])).json()

    assert shape(body) == shape(sample("oauth_response.json"))
    assert body["expires_in"] == 120


def test_a_new_token_cancels_the_previous_one(daraja_sandbox, daraja, receiver):
    first = daraja.token
    second = daraja.new_token()

    stale = daraja.post("/mpesa/stkpush/v1/processrequest", daraja.stk_body(receiver), token=first)
    fresh = daraja.post("/mpesa/stkpush/v1/processrequest", daraja.stk_body(receiver), token=second)

    assert stale.status_code == 404
    assert stale.json()["errorCode"] == "404.001.03"
    assert stale.json()["errorMessage"] == "Invalid Access Token"
    assert shape(stale.json()) == shape(sample("error_invalid_access_token.json"))
    assert fresh.status_code == 200
    assert daraja_sandbox.tokens_issued() == 2


def test_an_expired_token_is_refused():
    with serve(SANDBOX_DARAJA_TOKEN_LIFETIME=1) as url:
        client = Daraja(url, credentials_of(url), certificate_of(url))
        time.sleep(1.1)
        response = client.post("/mpesa/accountbalance/v1/query", {})

    assert response.status_code == 404
    assert response.json()["errorCode"] == "404.001.03"


def test_expire_tokens_on_the_control_api_invalidates_every_token(daraja_sandbox, daraja, receiver):
    assert daraja_sandbox.expire_tokens() == 1

    response = daraja.stk_push(receiver)

    assert response.json()["errorCode"] == "404.001.03"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic abc"},
        {"Authorization": "Token xyz"},
        {"Authorization": "Bearer"},
    ],
)
def test_a_missing_or_malformed_bearer_header_is_an_invalid_authentication_header(
    daraja_sandbox, headers
):
    response = requests.post(
        f"{daraja_sandbox.base_url}/mpesa/stkpush/v1/processrequest",
        json={},
        headers=headers,
        timeout=10,
    )

    assert response.status_code == 404
    assert response.json()["errorCode"] == "404.001.04"
    assert response.json()["errorMessage"] == "Invalid Authentication Header"


@pytest.mark.parametrize("grant_type", [None, "", "password", "CLIENT_CREDENTIALS"])
def test_a_wrong_grant_type_is_400_008_02(daraja_sandbox, grant_type):
    c = daraja_sandbox.credentials
    response = generate(
        daraja_sandbox.base_url, (c["consumer_key"], c["consumer_secret"]), grant_type
    )

    assert response.status_code == 400
    assert response.json()["errorCode"] == "400.008.02"
    assert response.json()["errorMessage"] == "Invalid grant type passed"
    assert daraja_sandbox.tokens_issued() == 0


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer abc"}, {"Authorization": "Basic !!!not-base64"}],
)
def test_an_authentication_that_is_not_basic_is_400_008_01(daraja_sandbox, headers):
    response = generate(daraja_sandbox.base_url, headers=headers)

    assert response.status_code == 400
    assert response.json()["errorCode"] == "400.008.01"


@pytest.mark.parametrize("which", ["key", "secret"])
def test_wrong_credentials_are_refused(daraja_sandbox, which):
    c = daraja_sandbox.credentials
    auth = (c["consumer_key"] + ("x" if which == "key" else ""), c["consumer_secret"])
    if which == "secret":
        auth = (c["consumer_key"], "wrong")

    response = generate(daraja_sandbox.base_url, auth)

    assert response.status_code == 400
    assert response.json() | {"requestId": ""} == {
        "requestId": "",
        "errorCode": "400.008.01",
        "errorMessage": "Invalid Authentication passed",
    }
    assert daraja_sandbox.tokens_issued() == 0


def test_configured_credentials_are_the_only_ones_accepted():
    with serve(SANDBOX_DARAJA_CONSUMER_KEY="k1", SANDBOX_DARAJA_CONSUMER_SECRET="s1") as url:
        assert generate(url, ("k1", "s1")).status_code == 200
        assert generate(url, ("sandbox-consumer-key", "sandbox-consumer-secret")).status_code == 400


def test_wrong_methods_and_unknown_paths_answer_in_daraja_format(daraja_sandbox):
    base = daraja_sandbox.base_url

    post_oauth = requests.post(f"{base}/oauth/v1/generate", timeout=10)
    get_stk = requests.get(f"{base}/mpesa/stkpush/v1/processrequest", timeout=10)
    unknown = requests.post(f"{base}/mpesa/nothing/v1/here", timeout=10)

    assert (post_oauth.status_code, post_oauth.json()["errorCode"]) == (405, "405.001")
    assert (get_stk.status_code, get_stk.json()["errorCode"]) == (405, "405.001")
    assert (unknown.status_code, unknown.json()["errorCode"]) == (404, "404.001.01")
    assert unknown.json()["errorMessage"] == "Resource not found"
    assert set(unknown.json()) == {"requestId", "errorCode", "errorMessage"}


def test_a_body_that_is_not_a_json_object_is_an_invalid_payload(daraja_sandbox, daraja):
    response = daraja.http.post(
        f"{daraja_sandbox.base_url}/mpesa/stkpush/v1/processrequest",
        data="not json",
        headers={"Authorization": f"Bearer {daraja.token}", "Content-Type": "application/json"},
        timeout=10,
    )

    assert response.status_code == 400
    assert response.json()["errorCode"] == "400.002.05"
