"""Message templates: the list, and the editor with a live preview (the SMS with its encoding and
parts, the email in the branded layout inside a sandboxed iframe, and its plain text). Everyone
may read them; only administrators (`manage_settings`) may preview drafts, save or reset. The
rendering, checking and saving are app/services/notifications/templates.py's."""

from flask import flash, request, url_for
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField

from app.auth import can, current_actor, requires
from app.blueprints.forms import ServiceErrorsMixin, without_nul
from app.blueprints.notify_admin import bp
from app.htmx import hx_redirect, is_htmx, render_partial, render_view
from app.services.errors import NotFound, ValidationFailed
from app.services.notifications import templates
from app.services.notifications.default_templates import sample_context
from app.services.notifications.sms_text import shape

LIST_PAGE = "notify_admin/templates.html"
LIST = "notify_admin/_templates.html"
PAGE = "notify_admin/template.html"
EDITOR = "notify_admin/_template_editor.html"
PREVIEW = "notify_admin/_template_preview.html"
MAX_KEY = 60


CODE = {"spellcheck": "false", "autocomplete": "off", "class": "template-source"}


class TemplateForm(ServiceErrorsMixin, FlaskForm):
    name = StringField("Name", filters=[without_nul], description="What the message is, for staff.")
    sms_body = TextAreaField(
        "SMS text",
        filters=[without_nul],
        render_kw={**CODE, "rows": 4},
        description="Leave empty to send this message by email only.",
    )
    email_subject = StringField(
        "Email subject",
        filters=[without_nul],
        render_kw=CODE,
        description="Leave empty (with both bodies) to send this message by SMS only.",
    )
    email_html = TextAreaField(
        "Email HTML body",
        filters=[without_nul],
        render_kw={**CODE, "rows": 10},
        description="The content only: the SACCO's branded layout is put around it. "
        "Leave empty to use the plain text.",
    )
    email_text = TextAreaField(
        "Email plain text",
        filters=[without_nul],
        render_kw={**CODE, "rows": 8},
        description="For mail apps that show no HTML.",
    )

    def values(self) -> dict[str, str]:
        return {name: self[name].data or "" for name in ("name", *templates.FIELDS)}


def status_of(source: templates.Source) -> str:
    """Whether the template reads as built ("default"), was changed by staff ("modified"), or
    has no built-in text at all ("custom")."""
    default = templates.default_source(source.key)
    if default is None:
        return "custom"
    same = source.name == default.name and source.fields() == default.fields()
    return "default" if same else "modified"


def channels_of(source: templates.Source) -> list[str]:
    """The channels the template has text for (an empty SMS or subject means none)."""
    sms = ["SMS"] if source.sms_body.strip() else []
    return sms + (["Email"] if source.email_subject.strip() else [])


def _key(values) -> str:
    key = (values.get("key") or "").replace("\x00", "").strip()[:MAX_KEY]
    if not key:
        raise NotFound("Say which template.")
    return key


def _variables(key: str) -> list[tuple[str, str]]:
    """Each `name.field` the template may use, with its sample value, for the help list."""
    found = []
    for name, value in sample_context(key).items():
        if isinstance(value, dict):
            found.extend((f"{name}.{field}", value[field]) for field in value)
        else:
            found.append((name, value))
    sacco = templates.sacco_context(templates.branding())
    return [(f"sacco.{f}", sacco[f]) for f in sacco] + [
        v for v in found if not v[0].startswith("sacco.")
    ]


def _sms_shape(text: str) -> dict | None:
    """The SMS's encoding and parts, and which characters force UCS-2 (they halve the room)."""
    if not text:
        return None
    sms = shape(text)
    wide = sorted({ch for ch in text if shape(ch).encoding == "UCS-2"})
    return {"shape": sms, "wide": wide}


def _preview_context(key: str, draft: dict | None) -> dict:
    result = templates.preview(key, draft)
    message = result.message
    return {
        "preview": result,
        "message": message,
        "sms": _sms_shape(message.sms) if message else None,
        "fields": templates.FIELDS,
    }


def _editor_context(source: templates.Source, form: TemplateForm, draft: dict | None) -> dict:
    """What the editor shows: the stored template's facts, the form, and the preview of `draft`
    (or of the stored text when None)."""
    return {
        "source": source,
        "form": form,
        "status": status_of(source),
        "channels": channels_of(source),
        "audience": templates.audience(source.key),
        "has_default": templates.default_source(source.key) is not None,
        "variables": _variables(source.key),
        "editable": can("manage_settings"),
        **_preview_context(source.key, draft),
    }


@bp.get("/templates", endpoint="templates")
@requires("read")
def template_list():
    """Every message template: key, name, audience, channels, and whether staff changed it."""
    rows = [
        {
            "source": source,
            "status": status_of(source),
            "channels": channels_of(source),
            "audience": templates.audience(source.key),
        }
        for source in templates.all_templates()
    ]
    return render_view(LIST_PAGE, LIST, rows=rows)


@bp.get("/templates/edit")
@requires("read")
def template_edit():
    """One template as it is in force, with its preview on sample data (read-only unless the
    person may change settings)."""
    source = templates.load(_key(request.args))
    form = TemplateForm(formdata=None, data={"name": source.name, **source.fields()})
    return render_view(PAGE, EDITOR, **_editor_context(source, form, None))


@bp.post("/templates/preview")
@requires("manage_settings")
def template_preview():
    """The draft in the form rendered with sample values, nothing saved; 422 with the reasons
    (shown next to each field) when a part cannot be rendered."""
    source = templates.load(_key(request.form))
    form = TemplateForm()
    if is_htmx():
        context = _preview_context(source.key, form.values())
        status = 422 if context["preview"].errors else 200
        return render_partial(PREVIEW, status, source=source, oob_errors=True, **context)
    context = _editor_context(source, form, form.values())
    form.show_errors(context["preview"].errors)
    return render_view(PAGE, EDITOR, 422 if context["preview"].errors else 200, **context)


@bp.post("/templates/save")
@requires("manage_settings")
def template_save():
    """Store the template after every part renders with sample values (audited); 422 with the
    reasons next to the fields, nothing saved, when one does not."""
    source = templates.load(_key(request.form))
    form = TemplateForm()
    try:
        templates.save_template(source.key, form.values(), current_actor())
    except ValidationFailed as exc:
        form.show_errors(exc.errors)
        context = _editor_context(source, form, form.values())
        return render_view(PAGE, EDITOR, 422, **context)
    flash(f"Template “{source.key}” saved: messages use it from now on.", "success")
    return _after_change(source.key)


@bp.post("/templates/reset")
@requires("manage_settings")
def template_reset():
    """Put the built-in text back (audited): what the template said before any edit."""
    key = _key(request.form)
    templates.reset_template(key, current_actor())
    flash(f"Template “{key}” is back to its built-in text.", "success")
    return _after_change(key)


def _after_change(key: str):
    """The editor as it is now stored: swapped in for htmx, a redirect otherwise."""
    if not is_htmx():
        return hx_redirect(url_for("notify_admin.template_edit", key=key))
    source = templates.load(key)
    form = TemplateForm(formdata=None, data={"name": source.name, **source.fields()})
    return render_partial(EDITOR, 200, **_editor_context(source, form, None))
