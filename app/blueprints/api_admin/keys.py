"""API keys: the list, creation (the key shown once), rotation with a grace period, revocation."""

from flask import flash, request

from app.auth import current_actor, requires
from app.blueprints.api_admin import bp
from app.blueprints.api_admin.common import Revealed, id_from, show_once
from app.blueprints.api_admin.forms import KeyForm, RotateForm
from app.htmx import render_view
from app.services import api_keys
from app.services.errors import ValidationFailed

KEYS = "#api-keys"


def _keys_view(partial: str = "api_admin/_keys.html", status: int = 200, /, **context):
    """The keys page (or `partial` of it) with every key's status and last day's requests."""
    context.setdefault("rows", api_keys.list_keys())
    return render_view("api_admin/index.html", partial, status, tab="keys", **context)


@bp.get("/")
@requires("manage_api_keys")
def index():
    """Every API key with its permissions, last use, expiry, status and requests in 24 hours."""
    return _keys_view()


@bp.route("/keys/new", methods=["GET", "POST"])
@requires("manage_api_keys")
def new_key():
    """The create-key form; a valid one creates the key and shows it this once, never again."""
    form = KeyForm()
    if request.method == "GET":
        return _keys_view("api_admin/_key_form.html", key_form=form)
    try:
        key, plaintext = api_keys.create_key(
            form.name.data,
            form.permissions.data,
            current_actor(),
            expires_in_days=form.expires_in_days.data,
            rate_limit_per_minute=form.rate_limit_per_minute.data,
            allowed_ips=form.allowed_ips.data,
        )
    except ValidationFailed as exc:
        form.show_errors(exc.errors)
        return _keys_view("api_admin/_key_form.html", 422, key_form=form)
    flash(f"API key “{key.name}” created.", "success")
    revealed = Revealed(
        title=f"The new key “{key.name}”",
        secret=plaintext,
        label=f"API key {key.prefix}…",
        note="Send it as 'Authorization: Bearer <key>'.",
    )
    return show_once(_keys_view(revealed=revealed), KEYS)


@bp.route("/keys/rotate", methods=["GET", "POST"])
@requires("manage_api_keys")
def rotate_key():
    """Rotate a key: a new key with the same settings, shown once; the old one keeps working for
    the grace period, then answers 401."""
    form = RotateForm()
    if request.method == "GET":
        key = api_keys.get_key(id_from(request.args, "key_id", "API key"))
        form.key_id.data = str(key.id)
        return _keys_view("api_admin/_rotate_form.html", rotate_form=form, rotating=key)
    old = api_keys.get_key(id_from(request.form, "key_id", "API key"))
    try:
        new, plaintext = api_keys.rotate_key(old.id, current_actor(), form.grace_hours.data)
    except ValidationFailed as exc:
        form.show_errors(exc.errors)
        return _keys_view("api_admin/_rotate_form.html", 422, rotate_form=form, rotating=old)
    flash(f"API key “{old.name}” rotated: {old.prefix}… is replaced by {new.prefix}….", "success")
    revealed = Revealed(
        title=f"The new key for “{new.name}”",
        secret=plaintext,
        label=f"API key {new.prefix}…",
        note="Put it in the integration's settings before the old key stops working.",
        old_prefix=old.prefix,
        grace_until=old.grace_until,
    )
    return show_once(_keys_view(revealed=revealed), KEYS)


@bp.post("/keys/revoke")
@requires("manage_api_keys")
def revoke_key():
    """Revoke a key: its next request gets 401 (409 if it was revoked already)."""
    key_id = id_from(request.form, "key_id", "API key")
    key = api_keys.revoke_key(key_id, current_actor(), request.form.get("reason"))
    flash(f"API key “{key.name}” ({key.prefix}…) revoked.", "success")
    return _keys_view()
