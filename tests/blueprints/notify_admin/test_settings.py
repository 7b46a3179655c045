"""Notification settings page (administrators only): the form as a full page and as its partial,
the six providers with their state (configured, circuit, place in the order), saving with
secrets encrypted and never shown back, fields set by environment variables read-only, values
normalised, bad input as 422 with each message by its field, and the change audited."""

import json
import re

import pytest
from sqlalchemy import select

from app.blueprints.notify_admin.settings_form import SECTIONS, NotifySettingsForm, field_name
from app.extensions import db
from app.models import AuditLog, Role, Setting
from app.services import settings as stored_settings
from app.services.notifications import admin_settings, circuit, providers
from app.services.notifications import config as notify_config
from tests.factories import SYSTEM

URL = "/integrations/notifications/settings"
HX = {"HX-Request": "true"}
TOKEN = "twilio-auth-token-Zq81-very-private"
SID = "AC" + "0123456789abcdef" * 2


def is_page(response) -> bool:
    return "<html" in response.text


def stored(key: str) -> str | None:
    return stored_settings.stored(notify_config.PREFIX).get(key)


def form_data(**changes) -> dict:
    """The page's general fields as an administrator would submit them (providers left empty,
    which keeps their secrets and stores no other value)."""
    values = admin_settings.values_in_force()
    data = {field_name(k): "" if k in admin_settings.SECRET_KEYS else v for k, v in values.items()}
    return data | changes


def input_tag(html: str, name: str) -> str:
    match = re.search(rf'<(?:input|select)[^>]*name="{name}"[^>]*>', html)
    assert match, f"no field named {name}"
    return match.group(0)


@pytest.fixture
def overrides(app):
    """set(**values): notification settings as if environment variables set them."""
    saved = dict(app.config.get("NOTIFY_OVERRIDES", {}))

    def _set(**values):
        app.config["NOTIFY_OVERRIDES"] = {**saved, **values}

    yield _set
    app.config["NOTIFY_OVERRIDES"] = saved


# --- page -------------------------------------------------------------------------------------


def test_full_page_and_partial(admin_client):
    page = admin_client.get(URL)
    assert page.status_code == 200 and is_page(page)
    assert "HX-Request" in page.headers["Vary"]
    html = page.text
    assert 'id="notify-settings-form"' in html
    for legend in ("Providers", "Order &amp; rules", "Branding", "Messages", "Alerts"):
        assert f"<legend><strong>{legend}</strong></legend>" in html
    for provider in (
        "Twilio",
        "Africa&#39;s Talking",
        "Infobip",
        "SendGrid",
        "Mailgun",
        "Amazon SES",
    ):
        assert f"<strong>{provider}</strong>" in html
    assert input_tag(html, "sms_providers").count('value="africastalking,twilio,infobip"') == 1
    assert 'type="time"' in input_tag(html, "quiet_hours_start")
    assert 'href="/integrations/notifications/test-message"' in html

    partial = admin_client.get(URL, headers=HX)
    assert partial.status_code == 200 and not is_page(partial)
    assert partial.text.lstrip().startswith("<form") and 'id="notify-settings-form"' in partial.text
    assert 'id="flash"' in partial.text  # the flash area, out of band


def test_the_form_covers_every_setting(app):
    shown = {key for _, keys in SECTIONS for key in keys}
    assert shown == set(admin_settings.GENERAL_KEYS)
    with app.test_request_context():
        form = NotifySettingsForm()
        assert sorted(form.setting_keys()) == sorted(admin_settings.KEYS)
        assert all(field_name(key) in form for key in admin_settings.KEYS)


@pytest.mark.parametrize("role", [Role.LOAN_OFFICER, Role.ACCOUNTANT, Role.VIEWER])
def test_only_administrators(login, role):
    browser = login(role)
    assert browser.get(URL).status_code == 403
    assert browser.get(URL, headers=HX).status_code == 403
    assert browser.post(URL, data={"sms_providers": "twilio"}).status_code == 403
    assert stored("sms_providers") is None


