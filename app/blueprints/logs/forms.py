"""The Logs pages' filters, read from the query string and checked here: each bad value gets a
message (and a 422), never a 500."""

import re

from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, SelectChoice, SelectField, StringField
from wtforms.validators import Length, Optional, ValidationError

from app.blueprints.forms import stripped_without_nul
from app.models import Integration, LogLevel
from app.services import error_tracking, log_browser

DATE_MESSAGE = "Enter a date as YYYY-MM-DD."
EVENT = re.compile(r"[a-z0-9_.:-]{1,60}")
REF = re.compile(r"[\w.:@/+=-]{1,100}")
INTEGRATION_LABELS = {
    Integration.ACCOUNTING_API: "Accounting API",
    Integration.MPESA: "M-Pesa",
    Integration.NOTIFICATIONS: "Notifications",
    Integration.WEBHOOKS: "Webhooks",
    Integration.JOBS: "Jobs",
}


class LogFilterForm(FlaskForm):
    class Meta:
        csrf = False  # a GET form: nothing changes

    integration = SelectField(
        "Integration",
        default="",
        invalid_choice_message="Choose one of the listed integrations.",
        choices=[SelectChoice("", "Any integration")]
        + [SelectChoice(value.value, label) for value, label in INTEGRATION_LABELS.items()],
    )
    level = SelectField(
        "Level",
        default="",
        invalid_choice_message="Choose info, warning or error.",
        choices=[SelectChoice("", "Any level")]
        + [SelectChoice(level.value, level.value.capitalize()) for level in LogLevel],
    )
    date_from = DateField("From", validators=[Optional()], format="%Y-%m-%d")
    date_to = DateField("To", validators=[Optional()], format="%Y-%m-%d")
    q = StringField(
        "Text",
        filters=[stripped_without_nul],
        validators=[Length(max=100, message="Search for at most 100 characters.")],
        render_kw={"maxlength": 100, "type": "search", "placeholder": "in message or event"},
    )
    event = StringField(
        "Event",
        filters=[stripped_without_nul],
        render_kw={"maxlength": 60, "placeholder": "mpesa.callback_held or mpesa."},
    )
    error_kind = StringField(
        "Error kind",
        filters=[stripped_without_nul],
        validators=[Length(max=120, message="An error kind is at most 120 characters.")],
        render_kw={"maxlength": 120, "placeholder": "ProviderFault"},
    )
    ref = StringField(
        "Id",
        filters=[stripped_without_nul],
        render_kw={"maxlength": 100, "placeholder": "request, job, receipt or record id"},
    )
    ref_kind = SelectField(
        "Id of",
        default="",
        invalid_choice_message="Choose one of the listed kinds of id.",
        choices=[SelectChoice("", "Anything")]
        + [SelectChoice(name, label) for name, label in log_browser.REF_KINDS.items()],
    )
    # Page positions (from the pager's links, not typed).
    before = StringField("Page", filters=[stripped_without_nul])
    after = StringField("Page", filters=[stripped_without_nul])

    FILTERS = ("integration", "level", "date_from", "date_to", "q", "event", "error_kind", "ref",
               "ref_kind")  # fmt: skip

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        for field in (self.date_from, self.date_to):
            if field.process_errors:
                field.errors = [DATE_MESSAGE]  # rather than WTForms' "Not a valid date value."
        return valid

    def validate_date_to(self, field):
        if field.data and self.date_from.data and field.data < self.date_from.data:
            raise ValidationError("The end date is before the start date.")

    def validate_event(self, field):
        if field.data and not EVENT.fullmatch(field.data.lower()):
            raise ValidationError("An event is lower-case letters, digits, _ and ., e.g. mpesa.")

    def validate_ref(self, field):
        if field.data and not REF.fullmatch(field.data):
            raise ValidationError("An id is letters, digits and . _ - : only, at most 100.")

    def _cursor(self, field):
        if field.data:
            try:
                return log_browser.Cursor.parse(field.data)
            except ValueError:
                raise ValidationError(
                    "This page link is not valid: start from the newest."
                ) from None
        return None

    def validate_before(self, field):
        self._cursor(field)

    def validate_after(self, field):
        self._cursor(field)
        if field.data and self.before.data:
            raise ValidationError("This page link is not valid: start from the newest.")

    def checked(self) -> log_browser.Filters:
        """The filters for the query (call after validate())."""
        return log_browser.Filters(
            integration=self.integration.data or None,
            level=self.level.data or None,
            date_from=self.date_from.data,
            date_to=self.date_to.data,
            text=self.q.data or None,
            event=(self.event.data or "").lower() or None,
            error_kind=self.error_kind.data or None,
            ref=self.ref.data or None,
            ref_kind=self.ref_kind.data or None,
        )

    def positions(self) -> dict:
        """{"before": Cursor | None, "after": Cursor | None} (call after validate())."""
        return {"before": self._cursor(self.before), "after": self._cursor(self.after)}

    def query_values(self) -> dict[str, str]:
        """The chosen filters as query-string values (empty ones left out), for links."""
        values = {}
        for name in self.FILTERS:
            field = self[name]
            raw = field.raw_data[0] if isinstance(field, DateField) and field.raw_data else None
            values[name] = raw if raw is not None else field.data
        return {name: value for name, value in values.items() if value}


class ErrorsForm(FlaskForm):
    class Meta:
        csrf = False

    period = SelectField(
        "Period",
        default="24h",
        invalid_choice_message="Choose 24 hours, 7 days or 30 days.",
        choices=[SelectChoice(key, label) for key, label in error_tracking.PERIOD_LABELS.items()],
    )
    warnings = BooleanField("Include warnings")

    def query_values(self) -> dict[str, str]:
        return {"period": self.period.data, **({"warnings": "y"} if self.warnings.data else {})}
