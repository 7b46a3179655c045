"""Changing the notification settings (the settings page): the rule for every value, saving them
(provider secrets encrypted; an empty secret keeps the stored one; fields that environment
variables set are never stored), and what the page shows of each provider."""

import base64
import binascii
import re
from dataclasses import asdict, dataclass, fields
from datetime import time
from email.utils import parseaddr
from urllib.parse import urlsplit

import phonenumbers
from cryptography.hazmat.primitives.serialization import load_der_public_key
from flask import current_app

from app.services import settings
from app.services.actor import Actor
from app.services.errors import ValidationFailed
from app.services.notifications import circuit, config, providers
from app.services.notifications.templates import COLOUR_PATTERN
from app.services.validation import normalize_email, normalize_phone
from config import NOTIFY_ENVIRONMENT_VARIABLES, NOTIFY_PROVIDER_VARIABLES

PROVIDER_LABELS = {
    "africastalking": "Africa's Talking",
    "twilio": "Twilio",
    "infobip": "Infobip",
    "sendgrid": "SendGrid",
    "mailgun": "Mailgun",
    "ses": "Amazon SES",
}
GENERAL_KEYS = tuple(f.name for f in fields(config.NotifySettings))
PROVIDER_KEYS = tuple(
    f"{provider}.{name}"
    for provider, names in NOTIFY_PROVIDER_VARIABLES.items()
    for name in names
)  # fmt: skip
KEYS = GENERAL_KEYS + PROVIDER_KEYS
SECRET_KEYS = {key for key in PROVIDER_KEYS if key.split(".", 1)[1] in config.SECRET_FIELDS}

MAX_TEXT = 500
ORDER_KEYS = ("sms_providers", "email_providers")  # the failover orders: never empty
NAME_LIKE = re.compile(r"[A-Za-z0-9._:@/+=-]+")  # an id, username, key or domain: no spaces
SENDER = re.compile(r"\+?\d{3,15}|(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}")
SECRET_PATH = re.compile(r"[A-Za-z0-9_-]{16,200}")
TWILIO_SID = re.compile(r"AC[0-9a-fA-F]{32}")
SES_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d")
TOPIC_ARN = re.compile(r"arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}")
CLOCK = re.compile(r"\d{2}:\d{2}")
# (low, high) of each whole-number setting
WHOLE_NUMBERS = {
    "daily_limit": (1, 1000),
    "duplicate_window_minutes": (0, 7 * 24 * 60),
    "max_retries": (0, 10),
    "circuit_threshold": (1, 1000),
    "circuit_window_seconds": (1, 86_400),
    "circuit_cooling_off_seconds": (1, 86_400),
    "repayment_reminder_days": (0, 60),
    "admin_alert_interval_minutes": (1, 24 * 60),
    "failed_jobs_alert_threshold": (0, 10_000),
    "failed_jobs_alert_window_minutes": (1, 24 * 60),
}


def channel_of(provider: str) -> str:
    return "sms" if provider in config.SMS_PROVIDERS else "email"


def overridden() -> set[str]:
    """The settings environment variables set (the page shows them read-only)."""
    return set(current_app.config.get("NOTIFY_OVERRIDES", {}))


def environment_variable(key: str) -> str:
    """The name of the environment variable that sets `key` ("" when it has none)."""
    return NOTIFY_ENVIRONMENT_VARIABLES.get(key, "")


def values_in_force() -> dict[str, str]:
    """Every setting the page shows, by key ("twilio.auth_token" for a provider's), as in force
    now: defaults, then what is stored, then environment variables."""
    values = dict.fromkeys(PROVIDER_KEYS, "") | asdict(config.current())
    for provider in NOTIFY_PROVIDER_VARIABLES:
        values |= {f"{provider}.{k}": v for k, v in config.provider_values(provider).items()}
    return values


@dataclass(frozen=True)
class ProviderState:
    name: str
    label: str
    channel: str
    configured: bool  # a client can be built: the credentials it needs are set and usable
    missing: tuple[str, ...]  # the settings it needs that are not set
    circuit_open: bool  # skipped while cooling off after repeated failures
    position: int | None  # its place in its channel's failover order (1 = tried first)


