"""Message templates: the sandbox, escaping, the layout, the defaults, and saving from the portal."""

import sys
import types

import pytest
from sqlalchemy import select

from app.extensions import db
from app.hooks import hookimpl
from app.models import AuditLog, NotificationTemplate
from app.services.actor import Actor
from app.services.errors import ValidationFailed
from app.services.notifications import templates
from app.services.notifications.default_templates import DEFAULTS, sample_context

ACTOR = Actor.system("tests")


def render_text(source: str, **context) -> str:
    """Render `source` as an SMS body with `context`, through the service's own path."""
    draft = templates.Source("t", "T", source, "", "", "")
    return templates.render_source(draft, context, templates.branding(), channels=("sms",)).sms


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ joiner.__init__.__globals__.os }}",
        "{{ member.__class__.__base__ }}",
        "{{ self.__init__.__globals__ }}",
        "{{ '{0.__class__}'.format(member) }}",
        "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
        "{{ 'x' * 100000 }}",
        "{{ 9 ** 9 ** 9 }}",
        "{{ config }}",
        "{{ lipsum(100000) }}",
    ],
)
def test_the_sandbox_refuses_python_internals_and_huge_output(source):
    with pytest.raises(templates.TemplateProblem) as caught:
        render_text(source, member={"first_name": "Wanjiku"})
    assert caught.value.field == "sms_body"
    assert caught.value.message.startswith("The SMS text ")


def test_saving_a_template_that_reaches_for_internals_is_refused_naming_the_field():
    values = {**DEFAULTS["welcome"], "email_html": "<p>{{ cycler.__init__.__globals__ }}</p>"}
    with pytest.raises(ValidationFailed) as caught:
        templates.save_template("welcome", values, ACTOR)
    assert set(caught.value.errors) == {"email_html"}
    assert "may not use" in caught.value.errors["email_html"]
    assert db.session.scalars(select(NotificationTemplate)).all() == []


def test_a_syntax_error_names_the_field_and_line():
    values = {**DEFAULTS["welcome"], "sms_body": "Hello\n{{ member.first_name "}
    with pytest.raises(ValidationFailed) as caught:
        templates.save_template("welcome", values, ACTOR)
    assert caught.value.errors == {
        "sms_body": "The SMS text has an error on line 2: unexpected end of template, expected "
        "'end of print statement'."
    }


def test_an_unknown_variable_is_refused_when_saved():
    values = {**DEFAULTS["welcome"], "email_subject": "Hi {{ loan.amount }}"}
    with pytest.raises(ValidationFailed) as caught:
        templates.save_template("welcome", values, ACTOR)
    assert caught.value.errors["email_subject"] == (
        "The email subject cannot be rendered: 'loan' is undefined"
    )


def test_member_text_is_data_never_template_code():
    name = "{{ 7*7 }} {% if true %}x{% endif %} {{ ''.__class__ }}"
    assert render_text("Hi {{ member.first_name }}", member={"first_name": name}) == f"Hi {name}"


def test_email_html_escapes_member_text_but_text_parts_do_not():
    source = templates.default_source("welcome")
    context = sample_context("welcome")
    context["member"] = {**context["member"], "first_name": '<script>alert("x")</script>&'}
    message = templates.render_source(source, context, templates.branding())
    assert "<script>" not in message.html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&amp;" in message.html
    assert 'Dear <script>alert("x")</script>&,' in message.text
    assert '<script>alert("x")</script>&!' in message.sms


@pytest.mark.parametrize("key", sorted(DEFAULTS))
def test_every_default_template_renders_with_sample_data(key):
    preview = templates.preview(key)
    assert preview.errors == {}
    message = preview.message
    assert message.sms and message.subject and message.text
    assert "<!DOCTYPE html>" in message.html and "Daystar SACCO" in message.html
    assert "{{" not in message.sms + message.text + message.html
    assert len(message.sms) <= 160 * 2  # two SMS parts at most


