"""Forms of the contributions pages: the list's filters and the form that records a payment."""

from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectField, StringField
from wtforms.validators import NumberRange, Optional

from app import clock
from app.blueprints.forms import ServiceErrorsMixin
from app.blueprints.repayments.forms import PAYMENT_METHODS, ListFilters, choices

KINDS = (("deposit", "Deposit"), ("share_capital", "Share capital"))


class ContributionFilters(ListFilters):
    kind = SelectField("Kind", choices=choices(KINDS, "All kinds"), default="")
    member_id = IntegerField("Member", validators=[Optional(), NumberRange(1)])


class ContributionForm(ServiceErrorsMixin, FlaskForm):
    """Only the CSRF token is checked here; the service validates every field and says what is
    wrong with each, so the messages have one source."""

    amount = StringField("Amount (KES)", render_kw={"inputmode": "decimal", "autocomplete": "off"})
    kind = SelectField("Kind", choices=choices(KINDS), validate_choice=False)
    method = SelectField("Method", choices=choices(PAYMENT_METHODS), validate_choice=False)
    reference = StringField("Reference", description="The M-Pesa receipt number, bank slip or receipt.",
                            render_kw={"maxlength": 40, "autocomplete": "off"})  # fmt: skip
    paid_on = StringField("Paid on", default=lambda: clock.today().isoformat(),
                          render_kw={"type": "date"})  # fmt: skip
