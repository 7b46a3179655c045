"""The member form: it renders the fields and carries the CSRF token; the rules live in
services.members.clean_member_data, so every error comes from one place."""

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, SelectChoice, SelectField, StringField, TelField
from wtforms.widgets import DateInput

from app import clock
from app.blueprints.forms import ServiceErrorsMixin, without_nul
from app.models import MemberStatus


class MemberForm(ServiceErrorsMixin, FlaskForm):
    first_name = StringField(
        "First name", filters=[without_nul], render_kw={"autocomplete": "given-name"}
    )
    last_name = StringField(
        "Last name", filters=[without_nul], render_kw={"autocomplete": "family-name"}
    )
    phone = TelField(
        "Phone", filters=[without_nul], description="A Kenyan mobile number, e.g. 0712 345 678."
    )
    email = EmailField("Email (optional)", filters=[without_nul])
    national_id = StringField(
        "National ID", filters=[without_nul], render_kw={"inputmode": "numeric"}
    )
    joined_on = StringField(
        "Joined on",
        widget=DateInput(),
        filters=[without_nul],
        default=lambda: clock.today().isoformat(),
    )
    sms_opt_in = BooleanField("Send SMS notifications", default=True)
    email_opt_in = BooleanField("Send email notifications", default=True)

    def member_data(self) -> dict:
        """The submitted values, as services.members expects them."""
        return {name: field.data for name, field in self._fields.items() if name != "csrf_token"}


class EditMemberForm(MemberForm):
    # The service checks the value, so a tampered choice gets its message rather than WTForms'.
    status = SelectField(
        "Status",
        choices=[SelectChoice(s.value, s.value.capitalize()) for s in MemberStatus],
        validate_choice=False,
    )


class PaymentRequestForm(ServiceErrorsMixin, FlaskForm):
    """An STK Push to the member's phone; services.mpesa.payments judges every value."""

    phone = TelField(
        "Phone",
        filters=[without_nul],
        description="The member's phone unless they pay from another.",
    )
    amount = StringField(
        "Amount (KES)",
        filters=[without_nul],
        description="Whole shillings.",
        render_kw={"inputmode": "numeric", "autocomplete": "off"},
    )
    payment_purpose = SelectField(
        "For",
        choices=[
            SelectChoice("loan_repayment", "Loan repayment"),
            SelectChoice("contribution", "Contribution"),
        ],
        validate_choice=False,
    )
    loan_id = SelectField("Loan", validate_choice=False)
    contribution_kind = SelectField(
        "Contribution",
        choices=[
            SelectChoice("deposit", "Deposit"),
            SelectChoice("share_capital", "Share capital"),
        ],
        validate_choice=False,
    )
    account_reference = StringField(
        "Account reference",
        filters=[without_nul],
        description="What the member sees on the prompt (at most 12 letters and digits).",
        render_kw={"maxlength": 12, "autocomplete": "off"},
    )

    def __init__(self, loans, **kwargs):
        super().__init__(**kwargs)
        self.loan_id.choices = [
            SelectChoice(str(loan.id), f"Loan #{loan.id} · balance KES {loan.balance:,.2f}")
            for loan in loans
        ]
