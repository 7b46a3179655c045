"""Notification settings (administrators only): the six providers' credentials with each one's
state, the failover order and sending rules, the SACCO's branding, which channels each message
uses, and the administrators' alerts."""

from flask import flash, request

from app.auth import current_actor, requires
from app.blueprints.notify_admin import bp
from app.blueprints.notify_admin.settings_form import (
    PROVIDER_SECTIONS,
    SECTIONS,
    NotifySettingsForm,
    field_name,
    form_data,
    is_secret,
)
from app.htmx import render_view
from app.services import settings as stored_settings
from app.services.errors import ValidationFailed
from app.services.notifications import admin_settings


def _blank_secrets(form: NotifySettingsForm) -> NotifySettingsForm:
    # Never send a secret back to the browser, not even the one just typed.
    for key in form.setting_keys():
        if is_secret(key):
            form[field_name(key)].data = ""
    return form


def _page_context(form: NotifySettingsForm | None = None) -> dict:
    """What the settings page shows: the form, what is in force (secrets masked), which fields
    environment variables set, and each provider's state."""
    values = admin_settings.values_in_force()
    form = form or NotifySettingsForm(formdata=None, data=form_data(values))
    return {
        "form": form,
        "sections": SECTIONS,
        "provider_sections": PROVIDER_SECTIONS,
        "providers": admin_settings.provider_states(),
        "values": values,
        "overridden": admin_settings.overridden(),
        "environment_variable": admin_settings.environment_variable,
        "masked": {
            key: stored_settings.mask(values.get(key)) for key in admin_settings.SECRET_KEYS
        },
        "is_secret": is_secret,
        "field_name": field_name,
    }


def _settings_view(form: NotifySettingsForm | None = None, status: int = 200, /):
    return render_view(
        "notify_admin/settings.html", "notify_admin/_settings_form.html", status,
        **_page_context(form),
    )  # fmt: skip


@bp.route("/settings", methods=["GET", "POST"])
@requires("manage_settings")
def settings():
    """The settings form; a valid one is stored (secrets encrypted, empty secrets kept) and the
    change audited; an invalid one comes back with 422 and each message by its field. Fields set
    by environment variables are shown read-only and never stored."""
    if request.method == "GET":
        return _settings_view()
    form = NotifySettingsForm()
    values = form.submitted_values(request.form, admin_settings.overridden())
    try:
        changed = admin_settings.save(values, current_actor())
    except ValidationFailed as exc:
        form.show_errors({field_name(k): v for k, v in exc.errors.items()})
        return _settings_view(_blank_secrets(form), 422)
    flash(
        f"Notification settings saved ({', '.join(sorted(changed))} changed)."
        if changed
        else "Notification settings saved; nothing changed.",
        "success",
    )
    return _settings_view()
