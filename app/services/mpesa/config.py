"""M-Pesa settings: defaults, then what staff stored (secrets encrypted), then environment
variables, which win. Builds the Daraja client and our callback URLs from them."""

import ipaddress
import re
import secrets
from dataclasses import dataclass, fields
from decimal import Decimal, InvalidOperation
from pathlib import Path

from flask import current_app

from app.integrations.daraja import ENVIRONMENTS, DarajaClient, DarajaConfig
from app.integrations.daraja_security import load_certificate, security_credential
from app.jobs import redis_client
from app.services import crypto, settings
from app.services.actor import Actor
from app.services.errors import ServiceError, ValidationFailed

PREFIX = "mpesa"
SECRET_FIELDS = {
    "consumer_key",
    "consumer_secret",
    "passkey",
    "initiator_password",
    "security_credential",
    "callback_secret",
}
CALLBACK_PATHS = {
    "stk": "stk",
    "b2c_result": "b2c/result",
    "b2c_timeout": "b2c/timeout",
    "status_result": "status/result",
    "status_timeout": "status/timeout",
    "balance_result": "balance/result",
    "balance_timeout": "balance/timeout",
    "c2b_validation": "c2b/validation",
    "c2b_confirmation": "c2b/confirmation",
}


# Safaricom's published callback addresses (mpesa.md §9); the list drifts, so it is a setting.
SAFARICOM_CALLBACK_ADDRESSES = (
    "196.201.214.200", "196.201.214.206", "196.201.213.114", "196.201.214.207",
    "196.201.214.208", "196.201.213.44", "196.201.212.127", "196.201.212.138",
    "196.201.212.129", "196.201.212.136", "196.201.212.74", "196.201.212.69",
)  # fmt: skip


def _networks(text: str) -> list:
    """The networks of an allow-list written as IPs or CIDRs separated by spaces or commas;
    ValueError naming a bad entry."""
    networks = []
    for entry in re.split(r"[\s,]+", text.strip()):
        if entry:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or network") from None
    return networks


@dataclass(frozen=True)
class MpesaSettings:
    environment: str = "sandbox"
    base_url: str = ""
    consumer_key: str = ""
    consumer_secret: str = ""
    shortcode: str = ""
    passkey: str = ""
    transaction_type: str = "CustomerPayBillOnline"
    till_number: str = ""  # PartyB for Buy Goods; the shortcode otherwise
    b2c_shortcode: str = ""
    initiator_name: str = ""
    initiator_password: str = ""
    security_credential: str = ""  # pasted already encrypted; wins over password + certificate
    certificate: str = ""  # PEM text (a DER upload is stored as PEM)
    certificate_path: str = ""
    c2b_register_version: str = "v1"
    c2b_response_type: str = "Completed"
    c2b_accept_all: str = "no"
    callback_secret: str = ""
    public_base_url: str = ""
    stk_max_amount: str = "250000"
    stk_duplicate_window_seconds: str = "120"
    stk_callback_window_minutes: str = "5"
    b2c_second_approval_above: str = ""
    verify_before_credit: str = "no"
    callback_ip_mode: str = "off"  # off | log | enforce
    callback_ip_allowlist: str = " ".join(SAFARICOM_CALLBACK_ADDRESSES)

    def source_allowed(self, address: str | None) -> bool:
        """Whether a callback's sender address is on the allow-list (IPs or CIDR networks)."""
        try:
            ip = ipaddress.ip_address(address or "")
        except ValueError:
            return False
        return any(ip in network for network in _networks(self.callback_ip_allowlist))

    @property
    def resolved_base_url(self) -> str:
        return (self.base_url or ENVIRONMENTS.get(self.environment) or "").rstrip("/")

    @property
    def max_amount(self) -> int:
        return int(self.stk_max_amount or 250000)

    @property
    def duplicate_window_seconds(self) -> int:
        return int(self.stk_duplicate_window_seconds or 0)

    @property
    def callback_window_minutes(self) -> int:
        return int(self.stk_callback_window_minutes or 5)

    @property
    def second_approval_above(self) -> Decimal | None:
        return Decimal(self.b2c_second_approval_above) if self.b2c_second_approval_above else None

    @property
    def verifies_before_credit(self) -> bool:
        return self.verify_before_credit == "yes"

    @property
    def accepts_all_paybill_payments(self) -> bool:
        return self.c2b_accept_all == "yes"

    @property
    def configured(self) -> bool:
        return bool(self.resolved_base_url and self.consumer_key and self.consumer_secret)

    def overridden(self) -> set[str]:
        """The fields set by environment variables (the settings page cannot change them)."""
        return set(current_app.config.get("MPESA_OVERRIDES", {}))