def test_the_layout_carries_the_branding_from_settings(app, monkeypatch):
    monkeypatch.setitem(
        app.config,
        "NOTIFY_OVERRIDES",
        {
            "sacco_name": "Umoja <Savings>",
            "sacco_logo_url": "https://cdn.example.co.ke/logo.png",
            "sacco_colour": "#123abc",
            "sacco_accent_colour": "red;background:url(https://evil.example)",
            "sacco_phone": "0711 000 111",
        },
    )
    html = templates.render("welcome", sample_context("welcome")).html
    assert '<img src="https://cdn.example.co.ke/logo.png" alt="Umoja &lt;Savings&gt;"' in html
    assert "background:#123abc" in html
    assert "evil.example" not in html and "border-bottom:4px solid #f2a900" in html
    assert "0711 000 111" in html and 'name="viewport"' in html and "@media" in html


def test_a_text_only_email_is_put_into_the_layout_with_escaped_paragraphs():
    draft = {
        "name": "Note",
        "sms_body": "",
        "email_subject": "Note",
        "email_text": "Dear {{ member.first_name }},\n\nLine one\nline <two>",
        "email_html": "",
    }
    message = templates.preview("custom_note", draft).message
    assert "<p>Dear Wanjiku,</p><p>Line one<br>line &lt;two&gt;</p>" in message.html
    assert message.sms == ""


def test_preview_reports_problems_by_field_without_raising():
    draft = {**DEFAULTS["loan_approved"], "sms_body": "{{ loan.amount|money }", "email_text": ""}
    preview = templates.preview("loan_approved", draft)
    assert preview.message is None
    assert set(preview.errors) == {"sms_body", "email_text"}
    assert preview.variables == ("sacco", "member", "loan")


def test_save_stores_the_template_audited_and_render_uses_it(admin_client):
    user = admin_client.user
    values = {**DEFAULTS["welcome"], "sms_body": "Karibu {{ member.first_name }}!"}
    row = templates.save_template("welcome", values, Actor.staff(user, "10.0.0.1"))
    assert (row.key, row.updated_by_id) == ("welcome", user.id)
    entry = db.session.scalar(
        select(AuditLog).where(AuditLog.target_type == "notification_template")
    )
    assert entry.action == "notification_template.created"
    assert entry.details == {"key": "welcome", "fields": ["name", *templates.FIELDS]}
    assert templates.render("welcome", sample_context("welcome")).sms == "Karibu Wanjiku!"
    templates.reset_template("welcome", ACTOR)
    assert templates.render("welcome", sample_context("welcome")).sms.startswith("Karibu Daystar")


def test_ensure_defaults_inserts_the_missing_ones_and_keeps_edits():
    templates.save_template("welcome", {**DEFAULTS["welcome"], "sms_body": "Edited"}, ACTOR)
    assert templates.ensure_defaults() == len(DEFAULTS) - 1
    assert templates.ensure_defaults() == 0
    rows = {row.key: row for row in db.session.scalars(select(NotificationTemplate))}
    assert set(rows) == set(DEFAULTS) and len(DEFAULTS) == 15
    assert rows["welcome"].sms_body == "Edited"


def test_a_broken_stored_template_falls_back_to_the_default_when_sending():
    # Stored past the checks (as an older version might have): sending still works.
    db.session.add(NotificationTemplate(key="welcome", name="W", sms_body="{{ nope.x }}"))
    db.session.commit()
    message = templates.render("welcome", sample_context("welcome"), channels=("sms",))
    assert message.sms.startswith("Karibu Daystar SACCO, Wanjiku!")


def test_plugins_may_rewrite_the_sms_and_the_plain_text(app):
    plugin = types.ModuleType("daystar_test_template_plugin")
    plugin.daystar_notification_message = hookimpl(
        lambda message, type, data: f"{message} [{type}/{data['channel']}]"
    )
    sys.modules[plugin.__name__] = plugin
    manager = app.extensions["daystar_hooks"]
    manager.register(plugin)
    try:
        message = templates.render("welcome", sample_context("welcome"))
    finally:
        manager.unregister(plugin)
    assert message.sms.endswith("[welcome/sms]")
    assert message.text.endswith("[welcome/email]")


def test_the_cli_inserts_the_defaults(app):
    result = app.test_cli_runner().invoke(args=["notify", "ensure-templates"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"{len(DEFAULTS)} default template(s) added."
    again = app.test_cli_runner().invoke(args=["notify", "ensure-templates"])
    assert again.stdout.strip() == "Every template is present."
