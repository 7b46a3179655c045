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
}

_FLOATS = {"SANDBOX_CALLBACK_TIMEOUT", "SANDBOX_DARAJA_VALIDATION_TIMEOUT"}
_INTS = {"SANDBOX_DARAJA_TOKEN_LIFETIME", "SANDBOX_DARAJA_MAX_AMOUNT"}
_DECIMALS = {"SANDBOX_DARAJA_UTILITY_BALANCE", "SANDBOX_DARAJA_WORKING_BALANCE"}
_LISTS = {"SANDBOX_DARAJA_SHORTCODES", "SANDBOX_DARAJA_C2B_VERSIONS"}
_CHOICES = {
    "SANDBOX_DARAJA_MODE": ("auto", "manual"),
    "SANDBOX_DARAJA_EXPIRES_IN_TYPE": ("string", "number"),
    "SANDBOX_DARAJA_C2B_MSISDN": ("masked", "hashed", "plain"),
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
    return config
