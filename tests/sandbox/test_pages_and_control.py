"""The sandbox's index page, certificate, and JSON control API."""

import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization


def test_root_redirects_to_an_index_showing_credentials_and_links(daraja_sandbox):
    page = requests.get(daraja_sandbox.base_url + "/", timeout=10)

    assert page.url.endswith("/sandbox/")
    c = daraja_sandbox.credentials
    for value in (c["consumer_key"], c["consumer_secret"], c["passkey"], c["initiator_password"]):
        assert value in page.text
    for link in (
        "/sandbox/phone",
        "/sandbox/paybill",
        "/sandbox/statement.csv",
        "/sandbox/certificate.cer",
    ):
        assert f'href="{link}' in page.text


def test_index_lists_transactions_and_callbacks(daraja_sandbox, daraja, receiver):
    checkout_id = daraja.stk_push(receiver).json()["CheckoutRequestID"]
    daraja_sandbox.flush()

    page = requests.get(daraja_sandbox.base_url + "/sandbox/", timeout=10).text

    assert checkout_id in page
    assert receiver.url("stk") in page


def test_index_mode_form_and_flush_button_work_without_javascript(daraja_sandbox, daraja, receiver):
    base = daraja_sandbox.base_url
    form = {
        "mode": "manual",
        "delay": "",
        "stk_outcome": "",
        "b2c_outcome": "",
        "duplicate_callbacks": "on",
    }

    saved = requests.post(f"{base}/sandbox/daraja/mode", data=form, timeout=10)
    daraja.b2c(receiver)
    flushed = requests.post(f"{base}/sandbox/flush", timeout=10)

    assert saved.status_code == 200 and saved.url.endswith("/sandbox/")
    mode = daraja_sandbox.mode()
    assert (mode["mode"], mode["delay"], mode["duplicate_callbacks"]) == ("manual", None, True)
    assert flushed.status_code == 200
    assert len(receiver.on("b2c/result")) == 2


def test_certificate_is_served_as_pem_and_der(daraja_sandbox):
    base = daraja_sandbox.base_url
    pem = requests.get(f"{base}/sandbox/certificate.cer", timeout=10)
    der = requests.get(f"{base}/sandbox/certificate.cer", params={"format": "der"}, timeout=10)

    certificate = x509.load_pem_x509_certificate(pem.content)
    assert pem.content.startswith(b"-----BEGIN CERTIFICATE-----")
    assert x509.load_der_x509_certificate(der.content) == certificate
    assert certificate.public_bytes(serialization.Encoding.DER) == der.content
    assert certificate.public_key().key_size == 2048
    assert "SandboxCertificate.cer" in der.headers["Content-Disposition"]


def test_mode_changes_are_validated(daraja_sandbox):
    url = f"{daraja_sandbox.base_url}/sandbox/api/daraja/mode"
    for body in (
        {"colour": "blue"},
        {"mode": "magic"},
        {"delay": -1},
        {"delay": "soon"},
        {"drop_callbacks": "yes"},
        {"stk_outcome": "explode"},
        {"b2c_outcome": "cancelled"},
        {"c2b_msisdn": "shown"},
    ):
        response = requests.post(url, json=body, timeout=10)
        assert response.status_code == 400, body
        assert response.json()["error"]
    assert (
        requests.post(
            url, data="[1]", timeout=10, headers={"Content-Type": "application/json"}
        ).status_code
        == 400
    )
    assert daraja_sandbox.mode()["mode"] == "auto"  # nothing half-applied


def test_reset_forgets_everything(daraja_sandbox, daraja, receiver):
    daraja.register(receiver)
    daraja.stk_push(receiver)
    daraja_sandbox.set_mode(mode="manual", delay=5)
    daraja.b2c(receiver)  # pending

    daraja_sandbox.reset()

    assert daraja_sandbox.transactions() == []
    assert daraja_sandbox.deliveries() == []
    assert daraja_sandbox.tokens_issued() == 0
    assert daraja_sandbox.flush() == []
    assert daraja_sandbox.mode()["mode"] == "auto" and daraja_sandbox.mode()["delay"] is None
    assert daraja_sandbox.balances()["174379"]["utility"] == "1000000.00"
    registrations = requests.get(
        f"{daraja_sandbox.base_url}/sandbox/api/daraja/c2b/registrations", timeout=10
    ).json()
    assert registrations == {}


def test_transactions_and_deliveries_can_be_filtered(daraja_sandbox, daraja, receiver):
    daraja.stk_push(receiver)
    daraja.b2c(receiver)
    daraja_sandbox.flush()

    assert [t["kind"] for t in daraja_sandbox.transactions("b2c")] == ["b2c"]
    assert len(daraja_sandbox.transactions()) == 2
    assert [d["kind"] for d in daraja_sandbox.deliveries("b2c_result")] == ["b2c_result"]
    assert {d["kind"] for d in daraja_sandbox.deliveries()} == {"stk_callback", "b2c_result"}
    missing = requests.get(
        f"{daraja_sandbox.base_url}/sandbox/api/daraja/transactions/nope", timeout=10
    )
    assert missing.status_code == 404


def test_token_counts_show_one_token_per_fetch(daraja_sandbox, daraja):
    daraja.new_token()
    counts = requests.get(f"{daraja_sandbox.base_url}/sandbox/api/daraja/tokens", timeout=10).json()

    assert counts == {
        "issued": 2,
        "by_consumer_key": {daraja_sandbox.credentials["consumer_key"]: 2},
        "active": 1,
    }


def test_customers_need_a_phone_and_a_name(daraja_sandbox):
    url = f"{daraja_sandbox.base_url}/sandbox/api/daraja/customers"

    assert requests.post(url, json={"phone": "0712345678"}, timeout=10).status_code == 400
    assert requests.post(url, json={"phone": "x", "name": "A"}, timeout=10).status_code == 400
    created = requests.post(url, json={"phone": "+254 712 345 678", "name": "ann"}, timeout=10)
    assert created.json() == {"phone": "254712345678", "name": "ANN"}


def test_control_api_lists_its_endpoints(daraja_sandbox):
    endpoints = requests.get(f"{daraja_sandbox.base_url}/sandbox/api/", timeout=10).json()[
        "endpoints"
    ]

    assert "POST /sandbox/api/flush" in endpoints
    assert "POST /sandbox/api/daraja/stk/<checkout_id>/press" in endpoints


def test_non_daraja_404_stays_html(daraja_sandbox):
    response = requests.get(f"{daraja_sandbox.base_url}/nothing", timeout=10)

    assert response.status_code == 404
    assert "errorCode" not in response.text
