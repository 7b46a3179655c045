"""The repayments list's filter form (read from the query string, so no CSRF token)."""

from flask_wtf import FlaskForm
from wtforms import DateField, IntegerField, SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import NumberRange, Optional, ValidationError

PAYMENT_METHODS = (
    ("mpesa", "M-Pesa"),
    ("cash", "Cash"),
    ("bank", "Bank"),
    ("checkoff", "Check-off"),
)
PER_PAGE_MAX = 100
PAGE_MAX = 100_000  # keeps the SQL OFFSET far from any integer limit


def choices(pairs, blank: str | None = None) -> list[SelectChoice]:
    """Select options from (value, label) pairs, after a blank "any" option when `blank` is given."""
    options = [SelectChoice(value, label) for value, label in pairs]
    return [SelectChoice("", blank), *options] if blank else options


class IsoDateField(DateField):
    """A YYYY-MM-DD date whose error says what to type."""

    def process_formdata(self, valuelist):
        try:
            super().process_formdata(valuelist)
        except ValueError:
            raise ValueError("Enter a date as YYYY-MM-DD.") from None


class ListFilters(FlaskForm):
    """Date range and paging shared by the payment lists; subclasses add their own choices."""

    class Meta:
        csrf = False

    date_from = IsoDateField("Paid from", validators=[Optional()])
    date_to = IsoDateField("Paid to", validators=[Optional()])
    page = IntegerField("Page", validators=[Optional(), NumberRange(1, PAGE_MAX)], default=1)
    per_page = IntegerField(
        "Rows per page", validators=[Optional(), NumberRange(1, PER_PAGE_MAX)], default=25
    )

    def validate_date_to(self, field):
        if field.data and self.date_from.data and field.data < self.date_from.data:
            raise ValidationError("The end date is before the start date.")

    def query_args(self) -> dict:
        """The filters as query-string values (blank ones left out), for links to other pages."""
        return {
            name: (f.data.isoformat() if hasattr(f.data, "isoformat") else f.data)
            for name, f in self._fields.items()
            if name != "page" and f.data not in (None, "", f.default) and not f.errors
        }

    def service_args(self) -> dict:
        """The filters as keyword arguments for the list service (without paging)."""
        return {
            name: f.data or None
            for name, f in self._fields.items()
            if name not in ("page", "per_page")
        }


class RepaymentFilters(ListFilters):
    method = SelectField("Method", choices=choices(PAYMENT_METHODS, "All methods"), default="")
    loan_id = IntegerField("Loan", validators=[Optional(), NumberRange(1)])
    member_id = IntegerField("Member", validators=[Optional(), NumberRange(1)])
