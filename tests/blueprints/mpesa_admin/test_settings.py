"""M-Pesa settings page (administrators only): the form as a full page and as its partial, saving
with secrets encrypted and never shown back, fields set by environment variables read-only, bad
input as 422 with each message by its field, the certificate upload, and the buttons that try the
settings on the Daraja sandbox (test connection, register paybill URLs, account balance)."""

import json
import re
from datetime import timedelta
from io import BytesIO

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select

from app.extensions import db
from app.integrations.daraja_security import certificate_fingerprint
from app.models import AuditLog, CallbackKind, Role, Setting
from app.models.base import utcnow
from app.services.mpesa import callbacks
from app.services.mpesa import config as mpesa_config
from tests.blueprints.mpesa_admin.conftest import HX, is_page, stored_value
from tests.integrations.certificates import self_signed
from tests.integrations.samples import sample_text

URL = "/integrations/mpesa/settings"
SECRET = "consumer-secret-Xq81-very-private"


@pytest.fixture(scope="module")
def certificate():
    return self_signed(rsa.generate_private_key(public_exponent=65537, key_size=2048))


def form_data(**changes) -> dict:
    """Every field the page sends, as an administrator would submit it."""
    data = {
        "environment": "sandbox",
        "base_url": "",
        "consumer_key": "",
        "consumer_secret": "",
        "shortcode": "174379",
        "passkey": "",
        "transaction_type": "CustomerPayBillOnline",
        "till_number": "",
        "stk_max_amount": "150000",
        "stk_duplicate_window_seconds": "120",
        "stk_callback_window_minutes": "5",
        "b2c_shortcode": "",
        "initiator_name": "testapi",
        "initiator_password": "",
        "security_credential": "",
        "b2c_second_approval_above": "",
        "c2b_register_version": "v1",
        "c2b_response_type": "Completed",
        "c2b_accept_all": "no",
        "public_base_url": "https://daystar.example.co.ke",
        "callback_secret": "",
        "verify_before_credit": "no",
    }
    return data | changes


def input_tag(html: str, name: str) -> str:
    match = re.search(rf'<input[^>]*name="{name}"[^>]*>', html)
    assert match, f"no input named {name}"
    return match.group(0)


# --- page -------------------------------------------------------------------------------------


def test_full_page_and_partial(admin_client):
    page = admin_client.get(URL)
    assert page.status_code == 200 and is_page(page)
    assert 'id="mpesa-settings-form"' in page.text and 'id="mpesa-tools"' in page.text
    assert 'hx-encoding="multipart/form-data"' in page.text
    assert "Test connection" in page.text and "Register C2B URLs" in page.text
    assert "Account balance" in page.text and "HX-Request" in page.headers["Vary"]

    partial = admin_client.get(URL, headers=HX)
    assert partial.status_code == 200 and not is_page(partial)
    assert partial.text.lstrip().startswith("<form") and 'id="mpesa-settings-form"' in partial.text
    assert 'id="flash"' in partial.text  # the flash area, out of band


@pytest.mark.parametrize("role", [Role.LOAN_OFFICER, Role.ACCOUNTANT, Role.VIEWER])
def test_only_administrators(login, role):
    browser = login(role)
    assert browser.get(URL).status_code == 403
    assert browser.post(URL, data=form_data()).status_code == 403
    assert browser.post(f"{URL}/test-connection").status_code == 403
    assert mpesa_config.current().shortcode == ""


def test_settings_tab_only_for_administrators(admin_client, viewer_client):
    assert f'href="{URL}"' in admin_client.get("/integrations/mpesa/").text
    assert f'href="{URL}"' not in viewer_client.get("/integrations/mpesa/").text


# --- saving -----------------------------------------------------------------------------------


def test_save_stores_values_and_encrypts_secrets(admin_client):
    data = form_data(consumer_key="consumer-key-Ab12", consumer_secret=SECRET, passkey="pk-9876")
    response = admin_client.post(URL, data=data, headers=HX)
    assert response.status_code == 200, response.text
    assert "M-Pesa settings saved" in response.text

    config = mpesa_config.current()
    assert (config.shortcode, config.consumer_secret, config.passkey) == (
        "174379",
        SECRET,
        "pk-9876",
    )
    assert config.stk_max_amount == "150000" and config.initiator_name == "testapi"
    row = db.session.get(Setting, "mpesa.consumer_secret")
    assert row.secret and SECRET not in row.value  # a Fernet token, not the text

    # Shown masked, never in an input, neither in the answer nor on the next visit.
    for html in (response.text, admin_client.get(URL).text):
        assert SECRET not in html and "pk-9876" not in html
        assert "••••••••ry-private"[-4:] in html and "Stored: <code>••••••••" in html
        assert not re.search(r'value="[^"]', input_tag(html, "consumer_secret"))
        assert 'type="password"' in input_tag(html, "consumer_secret")