def provider_states() -> list[ProviderState]:
    """Each provider, in its channel's order: configured or not, its circuit, its place."""
    current = config.current()
    states = []
    for name in (*config.SMS_PROVIDERS, *config.EMAIL_PROVIDERS):
        channel = channel_of(name)
        values = config.provider_values(name)
        order = current.order(channel)
        states.append(
            ProviderState(
                name=name,
                label=PROVIDER_LABELS[name],
                channel=channel,
                configured=providers.client_for(name) is not None,
                missing=tuple(f for f in providers.CLIENTS[name][2] if not values.get(f)),
                circuit_open=circuit.is_open(name),
                position=order.index(name) + 1 if name in order else None,
            )
        )
    return states


# --- rules for each value ---------------------------------------------------------------------


def _whole(value: str, low: int, high: int) -> str:
    if not (value.isascii() and value.isdigit()) or not low <= int(value) <= high:
        raise ValueError(f"Enter a whole number from {low} to {high:,}.")
    return str(int(value))


def _web_address(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or re.search(r"[\s\"'<>]", value):
        raise ValueError("Enter an address starting with https://.")
    return value


def _provider_order(value: str, known: tuple[str, ...]) -> str:
    names = [part.strip().lower() for part in value.split(",") if part.strip()]
    if not names:
        raise ValueError(f"Name at least one provider: {', '.join(known)}.")
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"{unknown[0]!r} is not one of {', '.join(known)}.")
    twice = [name for name in names if names.count(name) > 1]
    if twice:
        raise ValueError(f"{twice[0]} is named twice.")
    return ",".join(names)


def _clock(value: str) -> str:
    try:
        if not CLOCK.fullmatch(value):
            raise ValueError
        time.fromisoformat(value)
    except ValueError:
        raise ValueError("Enter a time as HH:MM, for example 21:00.") from None
    return value


def _colour(value: str) -> str:
    if not COLOUR_PATTERN.match(value):
        raise ValueError("Enter a colour as #rgb or #rrggbb, for example #1d4e89.")
    return value.lower()


def _any_phone(value: str) -> str:
    try:
        number = phonenumbers.parse(value, "KE")
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_possible_number(number):
        raise ValueError("Enter a phone number, for example 0712 345 678 or 020 123 4567.")
    return value


def _email(value: str) -> str:
    try:
        return normalize_email(value) or ""
    except ValueError:
        raise ValueError("Enter an email address such as info@daystar.co.ke.") from None


def _channels(value: str) -> str:
    value = value.lower()
    if value not in config.CHANNEL_CHOICES:
        raise ValueError("Choose both, SMS, email or none.")
    return value


def _overdue_days(value: str) -> str:
    if value.lower() == "daily":
        return "daily"
    parts = [part.strip() for part in value.split(",") if part.strip()]
    if not parts or not all(p.isascii() and p.isdigit() and 1 <= int(p) <= 365 for p in parts):
        raise ValueError('Enter days from 1 to 365 separated by commas (1,7,14,30), or "daily".')
    return ",".join(str(day) for day in sorted({int(p) for p in parts}))


def _alert_phones(value: str) -> str:
    numbers = []
    for raw in re.split(r"[,;]", value):
        if raw.strip():
            try:
                number = normalize_phone(raw)
            except ValueError:
                raise ValueError(
                    f"{raw.strip()!r} is not a Kenyan mobile number such as 0712 345 678."
                ) from None
            if number not in numbers:
                numbers.append(number)
    return ",".join(numbers)


def _sender(value: str) -> str:
    if not SENDER.fullmatch(value):
        raise ValueError(
            "Enter a number (+254…) or a sender name of at most 11 letters and digits."
        )
    return value


def _from_address(value: str) -> str:
    name, address = parseaddr(value)
    try:
        normalize_email(address or "-")
    except ValueError:
        raise ValueError("Enter an address, or a name and address: Daystar <no-reply@…>.") from None
    return value


