"""Integrations > Notifications > Templates: the list and the editor (full page and htmx partial),
the live preview on sample data (SMS encoding and parts, the email in a sandboxed iframe, the plain
text), errors next to their field, the sandbox refusing Python internals with nothing saved, save
and reset (audited), and who may do what."""

import html
import re

import pytest
from markupsafe import escape
from sqlalchemy import select

from app.extensions import db
from app.models import AuditLog, NotificationTemplate
from app.services.notifications import templates
from app.services.notifications.default_templates import DEFAULTS, sample_context

BASE = "/integrations/notifications/templates"
HX = {"HX-Request": "true"}
ESCAPE = "{{ ''.__class__ }}"


def is_page(response) -> bool:
    return "<html" in response.text


def draft(key="welcome", **changes) -> dict:
    """The form as the editor posts it: the built-in text with `changes`."""
    return {"key": key, **DEFAULTS[key], **changes}


def srcdoc(response) -> str:
    """The document the preview's iframe shows, as the browser reads the attribute."""
    found = re.search(r'<iframe[^>]*\ssrcdoc="([^"]*)"', response.text)
    assert found, "no email preview iframe"
    return html.unescape(found.group(1))


def iframe_tag(response) -> str:
    return re.search(r"<iframe[^>]*>", response.text).group(0)


def stored(key="welcome") -> NotificationTemplate | None:
    db.session.expire_all()
    return db.session.scalar(select(NotificationTemplate).where(NotificationTemplate.key == key))


def audit_actions() -> list[str]:
    """The template changes in the audit log (signing in writes entries of its own)."""
    query = select(AuditLog.action).where(AuditLog.action.startswith("notification_template."))
    return list(db.session.scalars(query.order_by(AuditLog.id)))


def test_list_full_page_and_partial(viewer_client):
    page = viewer_client.get(BASE)
    assert page.status_code == 200 and is_page(page)
    assert 'aria-current="page">Templates</a>' in page.text
    for key in DEFAULTS:
        assert f'id="template-{key}"' in page.text
    welcome = re.search(r'<tr id="template-welcome">.*?</tr>', page.text, re.S).group(0)
    assert "Welcome" in welcome and "members" in welcome
    assert ">SMS</span>" in welcome and ">Email</span>" in welcome and ">default</span>" in welcome
    alert = re.search(r'<tr id="template-admin_alert">.*?</tr>', page.text, re.S).group(0)
    assert "administrators" in alert
    assert f'href="{BASE}/edit?key=welcome"' in page.text

    partial = viewer_client.get(BASE, headers=HX)
    assert partial.status_code == 200 and not is_page(partial)
    assert partial.text.lstrip().startswith('<section id="notify-templates"')
    assert "HX-Request" in partial.headers["Vary"]


def test_the_list_says_which_templates_staff_changed(admin_client):
    templates.ensure_defaults()  # stored as built: still "default"
    admin_client.post(BASE + "/save", data=draft(sms_body="Karibu {{ member.first_name }}!"))
    page = admin_client.get(BASE, headers=HX)
    welcome = re.search(r'<tr id="template-welcome">.*?</tr>', page.text, re.S).group(0)
    assert ">modified</span>" in welcome
    approved = re.search(r'<tr id="template-loan_approved">.*?</tr>', page.text, re.S).group(0)
    assert ">default</span>" in approved


def test_editor_full_page_and_partial_preview_sample_data(admin_client):
    page = admin_client.get(BASE + "/edit", query_string={"key": "loan_approved"})
    assert page.status_code == 200 and is_page(page)
    assert 'id="template-editor"' in page.text and 'id="template-preview"' in page.text
    context = sample_context("loan_approved")
    expected_sms = templates.render("loan_approved", context).sms
    assert "Dear Wanjiku, your KES 50,000.00 loan 1042 is approved" in expected_sms
    assert html.escape(expected_sms, quote=True).replace("&#x27;", "&#39;") in page.text
    assert "GSM-7 · " in page.text and " characters · 1 SMS part<" in page.text
    document = srcdoc(page)
    assert document.startswith("<!DOCTYPE html>") and "Your loan is approved" in document
    assert "KES 53,309.28" in document and "Daystar SACCO" in document  # the branded layout
    tag = iframe_tag(page)
    assert 'sandbox=""' in tag and "allow-scripts" not in page.text
    assert "Total to repay: KES 53,309.28" in page.text  # the plain text part
    # The live preview is wired: on input, with a delay, each request replacing the last.
    fields = re.search(r'<fieldset id="template-fields"[^>]*>', page.text, re.S).group(0)
    assert f'hx-post="{BASE}/preview"' in fields and 'hx-trigger="input delay:' in fields
    assert 'hx-sync="this:replace"' in fields and 'hx-target="#template-preview"' in fields

    partial = admin_client.get(BASE + "/edit", query_string={"key": "loan_approved"}, headers=HX)
    assert partial.status_code == 200 and not is_page(partial)
    assert partial.text.lstrip().startswith('<section id="template-editor"')
    assert "HX-Request" in partial.headers["Vary"]