def test_empty_secret_keeps_the_stored_one(admin_client, save_settings):
    save_settings(consumer_secret=SECRET, passkey="pk-9876")
    response = admin_client.post(URL, data=form_data(passkey="pk-new"), headers=HX)
    assert response.status_code == 200
    assert stored_value("consumer_secret") == SECRET and stored_value("passkey") == "pk-new"


def test_a_field_missing_from_the_request_keeps_its_value(admin_client, save_settings):
    save_settings(shortcode="600000", public_base_url="https://a.example.co.ke")
    response = admin_client.post(URL, data={"stk_max_amount": "9000"}, headers=HX)
    assert response.status_code == 200
    config = mpesa_config.current()
    assert (config.shortcode, config.stk_max_amount) == ("600000", "9000")


def test_change_is_audited_without_values(admin_client):
    admin_client.post(URL, data=form_data(consumer_secret=SECRET))
    entry = db.session.scalars(
        select(AuditLog).where(AuditLog.action == "mpesa.settings_changed")
    ).one()
    assert entry.actor_id == admin_client.user.id
    assert "consumer_secret" in entry.details["keys"] and SECRET not in json.dumps(entry.details)


def test_nothing_changed_says_so(admin_client):
    admin_client.post(URL, data=form_data())
    response = admin_client.post(URL, data=form_data(), headers=HX)
    assert response.status_code == 200 and "nothing changed" in response.text


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("shortcode", "12ab", "Enter the 5 to 7 digit number."),
        ("environment", "staging", "Choose sandbox, production or simulator."),
        ("stk_max_amount", "0", "Enter a whole number of at least 1."),
        ("b2c_second_approval_above", "lots", "Enter an amount in shillings, or leave it empty."),
        ("public_base_url", "daystar.example", "Enter the address Safaricom reaches us at"),
        ("callback_secret", "short", "Use at least 16 characters"),
        ("c2b_accept_all", "maybe", "Choose yes or no."),
    ],
)
def test_bad_input_is_422_with_the_message_by_its_field(admin_client, field, value, message):
    response = admin_client.post(URL, data=form_data(**{field: value}), headers=HX)
    assert response.status_code == 422
    assert message in response.text
    assert 'aria-invalid="true"' in input_or_select(response.text, field)
    assert mpesa_config.current().shortcode == ""  # nothing stored


def input_or_select(html: str, name: str) -> str:
    match = re.search(rf'<(input|select)[^>]*name="{name}"[^>]*>', html)
    assert match, f"no field named {name}"
    return match.group(0)


def test_a_typed_secret_is_not_echoed_when_the_form_is_refused(admin_client):
    response = admin_client.post(
        URL, data=form_data(shortcode="x", consumer_secret=SECRET), headers=HX
    )
    assert response.status_code == 422 and SECRET not in response.text
    assert stored_value("consumer_secret") is None


# --- environment variables --------------------------------------------------------------------


def test_environment_variables_are_read_only(admin_client, overrides, save_settings):
    save_settings(consumer_key="stored-key-1111")
    overrides(consumer_key="env-consumer-key-7777", shortcode="600999", environment="simulator")
    page = admin_client.get(URL)
    assert "Set by <code>DAYSTAR_MPESA_CONSUMER_KEY</code>" in page.text
    assert "Set by <code>DAYSTAR_MPESA_SHORTCODE</code>" in page.text
    assert "Set by <code>DAYSTAR_MPESA_ENV</code>" in page.text
    assert "env-consumer-key-7777" not in page.text and "••••••••7777" in page.text
    assert re.search(r'<input id="shortcode" type="text" value="600999" disabled', page.text)

    # A tampered request cannot change them: they are not stored.
    response = admin_client.post(
        URL, data=form_data(consumer_key="typed-key", shortcode="174379"), headers=HX
    )
    assert response.status_code == 200
    assert stored_value("consumer_key") == "stored-key-1111" and stored_value("shortcode") is None
    assert mpesa_config.current().consumer_key == "env-consumer-key-7777"


# --- certificate ------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", [serialization.Encoding.DER, serialization.Encoding.PEM])
def test_certificate_upload_is_stored_as_pem_with_its_fingerprint(
    admin_client, certificate, encoding
):
    upload = (BytesIO(certificate.public_bytes(encoding)), "SandboxCertificate.cer")
    data = form_data(certificate_file=upload)
    response = admin_client.post(URL, data=data, headers=HX, content_type="multipart/form-data")
    assert response.status_code == 200, response.text
    stored = stored_value("certificate")
    assert stored.startswith("-----BEGIN CERTIFICATE-----")
    assert stored == certificate.public_bytes(serialization.Encoding.PEM).decode().strip()
    fingerprint = certificate_fingerprint(certificate)
    assert fingerprint in response.text and "apicrypt.example.test" in response.text