def test_settings_tab_only_for_administrators(admin_client, viewer_client):
    assert f'href="{URL}"' in admin_client.get("/integrations/notifications/").text
    assert f'href="{URL}"' not in viewer_client.get("/integrations/notifications/").text


def test_signed_out_htmx_request_is_sent_to_the_login_page(client):
    response = client.get(URL, headers=HX)
    assert response.status_code == 401 and "/auth/login" in response.headers["HX-Redirect"]


# --- saving -----------------------------------------------------------------------------------


def test_save_stores_values_and_encrypts_secrets(admin_client):
    data = form_data(
        twilio_account_sid=SID,
        twilio_auth_token=TOKEN,
        twilio_from_number="+254700000999",
        sms_providers="twilio, africastalking",
        sacco_name="Daystar Staff SACCO",
    )
    response = admin_client.post(URL, data=data, headers=HX)
    assert response.status_code == 200, response.text
    assert "Notification settings saved" in response.text

    current = notify_config.current()
    assert current.order("sms") == ["twilio", "africastalking"]
    assert current.sacco_name == "Daystar Staff SACCO"
    assert notify_config.provider_values("twilio") == {
        "account_sid": SID,
        "auth_token": TOKEN,
        "from_number": "+254700000999",
    }
    row = db.session.get(Setting, "notify.twilio.auth_token")
    assert row.secret and TOKEN not in row.value  # a Fernet token, not the text
    assert not db.session.get(Setting, "notify.twilio.account_sid").secret

    # Shown masked, never in an input, neither in the answer nor on the next visit.
    for html in (response.text, admin_client.get(URL).text):
        assert TOKEN not in html
        assert "Stored: <code>••••••••vate</code>" in html
        assert not re.search(r'value="[^"]', input_tag(html, "twilio_auth_token"))
        assert 'type="password"' in input_tag(html, "twilio_auth_token")
        assert f'value="{SID}"' in input_tag(html, "twilio_account_sid")


def test_empty_secret_keeps_the_stored_one(admin_client):
    admin_settings.save({"twilio.auth_token": TOKEN, "mailgun.api_key": "key-old"}, SYSTEM)
    response = admin_client.post(URL, data=form_data(mailgun_api_key="key-new"), headers=HX)
    assert response.status_code == 200
    assert stored("twilio.auth_token") == TOKEN and stored("mailgun.api_key") == "key-new"


def test_a_field_missing_from_the_request_keeps_its_value(admin_client):
    admin_settings.save({"daily_limit": "9", "sacco_name": "Old name"}, SYSTEM)
    response = admin_client.post(URL, data={"sacco_name": "New name"}, headers=HX)
    assert response.status_code == 200
    current = notify_config.current()
    assert (current.daily_limit, current.sacco_name) == ("9", "New name")


def test_an_emptied_setting_returns_to_its_default(admin_client):
    admin_settings.save({"quiet_hours_start": "22:30"}, SYSTEM)
    response = admin_client.post(URL, data=form_data(quiet_hours_start=""), headers=HX)
    assert response.status_code == 200
    assert stored("quiet_hours_start") is None
    assert notify_config.current().quiet_hours_start == "21:00"


def test_defaults_are_not_stored_so_they_stay_in_force(admin_client):
    admin_settings.save({"daily_limit": "9"}, SYSTEM)
    response = admin_client.post(URL, data=form_data(daily_limit="5"), headers=HX)
    assert response.status_code == 200 and "(daily_limit changed)" in response.text
    assert stored_settings.stored(notify_config.PREFIX) == {}  # every value is the default


def test_values_are_normalised(admin_client):
    data = form_data(
        sms_providers=" Twilio ,INFOBIP",
        admin_alert_phones="0712 345 678; +254 722 000 000, 0712345678",
        overdue_notice_days="30, 7,1,7",
        sacco_colour="#1D4E89",
        sacco_email=" Info@Daystar.co.ke ",
        channels_loan_declined="SMS",
        daily_limit="007",
    )
    assert admin_client.post(URL, data=data, headers=HX).status_code == 200
    current = notify_config.current()
    assert current.sms_providers == "twilio,infobip"
    assert current.admin_alert_phones == "254712345678,254722000000"
    assert current.overdue_notice_days == "1,7,30" and current.overdue_days() == {1, 7, 30}
    assert (current.sacco_colour, current.sacco_email) == ("#1d4e89", "info@daystar.co.ke")
    assert current.channels("loan_declined") == ("sms",) and current.daily_limit == "7"


