"""Notification settings: defaults, then what staff stored, then environment variables (which
win). Provider credentials join these as each provider's client lands."""

from dataclasses import dataclass, fields
from datetime import time

from flask import current_app

from app.services import settings
from config import NOTIFY_PROVIDER_VARIABLES

PREFIX = "notify"
SMS_PROVIDERS = ("twilio", "africastalking", "infobip")
EMAIL_PROVIDERS = ("sendgrid", "mailgun", "ses")
CHANNEL_CHOICES = {"both": ("sms", "email"), "sms": ("sms",), "email": ("email",), "none": ()}


@dataclass(frozen=True)
class NotifySettings:
    sms_providers: str = "africastalking,twilio,infobip"  # the failover order
    email_providers: str = "sendgrid,mailgun,ses"
    quiet_hours_start: str = "21:00"  # Africa/Nairobi; non-urgent SMS waits until the end
    quiet_hours_end: str = "07:00"
    daily_limit: str = "5"  # non-urgent messages a recipient may get a day, per channel
    duplicate_window_minutes: str = "60"  # the same text to the same contact is sent once in it
    max_retries: str = "3"
    circuit_threshold: str = "5"  # failures within the window that open a provider's circuit
    circuit_window_seconds: str = "300"
    circuit_cooling_off_seconds: str = "300"
    # The SACCO as messages show it ({{ sacco.* }} in templates) and the email layout's branding.
    sacco_name: str = "Daystar SACCO"
    sacco_logo_url: str = ""  # an http(s) image URL; without one the layout shows the name
    sacco_colour: str = "#1d4e89"  # header and buttons (#rgb or #rrggbb)
    sacco_accent_colour: str = "#f2a900"
    sacco_phone: str = ""
    sacco_email: str = ""
    sacco_website: str = ""
    # Which channels each kind of member message goes on: both, sms, email or none. A channel is
    # used only when the member has that contact.
    channels_welcome: str = "both"
    channels_loan_application_received: str = "both"
    channels_loan_approved: str = "both"
    channels_loan_declined: str = "both"
    channels_loan_disbursed: str = "both"
    channels_repayment_received: str = "both"
    channels_contribution_received: str = "both"
    channels_repayment_due: str = "both"
    channels_repayment_overdue: str = "both"
    channels_contribution_reminder: str = "both"
    repayment_reminder_days: str = "3"  # a reminder goes this many days before a due date
    # Days overdue (of a member's oldest unpaid instalment) on which a notice goes; "daily": every
    # day while anything is overdue.
    overdue_notice_days: str = "1,7,14,30"
    # Administrator alerts go by email to every active admin account (staff accounts have no
    # phone number) and by SMS to these numbers; one alert of a kind per interval at most.
    admin_alert_phones: str = ""
    admin_alert_interval_minutes: str = "30"
    # A burst of failed background jobs alerts the admins: at least this many jobs failed (their
    # retries used up) within the window; 0 turns the alert off.
    failed_jobs_alert_threshold: str = "10"
    failed_jobs_alert_window_minutes: str = "15"

    def order(self, channel: str) -> list[str]:
        text = self.sms_providers if channel == "sms" else self.email_providers
        known = SMS_PROVIDERS if channel == "sms" else EMAIL_PROVIDERS
        return [p for p in (part.strip().lower() for part in text.split(",")) if p in known]

    def channels(self, message_key: str) -> tuple[str, ...]:
        """The channels a kind of member message goes on (both when the setting is unknown)."""
        value = str(getattr(self, f"channels_{message_key}", "both")).strip().lower()
        return CHANNEL_CHOICES.get(value, CHANNEL_CHOICES["both"])

    def overdue_days(self) -> set[int] | None:
        """Days overdue on which a notice goes; None: every day."""
        if self.overdue_notice_days.strip().lower() == "daily":
            return None
        return {int(p) for p in self.overdue_notice_days.split(",") if p.strip().isdigit()}

    @property
    def quiet_start(self) -> time:
        return time.fromisoformat(self.quiet_hours_start)

    @property
    def quiet_end(self) -> time:
        return time.fromisoformat(self.quiet_hours_end)


FIELD_NAMES = {f.name for f in fields(NotifySettings)}


SECRET_FIELDS = {
    "auth_token",
    "api_key",
    "secret_access_key",
    "webhook_signing_key",
    "callback_secret",
}


def provider_values(provider: str, max_age: float = 0) -> dict[str, str]:
    """A provider's settings (stored, then environment variables), by its client's field name;
    the stored ones as this process read them at most max_age seconds ago (settings.stored)."""
    prefix = f"{provider}."
    stored = {
        k.removeprefix(prefix): v
        for k, v in settings.stored(PREFIX, max_age).items()
        if k.startswith(prefix)
    }
    overrides = current_app.config.get("NOTIFY_OVERRIDES", {})
    stored.update({k.removeprefix(prefix): v for k, v in overrides.items() if k.startswith(prefix)})
    fields_known = NOTIFY_PROVIDER_VARIABLES.get(provider, {})
    return {k: v for k, v in stored.items() if k in fields_known and v}


def current() -> NotifySettings:
    """The settings in force: environment variables (config.NOTIFY_OVERRIDES) win."""
    values = {k: v for k, v in settings.stored(PREFIX).items() if k in FIELD_NAMES}
    overrides = current_app.config.get("NOTIFY_OVERRIDES", {})
    values.update({k: v for k, v in overrides.items() if k in FIELD_NAMES})
    return NotifySettings(**values)
