"""The transaction monitor's filters (read from the query string and checked here, since no
service judges them) and the refusal form of a disbursement waiting for approval."""

import re

from flask_wtf import FlaskForm
from wtforms import DateField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import Optional, ValidationError

from app.blueprints.forms import ServiceErrorsMixin, stripped_without_nul
from app.models import MpesaStatus, MpesaType
from app.services import members
from app.services.mpesa import monitor
from app.services.validation import normalize_phone

DATE_MESSAGE = "Enter a date as YYYY-MM-DD."
RECEIPT = re.compile(r"[A-Z0-9]{1,20}")
TYPE_LABELS = {
    MpesaType.STK_PUSH: "STK Push (payment request)",
    MpesaType.B2C: "B2C (disbursement)",
    MpesaType.C2B: "Paybill (C2B)",
}


class TransactionFilterForm(FlaskForm):
    class Meta:
        csrf = False  # a GET form: nothing changes

    transaction_type = SelectField(
        "Type",
        default="",
        invalid_choice_message="Choose one of the listed types.",
        choices=[SelectChoice("", "Any type")]
        + [SelectChoice(t.value, label) for t, label in TYPE_LABELS.items()],
    )
    status = SelectField(
        "Status",
        default="",
        invalid_choice_message="Choose one of the listed statuses.",
        choices=[SelectChoice("", "Any status")]
        + [SelectChoice(s.value, s.value.replace("_", " ").capitalize()) for s in MpesaStatus],
    )
    date_from = DateField("From", validators=[Optional()], format="%Y-%m-%d")
    date_to = DateField("To", validators=[Optional()], format="%Y-%m-%d")
    phone = StringField(
        "Phone",
        filters=[stripped_without_nul],
        render_kw={"placeholder": "0712 345 678", "inputmode": "tel"},
    )
    receipt = StringField(
        "Receipt",
        filters=[stripped_without_nul],
        render_kw={"placeholder": "SGH12ABC34", "maxlength": 20},
    )
    member = StringField(
        "Member number",
        filters=[stripped_without_nul],
        render_kw={"placeholder": "DST000123", "maxlength": 12},
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

    def validate_phone(self, field):
        if field.data:
            try:
                normalize_phone(field.data)
            except ValueError as exc:
                raise ValidationError(str(exc)) from None

    def validate_receipt(self, field):
        if field.data and not RECEIPT.fullmatch(field.data.upper()):
            raise ValidationError("A receipt is letters and digits only, e.g. SGH12ABC34.")

    def validate_member(self, field):
        if field.data and members.find_by_number(field.data) is None:
            raise ValidationError("No member has this number.")

    def checked(self) -> monitor.Filters:
        """The filters for the query (call after validate())."""
        member = members.find_by_number(self.member.data) if self.member.data else None
        return monitor.Filters(
            transaction_type=self.transaction_type.data or None,
            status=self.status.data or None,
            date_from=self.date_from.data,
            date_to=self.date_to.data,
            phone=normalize_phone(self.phone.data) if self.phone.data else None,
            receipt=self.receipt.data.upper() if self.receipt.data else None,
            member_id=member.id if member else None,
        )

    def query_values(self) -> dict[str, str]:
        """The chosen filters as query-string values (empty ones left out), for links."""
        values = {
            "transaction_type": self.transaction_type.data,
            "status": self.status.data,
            "date_from": self.date_from.raw_data[0] if self.date_from.raw_data else "",
            "date_to": self.date_to.raw_data[0] if self.date_to.raw_data else "",
            "phone": self.phone.data,
            "receipt": self.receipt.data,
            "member": self.member.data,
        }
        return {name: value for name, value in values.items() if value}


class RefuseForm(ServiceErrorsMixin, FlaskForm):
    reason = TextAreaField(
        "Reason for refusing",
        filters=[stripped_without_nul],
        render_kw={"rows": 2, "maxlength": 300},
        description="The requester sees it; the loan stays approved.",
    )
