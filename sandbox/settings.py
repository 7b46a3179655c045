"""Sandbox configuration: defaults, overridden by `SANDBOX_*` environment variables, overridden by
the dict given to `create_app()`. Every key is documented in sandbox/README.md."""

import os
from decimal import Decimal

# The public Daraja sandbox passkey for shortcode 174379 (../shared/reference/mpesa.md §1).
PUBLIC_SANDBOX_PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"

DEFAULTS: dict = {
    # Shared by every simulated provider.
    "SANDBOX_CALLBACK_DELAY": 2.0,  # seconds; None = hold callbacks until flush
    "SANDBOX_CALLBACK_TIMEOUT": 10.0,  # seconds for each callback POST
    "SANDBOX_CALLBACK_THREADS": 1,  # callbacks posted at once (a provider posts from many servers)
    # Daraja.
    "SANDBOX_DARAJA_CONSUMER_KEY": "sandbox-consumer-key",
    "SANDBOX_DARAJA_CONSUMER_SECRET": "sandbox-consumer-secret",
    "SANDBOX_DARAJA_SHORTCODES": ("174379", "600000"),
    "SANDBOX_DARAJA_PASSKEY": PUBLIC_SANDBOX_PASSKEY,
    "SANDBOX_DARAJA_INITIATOR_NAME": "testapi",
    "SANDBOX_DARAJA_INITIATOR_PASSWORD": "Sandbox#Initiator1",
    "SANDBOX_DARAJA_ORGANIZATION_NAME": "DAYSTAR SACCO SANDBOX",
    "SANDBOX_DARAJA_MODE": "auto",  # auto | manual
    "SANDBOX_DARAJA_TOKEN_LIFETIME": 3599,  # seconds
    "SANDBOX_DARAJA_EXPIRES_IN_TYPE": "string",  # string ("3599", Daraja 1.0) | number (3599)
    "SANDBOX_DARAJA_KEY_PATH": None,
    "SANDBOX_DARAJA_CERT_PATH": None,
    "SANDBOX_DARAJA_UTILITY_BALANCE": Decimal("1000000.00"),
    "SANDBOX_DARAJA_WORKING_BALANCE": Decimal("0.00"),
    "SANDBOX_DARAJA_MAX_AMOUNT": 250000,
    "SANDBOX_DARAJA_C2B_VERSIONS": ("v1", "v2"),
    "SANDBOX_DARAJA_C2B_MSISDN": "masked",  # masked | hashed | plain
    "SANDBOX_DARAJA_VALIDATION_TIMEOUT": 8.0,  # seconds Daraja waits for a ValidationURL
    # Notification providers (sandbox/notify/); the keys and tokens are throwaway test values.
    "SANDBOX_NOTIFY_SLOW_SECONDS": 15.0,  # how long the `slow` failure mode holds a request
    "SANDBOX_TWILIO_ACCOUNT_SID": "ACc233a87b39fdc8a6dcda4ec9865862f4",
    "SANDBOX_TWILIO_AUTH_TOKEN": "c5ecc76a9bfbf86c50fcdd6b8da41557",
    "SANDBOX_AT_USERNAME": "sandbox",
    "SANDBOX_AT_API_KEY": "atsk_a14f645f8d8d804f0ad1a71fa7cc503d56b68d58992615727b4b1c3a79f4787f",
    "SANDBOX_AT_SENDER_IDS": (),  # empty: any sender id is accepted (except BADSENDER)
    "SANDBOX_AT_CALLBACK_URL": None,  # the dashboard's delivery-report URL
    "SANDBOX_INFOBIP_API_KEY": "86413e80374dc563eb4109e2d1ccb9db-4f4ba535-ab32-ba9b-df35-395dc5be8f7b",
    "SANDBOX_INFOBIP_CALLBACK_URL": None,  # used when a message names no notifyUrl / webhook
    "SANDBOX_SENDGRID_API_KEY": "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",
    "SANDBOX_SENDGRID_CALLBACK_URL": None,  # the Event Webhook's HTTP POST URL
    "SANDBOX_SENDGRID_KEY_PATH": None,  # PEM EC P-256 private key (generated when absent)
    "SANDBOX_MAILGUN_API_KEY": "5c0b930fc27bb6463a33455fa13b67bf-f1f64b6d-25d8e743",
    "SANDBOX_MAILGUN_DOMAINS": ("mg.example.com",),
    "SANDBOX_MAILGUN_WEBHOOK_SIGNING_KEY": "fd197a158d2fb6b73c8c05e3b92f863d",
    "SANDBOX_MAILGUN_CALLBACK_URL": None,
    "SANDBOX_SES_ACCESS_KEY_ID": "AKIASANDBOXDAYSTAR01",
    "SANDBOX_SES_SECRET_ACCESS_KEY": "Q0tSHYy/IYgjq9G9g1svQYblNwmgE7W5ixrajqn1",
    "SANDBOX_SES_REGION": "us-east-1",
    "SANDBOX_SES_SIGV4": "verify",  # verify: full SigV4 check | format: header shape only
    "SANDBOX_SES_CALLBACK_URL": None,  # the HTTPS endpoint subscribed to the SNS topic
    "SANDBOX_SES_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:daystar-ses-notifications",
    "SANDBOX_SES_SNS_URL": None,  # base of SigningCertURL / SubscribeURL; None: this sandbox
    "SANDBOX_SES_SNS_SIGNATURE_VERSION": "1",  # 1: RSA-SHA1 | 2: RSA-SHA256
    "SANDBOX_SES_SNS_KEY_PATH": None,  # PEM RSA key + certificate for SNS signatures
    "SANDBOX_SES_SNS_CERT_PATH": None,
}