def test_live_preview_renders_the_draft_and_saves_nothing(admin_client):
    body = "Habari {{ member.first_name }} 😀 {{ loan.amount|money }}"
    response = admin_client.post(
        BASE + "/preview",
        data=draft("loan_approved", sms_body=body, email_subject="Loan {{ loan.id }} ok"),
        headers=HX,
    )
    assert response.status_code == 200 and not is_page(response)
    assert response.text.lstrip().startswith('<section id="template-preview"')
    assert "Habari Wanjiku 😀 KES 50,000.00" in response.text
    assert "UCS-2 · " in response.text and "<code>😀</code>" in response.text
    assert "Loan 1042 ok" in response.text
    # Every field's error slot is cleared out of band.
    for name in ("sms_body", "email_subject", "email_text", "email_html"):
        assert (
            f'<small id="{name}-error" class="field-error" aria-live="polite" hx-swap-oob="true"></small>'
            in response.text
        )  # noqa: E501
    assert stored("loan_approved") is None and audit_actions() == []


def test_a_long_sms_is_counted_in_parts(admin_client):
    response = admin_client.post(BASE + "/preview", data=draft(sms_body="x" * 200), headers=HX)
    assert "GSM-7 · 200 characters · 2 SMS parts" in response.text


def test_preview_without_htmx_is_the_whole_editor_with_the_draft(admin_client):
    response = admin_client.post(
        BASE + "/preview", data=draft(sms_body="Jambo {{ member.first_name }}")
    )
    assert response.status_code == 200 and is_page(response)
    assert (
        "Jambo {{ member.first_name }}</textarea>" in response.text
    )  # the draft stays in the form
    assert '<p class="sms-text">Jambo Wanjiku</p>' in response.text
    assert stored() is None


def test_the_draft_html_cannot_leave_the_iframe(admin_client):
    attack = '"></iframe><script>alert(1)</script><p onclick="x">{{ member.first_name }}</p>'
    response = admin_client.post(BASE + "/preview", data=draft(email_html=attack), headers=HX)
    assert response.status_code == 200
    assert "<script>alert(1)</script>" not in response.text  # only inside the escaped srcdoc
    assert "<script>alert(1)</script>" in srcdoc(response)  # shown as written, where nothing runs
    assert 'sandbox=""' in iframe_tag(response) and "allow-scripts" not in response.text


@pytest.mark.parametrize("headers", [HX, {}], ids=["htmx", "page"])
def test_a_sandbox_escape_is_refused_next_to_its_field_and_nothing_saved(admin_client, headers):
    preview = admin_client.post(BASE + "/preview", data=draft(sms_body=ESCAPE), headers=headers)
    assert preview.status_code == 422
    refusal = "The SMS text uses something templates may not use"
    assert re.search(rf'<small id="sms_body-error"[^>]*>{refusal}', preview.text)
    assert "&#39;__class__&#39;" in preview.text and "is unsafe" in preview.text
    assert "<class" not in preview.text  # the sandbox never printed the class

    saved = admin_client.post(BASE + "/save", data=draft(sms_body=ESCAPE), headers=headers)
    assert saved.status_code == 422 and is_page(saved) == (headers == {})
    assert re.search(rf'<small id="sms_body-error"[^>]*>{refusal}', saved.text)
    assert re.search(r'<textarea aria-describedby="sms_body-error" aria-invalid="true"', saved.text)
    assert str(escape(ESCAPE)) in saved.text  # the draft is kept for correction
    assert stored() is None and audit_actions() == []


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"email_html": "<p>{{ member.first_name </p>"}, "email_html", "has an error on line 1"),
        ({"email_text": "Hi {{ member.salary }}"}, "email_text", "has no attribute"),
        ({"email_text": ""}, "email_text", "An email needs its plain text too"),
        ({"sms_body": "", "email_subject": "", "email_text": "", "email_html": ""}, "sms_body",
         "Write the SMS text, or the email"),
        ({"name": "  "}, "name", "Give the template a name."),
        ({"sms_body": "{{ cycler.__init__.__globals__ }}"}, "sms_body", "may not use"),
    ],
)  # fmt: skip
def test_bad_templates_get_422_with_the_reason_by_the_field(admin_client, changes, field, message):
    templates.ensure_defaults()
    before = stored().sms_body
    response = admin_client.post(BASE + "/save", data=draft(**changes), headers=HX)
    assert response.status_code == 422 and not is_page(response)
    assert response.text.lstrip().startswith('<section id="template-editor"')
    slot = re.search(rf'<small id="{field}-error"[^>]*>([^<]*)</small>', response.text).group(1)
    assert message in html.unescape(slot)
    assert stored().sms_body == before


