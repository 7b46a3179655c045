"""The notification log's filters, read from the query string and checked here (no service judges
them): each bad value gets a message, and the list is not shown until it is corrected."""

import re

from flask_wtf import FlaskForm
from wtforms import DateField, SelectChoice, SelectField, StringField
from wtforms.validators import Length, Optional, ValidationError

from app.blueprints.forms import stripped_without_nul
from app.models import NotificationStatus
from app.services import members
from app.services.notifications import config, log_query
from app.services.notifications.stats import PROVIDER_LABELS
from app.services.validation import normalize_email, normalize_phone

DATE_MESSAGE = "Enter a date as YYYY-MM-DD."
TYPE = re.compile(r"[a-z0-9_.:-]{1,40}")
MEMBER_NUMBER = re.compile(r"[A-Z]{2,5}\d{1,10}")


def _recipient(text: str) -> dict:
    """{"member_id"} for a member number, {"contact"} for a phone number or email address;
    ValueError saying what is wrong."""
    compact = "".join(text.split()).upper()
    if MEMBER_NUMBER.fullmatch(compact):
        member = members.find_by_number(compact)
        if member is None:
            raise ValueError("No member has this number.")
        return {"member_id": member.id}
    if "@" in text:
        return {"contact": normalize_email(text)}
    try:
        return {"contact": normalize_phone(text)}
    except ValueError:
        raise ValueError(
            "Enter a phone number (0712 345 678), an email address or a member number (DST000123)."
        ) from None


class LogFilterForm(FlaskForm):
    class Meta:
        csrf = False  # a GET form: nothing changes

    channel = SelectField(
        "Channel",
        default="",
        invalid_choice_message="Choose SMS or email.",
        choices=[SelectChoice("", "Any channel"), SelectChoice("sms", "SMS"),
                 SelectChoice("email", "Email")],
    )  # fmt: skip
    status = SelectField(
        "Status",
        default="",
        invalid_choice_message="Choose one of the listed statuses.",
        choices=[SelectChoice("", "Any status")]
        + [SelectChoice(s.value, s.value.capitalize()) for s in NotificationStatus],
    )
    provider = SelectField(
        "Provider",
        default="",
        invalid_choice_message="Choose one of the listed providers.",
        choices=[SelectChoice("", "Any provider")]
        + [
            SelectChoice(name, PROVIDER_LABELS[name])
            for name in (*config.SMS_PROVIDERS, *config.EMAIL_PROVIDERS)
        ],
    )
    notification_type = StringField(
        "Type",
        filters=[stripped_without_nul],
        validators=[Optional()],
        render_kw={"placeholder": "loan_approved", "maxlength": 40},
    )
    recipient = StringField(
        "Recipient",
        filters=[stripped_without_nul],
        render_kw={"placeholder": "0712 345 678, email or DST000123", "maxlength": 254},
    )
    date_from = DateField("From", validators=[Optional()], format="%Y-%m-%d")
    date_to = DateField("To", validators=[Optional()], format="%Y-%m-%d")
    q = StringField(
        "Message contains",
        filters=[stripped_without_nul],
        validators=[Length(max=100, message="Search for at most 100 characters.")],
        render_kw={"maxlength": 100, "type": "search"},
    )

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        for field in (self.date_from, self.date_to):
            if field.process_errors:
                field.errors = [DATE_MESSAGE]  # rather than WTForms' "Not a valid date value."
        return valid

    def validate_date_to(self, field):
        if field.data and self.date_from.data and field.data < self.date_from.data:
            raise ValidationError("The end date is before the start date.")

    def validate_notification_type(self, field):
        if field.data and not TYPE.fullmatch(field.data.lower()):
            raise ValidationError("A type is lower-case letters, digits and _, e.g. loan_approved.")

    def validate_recipient(self, field):
        self.recipient_filter = {}
        if field.data:
            if len(field.data) > 254:
                raise ValidationError("A phone number or email address is shorter than this.")
            try:
                self.recipient_filter = _recipient(field.data)
            except ValueError as exc:
                raise ValidationError(str(exc)) from None

    def checked(self) -> log_query.Filters:
        """The filters for the query (call after validate())."""
        return log_query.Filters(
            channel=self.channel.data or None,
            status=self.status.data or None,
            provider=self.provider.data or None,
            notification_type=(self.notification_type.data or "").lower() or None,
            date_from=self.date_from.data,
            date_to=self.date_to.data,
            text=self.q.data or None,
            **self.recipient_filter,
        )

    def query_values(self) -> dict[str, str]:
        """The chosen filters as query-string values (empty ones left out), for links."""
        values = {
            "channel": self.channel.data,
            "status": self.status.data,
            "provider": self.provider.data,
            "notification_type": self.notification_type.data,
            "recipient": self.recipient.data,
            "date_from": self.date_from.raw_data[0] if self.date_from.raw_data else "",
            "date_to": self.date_to.raw_data[0] if self.date_to.raw_data else "",
            "q": self.q.data,
        }
        return {name: value for name, value in values.items() if value}
