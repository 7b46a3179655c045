"""API-key authentication and permission checks for the accounting API."""

from functools import wraps

from flask import g, request

from app.blueprints.api.errors import problem
from app.models import ActorType
from app.services import api_keys
from app.services.actor import Actor


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def require_permission(permission: str):
    """The view runs only for a usable key holding `permission`: 401 (with WWW-Authenticate)
    without one, 403 naming the permission otherwise. The key is `g.api_key`."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            try:
                key = api_keys.authenticate(bearer_token())
            except api_keys.ApiAuthError as exc:
                return problem(
                    401,
                    "Unauthorized",
                    exc.message,
                    type_="unauthorized",
                    headers={"WWW-Authenticate": 'Bearer realm="daystar-accounting"'},
                )
            g.api_key = key
            if permission not in key.permissions:
                return problem(
                    403,
                    "Forbidden",
                    f"This API key lacks the '{permission}' permission.",
                    type_="missing-permission",
                )
            return view(*args, **kwargs)

        wrapped.required_api_permission = permission
        return wrapped

    return decorator


def api_actor() -> Actor:
    """The key making this request, for the audit log."""
    key = g.api_key
    return Actor(ActorType.API_KEY, f"{key.name} ({key.prefix}…)", key.id, request.remote_addr)
