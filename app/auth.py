"""Who may do what in the portal: sign-in, roles, and answers in the caller's own language."""

from functools import wraps
from urllib.parse import urlsplit

from flask import abort, jsonify, make_response, redirect, request, url_for
from flask_login import current_user

from app.extensions import db, login_manager
from app.htmx import is_htmx
from app.models import Role, StaffUser
from app.services.actor import Actor

# What each role may do. `admin` may do everything.
PERMISSIONS = {
    "read": {Role.ADMIN, Role.LOAN_OFFICER, Role.ACCOUNTANT, Role.VIEWER},
    "manage_members": {Role.ADMIN, Role.LOAN_OFFICER},
    "manage_loans": {Role.ADMIN, Role.LOAN_OFFICER},
    "record_payments": {Role.ADMIN, Role.LOAN_OFFICER},
    "manual_disbursement": {Role.ADMIN},
    "manage_api_keys": {Role.ADMIN, Role.ACCOUNTANT},
    "reconciliation": {Role.ADMIN, Role.ACCOUNTANT},
    "manage_settings": {Role.ADMIN},
}


def can(permission: str, user=None) -> bool:
    user = user or current_user
    return bool(user and user.is_authenticated and user.role in PERMISSIONS[permission])


def requires(permission: str):
    """Allow the view only to signed-in staff whose role has `permission`; 403 page otherwise."""
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")

    def decorator(view):
        view.required_permission = permission

        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not can(permission):
                abort(403)
            return view(*args, **kwargs)

        wrapped.required_permission = permission
        return wrapped

    return decorator


def current_actor() -> Actor:
    return Actor.staff(current_user, request.remote_addr)


def _local_path(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def safe_next(target: str | None) -> str | None:
    """`target` if it is a path on this site (no open redirect), else None."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target


@login_manager.user_loader
def load_user(user_id: str):
    return db.session.get(StaffUser, int(user_id)) if user_id.isdigit() else None


@login_manager.unauthorized_handler
def unauthorized():
    """Signed out: HX-Redirect for htmx, JSON 401 for machines, a redirect for browsers."""
    if is_htmx():
        # Back to the page the person was on, not to the partial that was being fetched.
        login_url = url_for("auth.login", next=_local_path(request.headers.get("HX-Current-URL")))
        response = make_response("", 401)
        response.headers["HX-Redirect"] = login_url
        return response
    login_url = url_for("auth.login", next=request.full_path if request.method == "GET" else None)
    if request.accept_mimetypes.best == "application/json":
        return make_response(jsonify(error="authentication required"), 401)
    return redirect(login_url)