def test_save_is_audited_used_for_messages_and_reset_puts_the_default_back(admin_client):
    body = "Karibu {{ member.first_name }}! Number {{ member.member_number }}."
    response = admin_client.post(BASE + "/save", data=draft(sms_body=body), headers=HX)
    assert response.status_code == 200 and not is_page(response)
    assert response.text.lstrip().startswith('<section id="template-editor"')
    assert "Template “welcome” saved" in response.text  # the flash, out of band
    assert ">modified</span>" in response.text
    assert '<p class="sms-text">Karibu Wanjiku! Number DST000123.</p>' in response.text
    row = stored()
    assert row.sms_body == body and row.updated_by_id == admin_client.user.id
    assert templates.render("welcome", sample_context("welcome")).sms == (
        "Karibu Wanjiku! Number DST000123."
    )
    entry = db.session.scalars(
        select(AuditLog).where(AuditLog.target_type == "notification_template")
    ).one()
    assert (entry.action, entry.actor_id, entry.details["key"]) == (
        "notification_template.created", admin_client.user.id, "welcome",
    )  # fmt: skip
    assert entry.details["fields"]  # what changed

    reset = admin_client.post(BASE + "/reset", data={"key": "welcome"}, headers=HX)
    assert reset.status_code == 200 and not is_page(reset)
    assert "back to its built-in text" in reset.text and ">default</span>" in reset.text
    assert stored().sms_body == DEFAULTS["welcome"]["sms_body"]
    assert audit_actions() == ["notification_template.created", "notification_template.updated"]


def test_save_and_reset_without_htmx_redirect_to_the_editor(admin_client):
    saved = admin_client.post(BASE + "/save", data=draft(sms_body="Karibu!"))
    assert saved.status_code == 303 and saved.headers["Location"] == f"{BASE}/edit?key=welcome"
    page = admin_client.get(saved.headers["Location"])
    assert "Template “welcome” saved" in page.text and "Karibu!</textarea>" in page.text
    reset = admin_client.post(BASE + "/reset", data={"key": "welcome"})
    assert reset.status_code == 303 and stored().sms_body == DEFAULTS["welcome"]["sms_body"]


def test_nul_characters_are_dropped_not_a_server_error(admin_client):
    response = admin_client.post(
        BASE + "/save", data=draft(name="Wel\x00come", sms_body="Hi\x00 {{ member.first_name }}")
    )
    assert response.status_code == 303
    row = stored()
    assert (row.name, row.sms_body) == ("Welcome", "Hi {{ member.first_name }}")


@pytest.mark.parametrize(
    ("method", "path", "data"),
    [
        ("get", "/edit", {"key": "no_such_template"}),
        ("get", "/edit", {}),
        ("post", "/save", {"key": "no_such_template", "name": "X", "sms_body": "Hi"}),
        ("post", "/preview", {"key": ""}),
        ("post", "/reset", {"key": "x" * 500}),
    ],
)
def test_an_unknown_template_is_404(admin_client, method, path, data):
    if method == "get":
        response = admin_client.get(BASE + path, query_string=data)
    else:
        response = admin_client.post(BASE + path, data=data)
    assert response.status_code == 404
    assert db.session.scalars(select(NotificationTemplate)).all() == []


def test_viewers_read_but_do_not_edit(viewer_client, officer_client):
    page = viewer_client.get(BASE + "/edit", query_string={"key": "welcome"})
    assert page.status_code == 200
    assert "Only administrators can change templates" in page.text
    assert "readonly" in page.text and ">Save</button>" not in page.text
    assert "Reset to default" not in page.text
    assert f'hx-post="{BASE}/preview"' not in page.text
    assert "Karibu Daystar SACCO, Wanjiku!" in page.text  # the preview as it reads now
    for client in (viewer_client, officer_client):
        for path, data in (("/save", draft(sms_body="Hacked")), ("/preview", draft()),
                           ("/reset", {"key": "welcome"})):  # fmt: skip
            assert client.post(BASE + path, data=data, headers=HX).status_code == 403
    assert stored() is None


def test_signed_out_is_sent_to_sign_in(client):
    response = client.get(BASE + "/edit", query_string={"key": "welcome"})
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]
    hx = client.post(BASE + "/preview", data=draft(), headers=HX)
    assert hx.status_code == 401 and "HX-Redirect" in hx.headers