def test_change_is_audited_without_values(admin_client):
    admin_client.post(URL, data=form_data(twilio_auth_token=TOKEN, daily_limit="8"))
    entry = db.session.scalars(
        select(AuditLog).where(AuditLog.action == "notify.settings_changed")
    ).one()
    assert entry.actor_id == admin_client.user.id
    assert entry.details["keys"] == ["daily_limit", "twilio.auth_token"]
    assert TOKEN not in json.dumps(entry.details)


def test_nothing_changed_says_so(admin_client):
    admin_client.post(URL, data=form_data())
    response = admin_client.post(URL, data=form_data(), headers=HX)
    assert response.status_code == 200 and "nothing changed" in response.text


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("sms_providers", "africastalking,sendgrid", "&#39;sendgrid&#39; is not one of"),
        ("sms_providers", "twilio,infobip,twilio", "twilio is named twice."),
        ("sms_providers", "", "Name at least one provider"),
        ("email_providers", " , ", "Name at least one provider: sendgrid, mailgun, ses."),
        ("quiet_hours_start", "25:00", "Enter a time as HH:MM"),
        ("quiet_hours_end", "7am", "Enter a time as HH:MM"),
        ("daily_limit", "0", "Enter a whole number from 1 to 1,000."),
        ("max_retries", "-1", "Enter a whole number from 0 to 10."),
        ("circuit_threshold", "lots", "Enter a whole number from 1 to 1,000."),
        ("duplicate_window_minutes", "1e9", "Enter a whole number from 0 to 10,080."),
        ("sacco_colour", "blue", "Enter a colour as #rgb or #rrggbb"),
        ("sacco_accent_colour", "#12345", "Enter a colour as #rgb or #rrggbb"),
        ("sacco_logo_url", "javascript:alert(1)", "Enter an address starting with https://."),
        ("sacco_website", 'https://x.example/"onload', "Enter an address starting with https://."),
        ("sacco_email", "not-an-address", "Enter an email address such as info@daystar.co.ke."),
        ("sacco_phone", "12", "Enter a phone number"),
        ("channels_welcome", "fax", "Choose both, SMS, email or none."),
        ("overdue_notice_days", "1,x", "Enter days from 1 to 365"),
        (
            "admin_alert_phones",
            "0712345678, 12345",
            "&#39;12345&#39; is not a Kenyan mobile number",
        ),
        ("admin_alert_interval_minutes", "0", "Enter a whole number from 1 to 1,440."),
        ("twilio_account_sid", "SK123", "A Twilio account SID is AC and 32 hexadecimal digits."),
        ("twilio_base_url", "ftp://sandbox.local", "Enter an address starting with https://."),
        ("twilio_from_number", "Daystar SACCO Ltd", "at most 11 letters and digits"),
        ("africastalking_callback_secret", "short", "Use at least 16 letters"),
        ("mailgun_region", "asia", "Choose us or eu."),
        ("ses_region", "Europe", "Enter an AWS region such as eu-west-1."),
        ("ses_sns_topic_arns", "arn:aws:sqs:x", "is not an SNS topic ARN"),
        ("sendgrid_from_address", "Daystar <nobody>", "Enter an address, or a name and address"),
        ("sendgrid_webhook_public_key", "not base64!", "Paste the verification key"),
        ("mailgun_domain", "mg example.com", "no spaces"),
        ("sacco_name", "Line one\nLine two", "Use one line of at most 500 characters."),
    ],
)
def test_bad_input_is_422_with_the_message_by_its_field(admin_client, field, value, message):
    response = admin_client.post(URL, data=form_data(**{field: value}), headers=HX)
    assert response.status_code == 422
    assert message in response.text
    assert 'aria-invalid="true"' in input_tag(response.text, field)
    assert "Nothing was saved" in response.text
    assert stored_settings.stored(notify_config.PREFIX) == {}  # nothing stored