def test_certificate_that_is_not_one_is_422(admin_client):
    data = form_data(shortcode="12", certificate_file=(BytesIO(b"not a certificate"), "x.cer"))
    response = admin_client.post(URL, data=data, headers=HX, content_type="multipart/form-data")
    assert response.status_code == 422
    assert "not an X.509 certificate" in response.text
    assert "Enter the 5 to 7 digit number." in response.text  # the other field at the same time
    assert stored_value("certificate") is None


def test_remove_certificate(admin_client, certificate, save_settings):
    save_settings(certificate=certificate.public_bytes(serialization.Encoding.PEM).decode())
    assert "Remove the stored certificate" in admin_client.get(URL).text
    response = admin_client.post(URL, data=form_data(remove_certificate="y"), headers=HX)
    assert response.status_code == 200 and stored_value("certificate") is None


# --- tools on the Daraja sandbox --------------------------------------------------------------


def test_test_connection_fetches_a_token(admin_client, sandbox_settings):
    response = admin_client.post(f"{URL}/test-connection", headers=HX)
    assert response.status_code == 200, response.text
    assert 'id="mpesa-tool-result"' in response.text and "Connected" in response.text
    assert sandbox_settings.base_url in response.text
    assert sandbox_settings.tokens_issued() == 1

    page = admin_client.post(f"{URL}/test-connection")  # without htmx: the whole page
    assert page.status_code == 200 and is_page(page) and "Connected" in page.text
    assert sandbox_settings.tokens_issued() == 1  # the shared token was reused


def test_test_connection_with_a_wrong_secret_shows_daraja_refusal(
    admin_client, sandbox_settings, save_settings
):
    save_settings(consumer_secret="not-the-secret")
    response = admin_client.post(f"{URL}/test-connection", headers=HX)
    assert response.status_code == 400
    assert "No access token from M-Pesa" in response.text
    assert response.headers["HX-Retarget"] == "#flash"
    assert "not-the-secret" not in response.text


def test_test_connection_unconfigured_says_what_is_missing(admin_client):
    response = admin_client.post(f"{URL}/test-connection", headers=HX)
    assert response.status_code == 400
    assert "The M-Pesa consumer key and secret are not set." in response.text


def test_register_urls_on_the_sandbox(admin_client, sandbox_settings):
    response = admin_client.post(f"{URL}/register-urls", headers=HX)
    assert response.status_code == 200, response.text
    assert "Paybill URLs registered" in response.text
    assert "/callbacks/daraja/…/c2b/confirmation" in response.text
    assert "callback-secret-0123456789abcdef" not in response.text
    assert db.session.scalars(
        select(AuditLog).where(AuditLog.action == "mpesa.c2b_urls_registered")
    ).one()


def test_register_urls_without_public_address_is_422_in_the_flash_area(admin_client):
    response = admin_client.post(f"{URL}/register-urls", headers=HX)
    assert response.status_code == 422
    assert "Set the public address Safaricom reaches us at first." in response.text
    assert response.headers["HX-Retarget"] == "#flash"


def test_balance_request_then_the_callback_fills_the_panel(admin_client, sandbox_settings):
    response = admin_client.post(f"{URL}/balance", headers=HX)
    assert response.status_code == 200, response.text
    assert "Balance requested" in response.text and "ConversationID" in response.text
    # The balance panel, out of band, now polls until the answer arrives.
    panel = re.search(r'<section id="mpesa-balance"[^>]*>', response.text).group(0)
    assert 'hx-swap-oob="true"' in panel and 'hx-trigger="every 3s"' in panel
    since = re.search(r"since=([^&\"]+)", panel).group(1)

    waiting = admin_client.get(f"/integrations/mpesa/balance?since={since}", headers=HX)
    assert waiting.status_code == 200 and "Waiting for M-Pesa" in waiting.text

    callback, errors = callbacks.receive(
        CallbackKind.BALANCE_RESULT,
        sample_text("account_balance_result.json").encode(),
        {"Content-Type": "application/json"},
        "196.201.214.200",
    )
    assert errors is None
    callbacks.process(callback.id)  # what the job does
    arrived = admin_client.get(f"/integrations/mpesa/balance?since={since}", headers=HX)
    assert arrived.status_code == 286  # stops the polling
    assert "Working Account" in arrived.text and "700,000.00" in arrived.text
    assert "hx-trigger" not in arrived.text.split('<div id="flash"')[0]


def test_balance_panel_stops_waiting_after_two_minutes(viewer_client):
    since = (utcnow() - timedelta(minutes=3)).isoformat()
    response = viewer_client.get("/integrations/mpesa/balance", query_string={"since": since},
                                 headers=HX)  # fmt: skip
    assert response.status_code == 286 and "has not answered yet" in response.text
    page = viewer_client.get("/integrations/mpesa/balance")
    assert page.status_code == 200 and is_page(page) and "No balance known yet" in page.text


def test_balance_request_unconfigured_is_refused(admin_client):
    response = admin_client.post(f"{URL}/balance", headers=HX)
    assert 400 <= response.status_code < 500
    assert "Set the public address Safaricom reaches us at first." in response.text
