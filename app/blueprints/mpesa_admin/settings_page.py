"""M-Pesa settings (administrators only): the form, and the buttons that try the settings on
Daraja — test connection, register the paybill URLs, ask for the account balance."""

from dataclasses import asdict
from datetime import UTC, datetime, timedelta

from flask import flash, request

from app.auth import current_actor, requires
from app.blueprints.mpesa_admin import bp
from app.blueprints.mpesa_admin.refusals import refused
from app.blueprints.mpesa_admin.settings_form import (
    CERTIFICATE_MAX_BYTES,
    SECTIONS,
    SettingsForm,
    certificate_pem,
    is_secret,
)
from app.htmx import is_htmx, render_view
from app.integrations.daraja import DarajaError
from app.integrations.daraja_security import certificate_summary
from app.models.base import utcnow
from app.services import settings as stored_settings
from app.services.errors import ServiceError, ValidationFailed
from app.services.mpesa import balance, monitor, paybill
from app.services.mpesa import config as mpesa_config
from config import MPESA_ENVIRONMENT_VARIABLES

BALANCE_WAIT = timedelta(minutes=2)  # how long the balance panel waits for the callback


def _certificate(config) -> dict:
    """What the page shows of the certificate in force: its summary, or why it is unusable."""
    data, problem = monitor.certificate_text(config)
    if problem:
        return {"problem": problem}
    if not data:
        return {}
    try:
        return {"summary": certificate_summary(data)}
    except ValueError as exc:
        return {"problem": str(exc)}


def _blank_secrets(form: SettingsForm) -> SettingsForm:
    # Never send a secret back to the browser, not even the one just typed.
    for name in form.setting_names():
        if is_secret(name):
            form[name].data = ""
    return form


def _stored_form() -> SettingsForm:
    return _blank_secrets(SettingsForm(formdata=None, data=asdict(mpesa_config.current())))


def _page_context(form: SettingsForm | None = None) -> dict:
    """What the settings page shows: the form, what is in force now (secrets masked), which
    fields environment variables set, the certificate and the last known balance."""
    config = mpesa_config.current()
    form = form or _stored_form()
    return {
        "tab": "settings",
        "form": form,
        "sections": SECTIONS,
        "mpesa": config,
        "overridden": config.overridden(),
        "environment_variables": MPESA_ENVIRONMENT_VARIABLES,
        "masked": {
            name: stored_settings.mask(getattr(config, name))
            for name in form.setting_names()
            if is_secret(name)
        },
        "is_secret": is_secret,
        "certificate": _certificate(config),
        "balance": monitor.last_balance(),
    }


def _settings_view(form: SettingsForm | None = None, status: int = 200, /):
    return render_view(
        "mpesa_admin/settings.html", "mpesa_admin/_settings_form.html", status,
        **_page_context(form),
    )  # fmt: skip


@bp.route("/settings", methods=["GET", "POST"])
@requires("manage_settings")
def settings():
    """The settings form; a valid one is stored (secrets encrypted, empty secrets kept) and the
    change audited. Fields set by environment variables are shown read-only."""
    if request.method == "GET":
        return _settings_view()
    form = SettingsForm()
    overridden = mpesa_config.current().overridden()
    values = form.submitted_values(request.form, overridden)
    problems: dict[str, str] = {}
    upload = form.certificate_file.data
    if upload is not None and getattr(upload, "filename", ""):
        try:
            values["certificate"] = certificate_pem(upload.read(CERTIFICATE_MAX_BYTES + 1))
        except ValueError as exc:
            problems["certificate"] = str(exc)
    elif form.remove_certificate.data:
        values["certificate"] = ""
    try:
        if problems:  # report every other bad field at the same time
            try:
                mpesa_config.validate(values)
            except ValidationFailed as exc:
                problems = {**exc.errors, **problems}
            raise ValidationFailed(problems)
        changed = mpesa_config.save(values, current_actor())
    except ValidationFailed as exc:
        form.show_errors(exc.errors, aliases={"certificate": "certificate_file"})
        return _settings_view(_blank_secrets(form), 422)
    flash(
        f"M-Pesa settings saved ({', '.join(sorted(changed))} changed)."
        if changed
        else "M-Pesa settings saved; nothing changed.",
        "success",
    )
    return _settings_view()