def test_a_bad_provider_field_opens_its_provider(admin_client):
    response = admin_client.post(URL, data=form_data(mailgun_region="asia"), headers=HX)
    assert response.status_code == 422
    assert '<details id="provider-mailgun" class="provider" open>' in response.text
    assert '<details id="provider-twilio" class="provider">' in response.text


def test_a_typed_secret_is_not_echoed_when_the_form_is_refused(admin_client):
    data = form_data(daily_limit="x", twilio_auth_token=TOKEN)
    response = admin_client.post(URL, data=data, headers=HX)
    assert response.status_code == 422 and TOKEN not in response.text
    assert stored("twilio.auth_token") is None


def test_nul_characters_are_refused_or_dropped_never_a_500(admin_client):
    response = admin_client.post(URL, data=form_data(sacco_name="Day\x00star"), headers=HX)
    assert response.status_code == 200
    assert notify_config.current().sacco_name == "Daystar"


# --- environment variables --------------------------------------------------------------------


def test_environment_variables_are_read_only(admin_client, overrides):
    admin_settings.save({"twilio.auth_token": "stored-token-1111"}, SYSTEM)
    overrides(**{"twilio.auth_token": "env-auth-token-7777", "sms_providers": "twilio,infobip"})
    page = admin_client.get(URL).text
    assert "Set by <code>DAYSTAR_TWILIO_AUTH_TOKEN</code>" in page
    assert "Set by <code>DAYSTAR_SMS_PROVIDERS</code>" in page
    assert "env-auth-token-7777" not in page and "••••••••7777" in page
    assert re.search(r'<input id="sms_providers" type="text" value="twilio,infobip" disabled', page)
    assert "Environment variables set 2 of these settings" in page

    # A tampered request cannot change them: they are not stored.
    data = form_data(twilio_auth_token="typed-token", sms_providers="africastalking")
    response = admin_client.post(URL, data=data, headers=HX)
    assert response.status_code == 200
    assert stored("twilio.auth_token") == "stored-token-1111" and stored("sms_providers") is None
    assert notify_config.provider_values("twilio")["auth_token"] == "env-auth-token-7777"


# --- provider state ---------------------------------------------------------------------------


def summary(html: str, provider: str) -> str:
    match = re.search(
        rf'<details id="provider-{provider}".*?</summary>\s*<p[^>]*>.*?</p>', html, re.S
    )
    assert match, provider
    return " ".join(match.group(0).split())


def test_each_provider_shows_whether_it_is_configured_its_circuit_and_place(admin_client):
    admin_settings.save(
        {"africastalking.username": "sandbox", "africastalking.api_key": "atsk_secret_value",
         "sms_providers": "africastalking,infobip"},
        SYSTEM,
    )  # fmt: skip
    circuit.record_failure("infobip", threshold=1, window=60, cooling_off=300)
    assert providers.client_for("africastalking") is not None
    html = admin_client.get(URL).text

    at = summary(html, "africastalking")
    assert "configured</span>" in at and "not configured" not in at
    assert "circuit closed" in at and "1st in the SMS order" in at and "Ready to send." in at

    infobip = summary(html, "infobip")
    assert "not configured" in infobip and "circuit open" in infobip
    assert "2nd in the SMS order" in infobip
    assert "Missing: Base URL, API key." in infobip
    assert "in the order but skipped until it is configured" in infobip

    twilio = summary(html, "twilio")
    assert "not in the SMS order" in twilio
    assert "Missing: Account SID, Auth token, Sender." in twilio
    assert "1st in the email order" in summary(html, "sendgrid")


def test_unusable_settings_are_named_as_such(admin_client, overrides):
    overrides(**{"mailgun.api_key": "k", "mailgun.domain": "mg.example.com",
                 "mailgun.from_address": "no-reply@example.com", "mailgun.region": "mars"})  # fmt: skip
    html = admin_client.get(URL).text
    assert "Its settings cannot be used: check them." in summary(html, "mailgun")
