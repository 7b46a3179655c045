"""Loan forms. They render the fields and carry the CSRF token; the rules live in services.loans and
services.repayments, so every message about a loan comes from one place. Only the list filters,
which no service checks, are validated here."""

from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    HiddenField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import Optional, ValidationError
from wtforms.widgets import DateInput

from app import clock
from app.blueprints.forms import ServiceErrorsMixin, without_nul
from app.models import LoanStatus, PaymentMethod

PER_PAGE_CHOICES = (10, 25, 50, 100)
METHOD_LABELS = {"mpesa": "M-Pesa", "cash": "Cash", "bank": "Bank", "checkoff": "Check-off"}
DATE_MESSAGE = "Enter a date as YYYY-MM-DD."


def _rate(product) -> str:
    method = product.interest_method.replace("_", " ")
    return f"{product.interest_rate.normalize():f}% a year, {method}"


def _today() -> str:
    return clock.today().isoformat()


class LoanFilterForm(FlaskForm):
    """The loans list filters, read from the query string."""

    class Meta:
        csrf = False  # a GET form: nothing changes

    status = SelectField(
        "Status",
        default="",
        invalid_choice_message="Choose one of the listed statuses.",
        choices=[SelectChoice("", "Any status")]
        + [SelectChoice(s.value, s.value.replace("_", " ").capitalize()) for s in LoanStatus],
    )
    product_id = SelectField(
        "Product", default="", invalid_choice_message="Choose one of the listed products."
    )
    date_from = DateField("Applied from", validators=[Optional()], format="%Y-%m-%d")
    date_to = DateField("Applied to", validators=[Optional()], format="%Y-%m-%d")
    per_page = SelectField(
        "Per page",
        default="25",
        invalid_choice_message="Choose 10, 25, 50 or 100 per page.",
        choices=[SelectChoice(str(n)) for n in PER_PAGE_CHOICES],
    )

    def __init__(self, products, **kwargs):
        super().__init__(**kwargs)
        self.product_id.choices = [SelectChoice("", "Any product")] + [
            SelectChoice(str(p.id), p.name) for p in products
        ]

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        for field in (self.date_from, self.date_to):
            if field.process_errors:
                field.errors = [DATE_MESSAGE]  # rather than WTForms' "Not a valid date value."
        return valid

    def validate_date_to(self, field):
        if field.data and self.date_from.data and field.data < self.date_from.data:
            raise ValidationError("The end date is before the start date.")

    def filters(self) -> dict:
        """The chosen filters as query-string values (empty ones left out), for links."""
        values = {
            "status": self.status.data,
            "product_id": self.product_id.data,
            "date_from": self.date_from.data.isoformat() if self.date_from.data else "",
            "date_to": self.date_to.data.isoformat() if self.date_to.data else "",
            "per_page": self.per_page.data if self.per_page.data != "25" else "",
        }
        return {name: value for name, value in values.items() if value}


class LoanApplicationForm(ServiceErrorsMixin, FlaskForm):
    member_id = HiddenField("Member id", filters=[without_nul])
    member_number = StringField(
        "Member number",
        filters=[without_nul],
        description="For example DST000123.",
        render_kw={"autocomplete": "off"},
    )
    product_id = SelectField("Loan product", validate_choice=False, filters=[without_nul])
    amount = StringField("Amount (KES)", filters=[without_nul], render_kw={"inputmode": "decimal"})
    term_months = StringField(
        "Term (months)", filters=[without_nul], render_kw={"inputmode": "numeric"}
    )
    purpose = TextAreaField(
        "Purpose", filters=[without_nul], render_kw={"rows": 2, "maxlength": 200}
    )

    def __init__(self, products, **kwargs):
        super().__init__(**kwargs)
        self.product_id.choices = [SelectChoice("", "Choose a product")] + [
            SelectChoice(str(p.id), f"{p.name} · {_rate(p)}") for p in products
        ]


class DeclineForm(ServiceErrorsMixin, FlaskForm):
    reason = TextAreaField("Reason for declining", filters=[without_nul], render_kw={"rows": 2})


class DisbursementForm(ServiceErrorsMixin, FlaskForm):
    method = SelectField(
        "Method",
        validate_choice=False,
        choices=[SelectChoice(m, METHOD_LABELS[m]) for m in ("cash", "bank", "mpesa")],
    )
    reference = StringField(
        "Reference", filters=[without_nul], description="Receipt or transfer number."
    )
    disbursed_on = StringField(
        "Disbursed on", widget=DateInput(), filters=[without_nul], default=_today
    )


class RepaymentForm(ServiceErrorsMixin, FlaskForm):
    amount = StringField("Amount (KES)", filters=[without_nul], render_kw={"inputmode": "decimal"})
    method = SelectField(
        "Method",
        validate_choice=False,
        choices=[SelectChoice(m.value, METHOD_LABELS[m.value]) for m in PaymentMethod],
    )
    reference = StringField(
        "Reference", filters=[without_nul], description="Required for M-Pesa: the receipt number."
    )
    paid_on = StringField("Paid on", widget=DateInput(), filters=[without_nul], default=_today)
