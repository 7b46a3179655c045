"""The test-message form. It renders the fields and carries the CSRF token; the rules live in
services.notifications.test_messages."""

from flask_wtf import FlaskForm
from wtforms import SelectChoice, SelectField, StringField, TextAreaField

from app.blueprints.forms import ServiceErrorsMixin, without_nul
from app.services.notifications.admin_settings import PROVIDER_LABELS, channel_of


class MessageTestForm(ServiceErrorsMixin, FlaskForm):
    channel = SelectField(
        "Channel",
        choices=[SelectChoice("sms", "SMS"), SelectChoice("email", "Email")],
        validate_choice=False,  # the service judges it, with its own message
    )
    recipient = StringField(
        "Send to",
        filters=[without_nul],
        description="A Kenyan mobile number for SMS (0712 345 678), an address for email.",
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )
    subject = StringField(
        "Subject (email only, optional)", filters=[without_nul], render_kw={"maxlength": 200}
    )
    message = TextAreaField(
        "Message",
        filters=[without_nul],
        default="This is a test message from Daystar SACCO.",
        render_kw={"rows": 3},
    )
    provider = SelectField(
        "Provider",
        choices=[SelectChoice("", "The failover order")]
        + [
            SelectChoice(name, f"{label} only ({'SMS' if channel_of(name) == 'sms' else 'email'})")
            for name, label in PROVIDER_LABELS.items()
        ],
        validate_choice=False,
        description="Force one provider to try its settings, even one not in the order.",
    )