_FLOATS = {
    "SANDBOX_CALLBACK_TIMEOUT",
    "SANDBOX_DARAJA_VALIDATION_TIMEOUT",
    "SANDBOX_NOTIFY_SLOW_SECONDS",
}
_INTS = {"SANDBOX_CALLBACK_THREADS", "SANDBOX_DARAJA_TOKEN_LIFETIME", "SANDBOX_DARAJA_MAX_AMOUNT"}
_DECIMALS = {"SANDBOX_DARAJA_UTILITY_BALANCE", "SANDBOX_DARAJA_WORKING_BALANCE"}
_LISTS = {
    "SANDBOX_DARAJA_SHORTCODES",
    "SANDBOX_DARAJA_C2B_VERSIONS",
    "SANDBOX_AT_SENDER_IDS",
    "SANDBOX_MAILGUN_DOMAINS",
}
_CHOICES = {
    "SANDBOX_DARAJA_MODE": ("auto", "manual"),
    "SANDBOX_DARAJA_EXPIRES_IN_TYPE": ("string", "number"),
    "SANDBOX_DARAJA_C2B_MSISDN": ("masked", "hashed", "plain"),
    "SANDBOX_SES_SIGV4": ("verify", "format"),
    "SANDBOX_SES_SNS_SIGNATURE_VERSION": ("1", "2"),
}


def parse_delay(value) -> float | None:
    """A callback delay in seconds, or None for "hold until flush" (`none`, `hold`, empty)."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "hold")):
        return None
    delay = float(value)
    if delay < 0:
        raise ValueError("the callback delay cannot be negative")
    return delay


def _coerce(key: str, value):
    """Turns a value from the environment or a dict into the type the sandbox uses."""
    if key == "SANDBOX_CALLBACK_DELAY":
        return parse_delay(value)
    if value is None:
        return None
    if key in _FLOATS:
        return float(value)
    if key in _INTS:
        return int(value)
    if key in _DECIMALS:
        return Decimal(str(value)).quantize(Decimal("0.01"))
    if key in _LISTS:
        items = value.split(",") if isinstance(value, str) else value
        return tuple(str(item).strip() for item in items if str(item).strip())
    if key in _CHOICES:
        value = str(value).strip().lower()
        if value not in _CHOICES[key]:
            raise ValueError(f"{key} must be one of {', '.join(_CHOICES[key])}")
        return value
    return str(value)


def load_config(overrides: dict | None = None, environ=os.environ) -> dict:
    """Defaults, then `SANDBOX_*` environment variables, then `overrides`; all type-checked."""
    config = dict(DEFAULTS)
    for key in DEFAULTS:
        if key in environ:
            config[key] = environ[key]
    config.update(overrides or {})
    for key in DEFAULTS:
        config[key] = _coerce(key, config[key])
    if not config["SANDBOX_DARAJA_SHORTCODES"]:
        raise ValueError("SANDBOX_DARAJA_SHORTCODES needs at least one shortcode")
    if not config["SANDBOX_MAILGUN_DOMAINS"]:
        raise ValueError("SANDBOX_MAILGUN_DOMAINS needs at least one sending domain")
    if config["SANDBOX_NOTIFY_SLOW_SECONDS"] < 0:
        raise ValueError("SANDBOX_NOTIFY_SLOW_SECONDS cannot be negative")
    return config