def _tool_result(title: str, lines: list[str], **context):
    """A tool button's result beside the buttons (the whole settings page without htmx)."""
    page = {} if is_htmx() else _page_context()
    return render_view(
        "mpesa_admin/settings.html",
        "mpesa_admin/_tool_result.html",
        **{**page, "result_title": title, "result_lines": lines, **context},
    )


def _refused_by_settings(exc: Exception):
    """A tool refused: the service's words, or why the settings cannot make a credential."""
    if isinstance(exc, ServiceError):
        return refused(exc)
    # ValueError/OSError: the initiator credential is made from the password and certificate.
    return refused(ServiceError(f"The M-Pesa settings cannot be used: {exc}"))


@bp.post("/settings/test-connection")
@requires("manage_settings")
def test_connection():
    """Fetch an access token with the settings in force (the shared, cached one if it is still
    valid); the answer, or Daraja's refusal in its own words (4xx)."""
    config = mpesa_config.current()
    try:
        mpesa_config.client(config).access_token(force_refresh=False)
    except DarajaError as exc:
        return refused(ServiceError(f"No access token from M-Pesa: {exc}"))
    except (ValueError, OSError) as exc:
        return _refused_by_settings(exc)
    return _tool_result(
        "Connected",
        [
            f"M-Pesa issued an access token for {config.resolved_base_url} ({config.environment}).",
            "The token is shared by every process and renewed before it expires.",
        ],
    )


@bp.post("/settings/register-urls")
@requires("manage_settings")
def register_urls():
    """Register our paybill validation and confirmation URLs with Daraja (audited)."""
    try:
        answer = paybill.register_urls(current_actor())
    except (ServiceError, ValueError, OSError) as exc:
        return _refused_by_settings(exc)
    config = mpesa_config.current()
    words = answer.get("ResponseDescription") if isinstance(answer, dict) else None
    shown = mpesa_config.callback_url("c2b_confirmation").replace(config.callback_secret, "…")
    return _tool_result(
        "Paybill URLs registered",
        [
            f"M-Pesa answered: {words or 'accepted'}.",
            f"Confirmations go to {shown} (C2B API {config.c2b_register_version}).",
        ],
    )


@bp.post("/settings/balance")
@requires("manage_settings")
def request_balance():
    """Ask Daraja for the account balance (audited); the answer arrives by callback, so the
    balance panel is refreshed until it does."""
    asked_at = utcnow()
    try:
        conversation_id = balance.request(current_actor())
    except (ServiceError, ValueError, OSError) as exc:
        return _refused_by_settings(exc)
    return _tool_result(
        "Balance requested",
        [
            f"M-Pesa accepted the request (ConversationID {conversation_id}).",
            "The balance arrives by callback and shows below as soon as it does.",
        ],
        balance=monitor.last_balance(),
        balance_since=asked_at.isoformat(),
        balance_oob=is_htmx(),
    )


def _parse_since(raw: str | None) -> datetime | None:
    try:
        since = datetime.fromisoformat(raw) if raw else None
    except ValueError:
        return None
    return since.replace(tzinfo=UTC) if since and since.tzinfo is None else since


@bp.get("/balance")
@requires("read")
def balance_panel():
    """The last known account balance. With `since` (when a balance was asked for) the panel is
    being polled: 286 stops the polling once a newer balance has arrived, or after two minutes."""
    figures = monitor.last_balance()
    since = _parse_since(request.args.get("since"))
    received = figures["received_at"] if figures else None
    arrived = since is not None and received is not None and received >= since
    gave_up = since is not None and not arrived and utcnow() - since > BALANCE_WAIT
    waiting = since is not None and not arrived and not gave_up
    response = render_view(
        "mpesa_admin/balance.html",
        "mpesa_admin/_balance.html",
        tab="overview",
        balance=figures,
        balance_since=since.isoformat() if waiting else None,
        balance_late=gave_up,
    )
    if since is not None and not waiting and is_htmx():
        response.status_code = 286
    return response
