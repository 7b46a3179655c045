"""Accounting API forms. They render the fields and carry the CSRF token; the rules live in
services.api_keys, services.webhooks and services.api_log, so every message comes from one place."""

from flask_wtf import FlaskForm
from wtforms import (
    HiddenField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.widgets import CheckboxInput, DateInput, ListWidget

from app.blueprints.forms import ServiceErrorsMixin, without_nul
from app.models import ApiPermission
from app.services.events import EVENT_TYPES

PERMISSION_LABELS = {
    ApiPermission.READ_LOANS: "Read loans",
    ApiPermission.READ_REPAYMENTS: "Read repayments",
    ApiPermission.READ_CONTRIBUTIONS: "Read contributions",
    ApiPermission.READ_MEMBERS: "Read members",
    ApiPermission.READ_FINANCIAL_SUMMARY: "Read the financial summary",
    ApiPermission.MANAGE_WEBHOOKS: "Manage webhooks",
}
PER_PAGE_CHOICES = ("25", "50", "100", "200")
USAGE_DAYS = ("7", "30", "90")


class CheckboxesField(SelectMultipleField):
    """A list of checkboxes. The service judges the choices, so any value reaches it."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, validate_choice=False, **kwargs)


class KeyForm(ServiceErrorsMixin, FlaskForm):
    name = StringField(
        "Name",
        filters=[without_nul],
        description="Who uses the key, for what: for example “Xero sync”.",
        render_kw={"maxlength": 100, "autocomplete": "off"},
    )
    permissions = CheckboxesField(
        "Permissions", choices=[SelectChoice(p.value, PERMISSION_LABELS[p]) for p in ApiPermission]
    )
    expires_in_days = StringField(
        "Expires after (days)",
        filters=[without_nul],
        description="Leave empty for a key that does not expire.",
        render_kw={"inputmode": "numeric"},
    )
    rate_limit_per_minute = StringField(
        "Rate limit (requests a minute)",
        filters=[without_nul],
        description="Leave empty for the default.",
        render_kw={"inputmode": "numeric"},
    )
    allowed_ips = TextAreaField(
        "Allowed IP addresses",
        filters=[without_nul],
        description="Addresses or CIDR ranges, separated by commas or spaces; empty: any address.",
        render_kw={"rows": 2},
    )


class RotateForm(ServiceErrorsMixin, FlaskForm):
    key_id = HiddenField("Key", filters=[without_nul])
    grace_hours = StringField(
        "Old key keeps working for (hours)",
        filters=[without_nul],
        default="24",
        render_kw={"inputmode": "numeric"},
    )


class WebhookForm(ServiceErrorsMixin, FlaskForm):
    url = StringField(
        "URL",
        filters=[without_nul],
        description="The HTTPS address that receives the events.",
        render_kw={"type": "url", "autocomplete": "off", "placeholder": "https://"},
    )
    events = CheckboxesField("Events", choices=[SelectChoice(e, e) for e in EVENT_TYPES])
    description = StringField(
        "Description", filters=[without_nul], render_kw={"maxlength": 300, "autocomplete": "off"}
    )


class LogFilterForm(ServiceErrorsMixin, FlaskForm):
    """The request log filters, read from the query string; services.api_log judges them."""

    class Meta:
        csrf = False  # a GET form: nothing changes

    key_id = SelectField("API key", validate_choice=False, filters=[without_nul])
    status = StringField(
        "Status", filters=[without_nul], render_kw={"placeholder": "404, 4xx, 5xx or error"}
    )
    path = StringField("Path contains", filters=[without_nul], render_kw={"placeholder": "/loans"})
    date_from = StringField("From", widget=DateInput(), filters=[without_nul])
    date_to = StringField("To", widget=DateInput(), filters=[without_nul])
    per_page = SelectField(
        "Per page",
        default="50",
        invalid_choice_message="Choose 25, 50, 100 or 200 per page.",
        choices=[SelectChoice(n) for n in PER_PAGE_CHOICES],
    )

    def __init__(self, keys, **kwargs):
        super().__init__(**kwargs)
        self.key_id.choices = [SelectChoice("", "Any key")] + [
            SelectChoice(str(k.id), f"{k.name} ({k.prefix}…)") for k in keys
        ]

    def filters(self) -> dict:
        """The chosen filters as query-string values (empty ones left out), for links."""
        values = {
            "key_id": self.key_id.data,
            "status": self.status.data,
            "path": self.path.data,
            "date_from": self.date_from.data,
            "date_to": self.date_to.data,
            "per_page": self.per_page.data if self.per_page.data != "50" else "",
        }
        return {name: (value or "").strip() for name, value in values.items() if value}
