"""The notification settings form. It renders the fields and carries the CSRF token; the rules
live in services.notifications.admin_settings, so every message about a setting comes from one
place. A provider's setting "twilio.auth_token" is the field `twilio_auth_token`. Secret fields
are password inputs that never show their value back: left empty, they keep what is stored."""

from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectChoice, SelectField, StringField

from app.blueprints.forms import ServiceErrorsMixin, without_nul
from app.services.notifications.admin_settings import SECRET_KEYS
from config import NOTIFY_PROVIDER_VARIABLES


def _text_field(label: str, description: str = "", **render_kw) -> StringField:
    return StringField(
        label,
        filters=[without_nul],
        description=description,
        render_kw={"autocomplete": "off", "spellcheck": "false", **render_kw},
    )


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


def _whole(label: str, description: str = "") -> StringField:
    return _text_field(label, description, inputmode="numeric")


CHANNEL_CHOICES = (("both", "SMS and email"), ("sms", "SMS only"), ("email", "Email only"),
                   ("none", "Not sent"))  # fmt: skip
# Each kind of member message (channels_<kind>), in page order.
MESSAGE_KINDS = {
    "welcome": "Welcome (new member)",
    "loan_application_received": "Loan application received",
    "loan_approved": "Loan approved",
    "loan_declined": "Loan declined",
    "loan_disbursed": "Loan disbursed",
    "repayment_received": "Repayment received",
    "contribution_received": "Contribution received",
    "repayment_due": "Repayment reminder",
    "repayment_overdue": "Overdue notice",
    "contribution_reminder": "Contribution reminder",
}
PROVIDER_FIELD_LABELS = {
    "account_sid": ("Account SID", ""),
    "auth_token": ("Auth token", "Also the key Twilio signs its status callbacks with."),
    "from_number": ("Sender", "An E.164 number (+254…) or an alphanumeric sender id."),
    "username": ("Username", "The app's username; \"sandbox\" uses AT's sandbox."),
    "api_key": ("API key", ""),
    "sender_id": ("Sender id", "A short code or alphanumeric sender; AT's default when empty."),
    "sender": ("Sender", "A number or alphanumeric sender; Infobip's default when empty."),
    "base_url": ("Base URL", "Empty: the provider's own address."),
    "callback_secret": (
        "Callback secret",
        "The secret part of the delivery-report URL (this provider signs nothing).",
    ),
    "from_address": ("From address", "no-reply@… or Daystar SACCO <no-reply@…>."),
    "webhook_public_key": ("Event webhook verification key", "Base64, as SendGrid shows it."),
    "domain": ("Sending domain", ""),
    "region": ("Region", ""),
    "webhook_signing_key": ("Webhook signing key", ""),
    "access_key_id": ("Access key id", ""),
    "secret_access_key": ("Secret access key", ""),
    "configuration_set": ("Configuration set", "Needed for delivery events through SNS."),
    "sns_topic_arns": ("SNS topic ARNs", "The topics allowed to post events, space-separated."),
}
PROVIDER_FIELD_OVERRIDES = {  # where one provider's field means something of its own
    "infobip.base_url": ("Base URL", "Your account's own address (https://xxxx.api.infobip.com)."),
    "mailgun.region": ("Region", "us or eu."),
    "ses.region": ("Region", "For example eu-west-1."),
}


def field_name(key: str) -> str:
    """The form field of a setting key ("twilio.auth_token" -> "twilio_auth_token")."""
    return key.replace(".", "_")


# The page's sections: (title, setting keys); the providers' own are shown per provider first.
SECTIONS = (
    (
        "Order & rules",
        (
            "sms_providers",
            "email_providers",
            "quiet_hours_start",
            "quiet_hours_end",
            "daily_limit",
            "duplicate_window_minutes",
            "max_retries",
            "circuit_threshold",
            "circuit_window_seconds",
            "circuit_cooling_off_seconds",
        ),
    ),
    (
        "Branding",
        (
            "sacco_name",
            "sacco_logo_url",
            "sacco_colour",
            "sacco_accent_colour",
            "sacco_phone",
            "sacco_email",
            "sacco_website",
        ),
    ),
    (
        "Messages",
        (
            *(f"channels_{kind}" for kind in MESSAGE_KINDS),
            "repayment_reminder_days",
            "overdue_notice_days",
        ),
    ),
    (
        "Alerts",
        (
            "admin_alert_phones",
            "admin_alert_interval_minutes",
            "failed_jobs_alert_threshold",
            "failed_jobs_alert_window_minutes",
        ),
    ),
)
PROVIDER_SECTIONS = {
    provider: tuple(f"{provider}.{name}" for name in names)
    for provider, names in NOTIFY_PROVIDER_VARIABLES.items()
}