FIELD_NAMES = {f.name for f in fields(MpesaSettings)}


def current(max_age: float = 0) -> MpesaSettings:
    """The settings in force now (or as this process read them at most max_age seconds ago)."""
    values = {k: v for k, v in settings.stored(PREFIX, max_age).items() if k in FIELD_NAMES}
    values.update(
        {k: v for k, v in current_app.config.get("MPESA_OVERRIDES", {}).items() if k in FIELD_NAMES}
    )
    return MpesaSettings(**values)


def for_callbacks() -> MpesaSettings:
    """The settings in force, read from the database at most once every
    CALLBACK_SETTINGS_CACHE_SECONDS per process (settings.stored): the callback routes must
    answer Daraja at once."""
    return current(current_app.config.get("CALLBACK_SETTINGS_CACHE_SECONDS", 0))


def _whole(value: str, field: str, errors: dict, low: int = 0) -> None:
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or number < low:
        errors[field] = f"Enter a whole number of at least {low}."


def validate(values: dict[str, str]) -> dict[str, str]:
    """The values cleaned, or ValidationFailed naming each bad field."""
    errors: dict[str, str] = {}
    clean = {k: (v or "").strip() for k, v in values.items() if k in FIELD_NAMES}
    if clean.get("environment") and clean["environment"] not in ENVIRONMENTS:
        errors["environment"] = "Choose sandbox, production or simulator."
    if clean.get("base_url") and not clean["base_url"].startswith(("http://", "https://")):
        errors["base_url"] = "Enter an address starting with https://."
    if clean.get("public_base_url") and not clean["public_base_url"].startswith(
        ("http://", "https://")
    ):
        errors["public_base_url"] = "Enter the address Safaricom reaches us at (https://...)."
    for name in ("shortcode", "till_number", "b2c_shortcode"):
        if clean.get(name) and not (clean[name].isdigit() and 5 <= len(clean[name]) <= 7):
            errors[name] = "Enter the 5 to 7 digit number."
    if clean.get("transaction_type") and clean["transaction_type"] not in (
        "CustomerPayBillOnline",
        "CustomerBuyGoodsOnline",
    ):
        errors["transaction_type"] = "Choose Pay Bill or Buy Goods."
    if clean.get("c2b_register_version") and clean["c2b_register_version"] not in ("v1", "v2"):
        errors["c2b_register_version"] = "Choose v1 or v2."
    if clean.get("c2b_response_type") and clean["c2b_response_type"] not in (
        "Completed",
        "Cancelled",
    ):
        errors["c2b_response_type"] = "Choose Completed or Cancelled."
    for name in ("c2b_accept_all", "verify_before_credit"):
        if clean.get(name) and clean[name] not in ("yes", "no"):
            errors[name] = "Choose yes or no."
    if clean.get("stk_max_amount"):
        _whole(clean["stk_max_amount"], "stk_max_amount", errors, low=1)
    for name in ("stk_duplicate_window_seconds", "stk_callback_window_minutes"):
        if clean.get(name):
            _whole(clean[name], name, errors)
    if clean.get("b2c_second_approval_above"):
        try:
            amount = Decimal(clean["b2c_second_approval_above"])
            if not amount.is_finite() or amount < 0:
                raise InvalidOperation
        except InvalidOperation:
            errors["b2c_second_approval_above"] = "Enter an amount in shillings, or leave it empty."
    if clean.get("certificate"):
        try:
            load_certificate(clean["certificate"].encode())
        except ValueError:
            errors["certificate"] = "This is not an X.509 certificate (PEM or DER)."
    if clean.get("callback_ip_mode") and clean["callback_ip_mode"] not in ("off", "log", "enforce"):
        errors["callback_ip_mode"] = "Choose off, log only or enforce."
    if clean.get("callback_ip_allowlist"):
        try:
            _networks(clean["callback_ip_allowlist"])
        except ValueError as exc:
            errors["callback_ip_allowlist"] = f"{exc}."
    if clean.get("callback_secret") and len(clean["callback_secret"]) < 16:
        errors["callback_secret"] = "Use at least 16 characters."  # noqa: S105 (a message)
    if errors:
        raise ValidationFailed(errors)
    return clean