def _matching(pattern: re.Pattern, message: str):
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(message)
        return value

    return check


def _public_key(value: str) -> str:
    try:
        load_der_public_key(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        raise ValueError("Paste the verification key SendGrid shows (base64).") from None
    return value


def _topic_arns(value: str) -> str:
    arns = value.replace(",", " ").split()
    for arn in arns:
        if not TOPIC_ARN.fullmatch(arn):
            raise ValueError(f"{arn!r} is not an SNS topic ARN (arn:aws:sns:region:account:name).")
    return " ".join(arns)


_NAME_LIKE = _matching(NAME_LIKE, "Use letters, digits and . _ - : @ / + = only (no spaces).")
RULES = {
    "sms_providers": lambda v: _provider_order(v, config.SMS_PROVIDERS),
    "email_providers": lambda v: _provider_order(v, config.EMAIL_PROVIDERS),
    "quiet_hours_start": _clock,
    "quiet_hours_end": _clock,
    **{name: (lambda v, r=r: _whole(v, *r)) for name, r in WHOLE_NUMBERS.items()},
    "sacco_logo_url": _web_address,
    "sacco_website": _web_address,
    "sacco_colour": _colour,
    "sacco_accent_colour": _colour,
    "sacco_phone": _any_phone,
    "sacco_email": _email,
    **{name: _channels for name in GENERAL_KEYS if name.startswith("channels_")},
    "overdue_notice_days": _overdue_days,
    "admin_alert_phones": _alert_phones,
}
PROVIDER_RULES = {
    "base_url": _web_address,
    "account_sid": _matching(TWILIO_SID, "A Twilio account SID is AC and 32 hexadecimal digits."),
    "from_number": _sender,
    "sender_id": _sender,
    "sender": _sender,
    "from_address": _from_address,
    "callback_secret": _matching(
        SECRET_PATH, "Use at least 16 letters, digits, - or _ (it is part of a URL)."
    ),
    "webhook_public_key": _public_key,
    "sns_topic_arns": _topic_arns,
}


def _rule(key: str):
    if key in RULES:
        return RULES[key]
    provider, _, name = key.partition(".")
    if name == "region":
        if provider == "mailgun":
            return _matching(re.compile(r"us|eu"), "Choose us or eu.")
        return _matching(SES_REGION, "Enter an AWS region such as eu-west-1.")
    return PROVIDER_RULES.get(name, _NAME_LIKE if name else None)


def validate(values: dict[str, str]) -> dict[str, str]:
    """The values cleaned (by key; unknown keys dropped; empty means the default, or for a
    secret, keep what is stored), or ValidationFailed naming each bad key."""
    errors: dict[str, str] = {}
    clean: dict[str, str] = {}
    for key, raw in values.items():
        if key not in KEYS:
            continue
        value = (raw or "").replace("\x00", "").strip()
        if not value and key not in ORDER_KEYS:
            clean[key] = ""
            continue
        if len(value) > MAX_TEXT or any(ord(c) < 32 for c in value):
            errors[key] = f"Use one line of at most {MAX_TEXT} characters."
            continue
        rule = _rule(key)
        try:
            clean[key] = rule(value) if rule else value
        except ValueError as exc:
            errors[key] = str(exc)
    if errors:
        raise ValidationFailed(errors)
    return clean


def save(values: dict[str, str], actor: Actor) -> list[str]:
    """Store the settings staff entered and audit which keys changed (never their values).
    An empty secret keeps the stored one; fields set by environment variables are not stored;
    a value equal to its default is not stored either, so the default stays in force. Commits;
    the changed keys."""
    clean = validate(values)
    kept = {key for key in SECRET_KEYS if key in clean and not clean[key]}
    env = overridden()
    defaults = asdict(config.NotifySettings())
    to_store = {
        k: "" if v == defaults.get(k) else v
        for k, v in clean.items()
        if k not in kept and k not in env
    }
    return settings.save(config.PREFIX, to_store, SECRET_KEYS, actor)
