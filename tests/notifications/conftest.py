"""Notifications against the provider sandbox: every provider configured through NOTIFY_OVERRIDES
(as DAYSTAR_<PROVIDER>_* environment variables would), delivery reports reaching the live server."""

import pytest

from tests.fixtures.mpesa import SECRET

AT_SECRET = "at-callback-secret-0123456789"
INFOBIP_SECRET = "infobip-callback-secret-012345"


@pytest.fixture
def notify_live(app, live_server, notify_sandbox):
    creds = notify_sandbox.credentials
    url = notify_sandbox.base_url
    saved = app.config["NOTIFY_OVERRIDES"], app.config["MPESA_OVERRIDES"]
    app.config["NOTIFY_OVERRIDES"] = {
        "sms_providers": "africastalking,twilio,infobip",
        "email_providers": "sendgrid,mailgun,ses",
        "twilio.account_sid": creds["twilio"]["account_sid"],
        "twilio.auth_token": creds["twilio"]["auth_token"],
        "twilio.from_number": "+254700000999",
        "twilio.base_url": url,
        "africastalking.username": creds["africastalking"]["username"],
        "africastalking.api_key": creds["africastalking"]["api_key"],
        "africastalking.base_url": url,
        "africastalking.callback_secret": AT_SECRET,
        "infobip.api_key": creds["infobip"]["api_key"],
        "infobip.base_url": url,
        "infobip.callback_secret": INFOBIP_SECRET,
        "sendgrid.api_key": creds["sendgrid"]["api_key"],
        "sendgrid.from_address": "no-reply@daystar.co.ke",
        "sendgrid.base_url": url,
        "sendgrid.webhook_public_key": notify_sandbox.sendgrid_public_key,
        "mailgun.api_key": creds["mailgun"]["api_key"],
        "mailgun.domain": creds["mailgun"]["domain"],
        "mailgun.from_address": "no-reply@daystar.co.ke",
        "mailgun.base_url": url,
        "mailgun.webhook_signing_key": creds["mailgun"]["webhook_signing_key"],
    }
    app.config["MPESA_OVERRIDES"] = {"public_base_url": live_server, "callback_secret": SECRET}
    notify_sandbox.set_webhook(
        "africastalking", f"{live_server}/callbacks/notify/africastalking/{AT_SECRET}/status"
    )
    notify_sandbox.set_webhook("sendgrid", f"{live_server}/callbacks/notify/sendgrid/events")
    notify_sandbox.set_webhook("mailgun", f"{live_server}/callbacks/notify/mailgun/events")
    yield notify_sandbox
    app.config["NOTIFY_OVERRIDES"], app.config["MPESA_OVERRIDES"] = saved