class NotifySettingsForm(ServiceErrorsMixin, FlaskForm):
    sms_providers = _text_field(
        "SMS providers, in order",
        "Tried in this order until one accepts: africastalking, twilio, infobip.",
    )
    email_providers = _text_field(
        "Email providers, in order",
        "Tried in this order until one accepts: sendgrid, mailgun, ses.",
    )
    quiet_hours_start = _text_field(
        "Quiet hours from", "Nairobi time. Non-urgent SMS waits until they end.", type="time"
    )
    quiet_hours_end = _text_field("Quiet hours until", "Equal times: no quiet hours.", type="time")
    daily_limit = _whole("Daily limit", "Non-urgent messages a contact may get a day, per channel.")
    duplicate_window_minutes = _whole(
        "Duplicate window (minutes)",
        "The same text to the same contact is sent once within it; 0 turns it off.",
    )
    max_retries = _whole("Retries", "Rounds of retries, with backoff, when every provider failed.")
    circuit_threshold = _whole(
        "Circuit breaker: failures", "A provider failing this often within the window is skipped…"
    )
    circuit_window_seconds = _whole("… within (seconds)")
    circuit_cooling_off_seconds = _whole("… skipped for (seconds)", "Then it is tried again.")
    sacco_name = _text_field("SACCO name", "As messages and the email layout show it.")
    sacco_logo_url = _text_field(
        "Logo URL", "An http(s) image address; without one emails show the name.",
        placeholder="https://",
    )  # fmt: skip
    sacco_colour = _text_field("Main colour", "The email header and buttons: #rgb or #rrggbb.")
    sacco_accent_colour = _text_field("Accent colour", "#rgb or #rrggbb.")
    sacco_phone = _text_field("Phone", "Shown in messages.", inputmode="tel")
    sacco_email = _text_field("Email", "Shown in messages.", inputmode="email")
    sacco_website = _text_field("Website", placeholder="https://")
    repayment_reminder_days = _whole(
        "Repayment reminder (days before)", "The reminder goes this many days before a due date."
    )
    overdue_notice_days = _text_field(
        "Overdue notices (days overdue)",
        'Days overdue on which a notice goes, e.g. 1,7,14,30; or "daily".',
    )
    admin_alert_phones = _text_field(
        "Alert phone numbers",
        "Administrators' alerts go by SMS to these (comma-separated) and by email to every admin.",
        inputmode="tel",
    )
    admin_alert_interval_minutes = _whole(
        "Alert interval (minutes)", "At most one alert of a kind within it; the rest are counted."
    )
    failed_jobs_alert_threshold = _whole(
        "Failed jobs alert: at least",
        "Background jobs failed (retries used up) within the window that alert the admins; "
        "0 turns it off.",
    )
    failed_jobs_alert_window_minutes = _whole("… within (minutes)")

    def setting_keys(self) -> list[str]:
        """The setting keys of the form's fields, in page order."""
        keys = [key for names in PROVIDER_SECTIONS.values() for key in names]
        return keys + [key for _, names in SECTIONS for key in names]

    def submitted_values(self, form_keys, overridden: set[str]) -> dict[str, str]:
        """The settings that were sent, by key (a field missing from the request keeps its
        value; environment variables win, so their fields are never sent)."""
        return {
            key: self[field_name(key)].data or ""
            for key in self.setting_keys()
            if field_name(key) in form_keys and key not in overridden
        }


for _kind, _label in MESSAGE_KINDS.items():
    setattr(NotifySettingsForm, f"channels_{_kind}", _choice(_label, CHANNEL_CHOICES))
for _key in (k for names in PROVIDER_SECTIONS.values() for k in names):
    _label, _description = (
        PROVIDER_FIELD_OVERRIDES.get(_key) or PROVIDER_FIELD_LABELS[_key.split(".", 1)[1]]
    )
    setattr(
        NotifySettingsForm,
        field_name(_key),
        _secret(_label, _description) if _key in SECRET_KEYS else _text_field(_label, _description),
    )


def form_data(values: dict[str, str]) -> dict[str, str]:
    """The values in force, by field name, with secrets left out (never sent to the browser)."""
    return {field_name(k): v for k, v in values.items() if k not in SECRET_KEYS}


def is_secret(key: str) -> bool:
    return key in SECRET_KEYS
