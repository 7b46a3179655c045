"""The M-Pesa settings form. It renders the fields and carries the CSRF token; the rules live in
services.mpesa.config, so every message about a setting comes from one place. Secret fields are
password inputs that never show their value back: left empty, they keep what is stored."""

from cryptography.hazmat.primitives.serialization import Encoding
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, PasswordField, SelectChoice, SelectField, StringField

from app.blueprints.forms import ServiceErrorsMixin, without_nul
from app.integrations.daraja_security import load_certificate
from app.services.mpesa.config import SECRET_FIELDS

CERTIFICATE_MAX_BYTES = 64 * 1024  # a Daraja certificate is about 2 KB


def _secret(label: str, description: str = "") -> PasswordField:
    return PasswordField(
        label,
        filters=[without_nul],
        description=description,
        render_kw={"autocomplete": "new-password", "spellcheck": "false"},
    )


def _choice(label: str, choices, description: str = "") -> SelectField:
    # The service judges the value, so a tampered choice gets its message rather than WTForms'.
    return SelectField(
        label,
        choices=[SelectChoice(value, text) for value, text in choices],
        validate_choice=False,
        description=description,
    )


def _text_field(label: str, description: str = "", **render_kw) -> StringField:
    return StringField(
        label,
        filters=[without_nul],
        description=description,
        render_kw={"autocomplete": "off", "spellcheck": "false", **render_kw},
    )


YES_NO = (("no", "No"), ("yes", "Yes"))

# The form's sections, in page order: (title, field names).
SECTIONS = (
    ("Environment", ("environment", "base_url")),
    ("Daraja app", ("consumer_key", "consumer_secret")),
    (
        "STK Push (payments in)",
        (
            "shortcode",
            "passkey",
            "transaction_type",
            "till_number",
            "stk_max_amount",
            "stk_duplicate_window_seconds",
            "stk_callback_window_minutes",
        ),
    ),
    (
        "B2C (loan disbursements)",
        (
            "b2c_shortcode",
            "initiator_name",
            "initiator_password",
            "security_credential",
            "b2c_second_approval_above",
        ),
    ),
    ("Paybill (C2B)", ("c2b_register_version", "c2b_response_type", "c2b_accept_all")),
    (
        "Callbacks",
        (
            "public_base_url",
            "callback_secret",
            "verify_before_credit",
            "callback_ip_mode",
            "callback_ip_allowlist",
        ),
    ),
)


class SettingsForm(ServiceErrorsMixin, FlaskForm):
    environment = _choice(
        "Environment",
        (
            ("sandbox", "Sandbox (Safaricom's test system)"),
            ("production", "Production (real money)"),
            ("simulator", "Simulator (the local Daraja sandbox)"),
        ),
    )
    base_url = _text_field(
        "Base URL (optional)",
        "Overrides the environment's address; required for the simulator.",
        placeholder="https://",
    )
    consumer_key = _secret("Consumer key")
    consumer_secret = _secret("Consumer secret")
    shortcode = _text_field("Shortcode", "The paybill or head-office number.", inputmode="numeric")
    passkey = _secret("Passkey", "The Lipa na M-Pesa Online passkey.")
    transaction_type = _choice(
        "Transaction type",
        (("CustomerPayBillOnline", "Pay Bill"), ("CustomerBuyGoodsOnline", "Buy Goods (till)")),
    )
    till_number = _text_field(
        "Till number", "For Buy Goods only: the till that receives the money.", inputmode="numeric"
    )
    stk_max_amount = _text_field("Largest STK Push (KES)", inputmode="numeric")
    stk_duplicate_window_seconds = _text_field(
        "Duplicate window (seconds)",
        "The same member, purpose and amount again within this time is refused; 0 turns it off.",
        inputmode="numeric",
    )
    stk_callback_window_minutes = _text_field(
        "Callback window (minutes)",
        "A request with no callback after this long is asked about with STK Query.",
        inputmode="numeric",
    )
    b2c_shortcode = _text_field(
        "B2C shortcode", "Leave empty to use the shortcode above.", inputmode="numeric"
    )
    initiator_name = _text_field("Initiator name")
    initiator_password = _secret(
        "Initiator password", "Encrypted with the certificate below to make the credential."
    )
    security_credential = _secret(
        "Security credential (optional)",
        "Paste one already encrypted on the Daraja portal; it is used instead of the password.",
    )
    certificate_file = FileField(
        "Safaricom certificate (.cer, PEM or DER)",
        description="Upload a file to replace the stored certificate.",
        render_kw={"accept": ".cer,.crt,.pem,.der"},
    )
    remove_certificate = BooleanField("Remove the stored certificate")
    b2c_second_approval_above = _text_field(
        "Second approval above (KES)",
        "Disbursements larger than this need a second staff member; empty: never.",
        inputmode="decimal",
    )
    c2b_register_version = _choice("C2B API version", (("v1", "v1"), ("v2", "v2")))
    c2b_response_type = _choice(
        "When our validation URL does not answer",
        (("Completed", "Complete the payment"), ("Cancelled", "Cancel the payment")),
    )
    c2b_accept_all = _choice(
        "Accept every paybill payment",
        YES_NO,
        "No: payments to an account that names no member or loan are refused.",
    )
    public_base_url = _text_field(
        "Public base URL",
        "How Safaricom reaches us; callback URLs are built from it.",
        placeholder="https://",
    )
    callback_secret = _secret(
        "Callback secret", "The secret part of our callback URLs; generated when first needed."
    )
    verify_before_credit = _choice(
        "Verify before crediting",
        YES_NO,
        "Yes: each STK payment is confirmed with STK Query before it is posted.",
    )
    callback_ip_mode = _choice(
        "Callers' addresses",
        (
            ("off", "Not checked"),
            ("log", "Logged when not on the list"),
            ("enforce", "Refused when not on the list"),
        ),
        "Safaricom's callback addresses change now and then: log first, enforce once the list is right.",
    )
    callback_ip_allowlist = _text_field(
        "Safaricom's addresses",
        "IP addresses or networks (CIDR), separated by spaces. Behind a proxy set PROXY_FIX_HOPS.",
    )

    def setting_names(self) -> list[str]:
        """The names of the fields that are settings (in page order)."""
        return [name for _, names in SECTIONS for name in names]

    def submitted_values(self, form_keys, overridden: set[str]) -> dict[str, str]:
        """The settings that were sent (a field missing from the request keeps its value;
        environment variables win, so their fields are never sent)."""
        return {
            name: self[name].data or ""
            for name in self.setting_names()
            if name in form_keys and name not in overridden
        }


def certificate_pem(data: bytes) -> str:
    """An uploaded certificate (PEM or DER) as PEM text; ValueError saying why it is not one."""
    if len(data) > CERTIFICATE_MAX_BYTES:
        raise ValueError("This file is too large for a certificate (at most 64 KB).")
    return load_certificate(data).public_bytes(Encoding.PEM).decode("ascii")


def is_secret(name: str) -> bool:
    return name in SECRET_FIELDS