def save(values: dict[str, str], actor: Actor) -> list[str]:
    """Store the settings staff entered. An empty secret field keeps the stored secret (the page
    never shows it back); fields set by environment variables are not stored."""
    clean = validate(values)
    kept = {k for k in SECRET_FIELDS if k in clean and not clean[k]}
    to_store = {k: v for k, v in clean.items() if k not in kept and k not in current().overridden()}
    return settings.save(PREFIX, to_store, SECRET_FIELDS, actor)


# Words Daraja refuses in C2B URLs (mpesa.md §7.1), checked case-insensitively.
FORBIDDEN_URL_WORDS = re.compile(r"m-?pesa|safaricom|exe|cmd|sql|query", re.IGNORECASE)


def callback_secret() -> str:
    """The secret path segment of our callback URLs, generated and stored on first use (never
    with a word Daraja refuses in a URL)."""
    value = current().callback_secret
    if not value:
        value = secrets.token_urlsafe(24)
        while FORBIDDEN_URL_WORDS.search(value):
            value = secrets.token_urlsafe(24)
        settings.save(PREFIX, {"callback_secret": value}, SECRET_FIELDS, Actor.system())
    return value


def callback_url(kind: str) -> str:
    """Where Safaricom posts the callback of `kind` for us. Paybill URLs use the /daraja/ alias
    of the routes: Daraja refuses to register a URL containing "mpesa"."""
    base = current().public_base_url.rstrip("/")
    if not base:
        raise ValidationFailed(
            {"public_base_url": "Set the public address Safaricom reaches us at first."}
        )
    prefix = "daraja" if kind.startswith("c2b") else "mpesa"
    url = f"{base}/callbacks/{prefix}/{callback_secret()}/{CALLBACK_PATHS[kind]}"
    if prefix == "daraja" and (word := FORBIDDEN_URL_WORDS.search(url)):
        raise ValidationFailed(
            {
                "public_base_url": f"Daraja refuses paybill URLs containing {word.group()!r}: "
                "use another public address or callback secret."
            }  # fmt: skip
        )
    return url


def certificate_bytes(config: MpesaSettings) -> bytes | None:
    """The certificate: the file DAYSTAR_MPESA_CERTIFICATE names (the environment wins), else
    the one uploaded on the settings page."""
    if config.certificate_path:
        return Path(config.certificate_path).read_bytes()
    if config.certificate:
        return config.certificate.encode()
    return None


def initiator_credential(config: MpesaSettings) -> str | None:
    """The SecurityCredential: pasted, or encrypted now from the password and the certificate."""
    if config.security_credential:
        return config.security_credential
    cert = certificate_bytes(config)
    if config.initiator_password and cert:
        return security_credential(config.initiator_password, cert)
    return None


def daraja_config(config: MpesaSettings | None = None) -> DarajaConfig:
    config = config or current()
    return DarajaConfig(
        environment=config.environment,
        base_url=config.base_url or None,
        consumer_key=config.consumer_key,
        consumer_secret=config.consumer_secret,
        shortcode=config.shortcode,
        passkey=config.passkey,
        transaction_type=config.transaction_type,
        party_b=config.till_number or config.shortcode,
        b2c_shortcode=config.b2c_shortcode or config.shortcode,
        initiator_name=config.initiator_name,
        security_credential=initiator_credential(config),
        c2b_register_version=config.c2b_register_version,
    )


def client(config: MpesaSettings | None = None) -> DarajaClient:
    """A Daraja client for the settings in force (its token shared through Redis, encrypted
    there with DAYSTAR_ENCRYPTION_KEY); ServiceError saying what is wrong when the settings
    cannot make one."""
    try:
        return DarajaClient(
            daraja_config(config), redis_client(), seal=crypto.encrypt, unseal=_unseal_token
        )
    except (ValueError, OSError) as exc:
        raise ServiceError(f"The M-Pesa settings cannot be used: {exc}") from None


def _unseal_token(stored: str) -> str | None:
    """The cached OAuth token, or None when it was sealed with another key (fetched again)."""
    try:
        return crypto.decrypt(stored)
    except ValueError:
        return None
