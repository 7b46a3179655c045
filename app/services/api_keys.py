"""API keys: random, shown once, stored only as a SHA-256 hash, each with its permissions."""

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select

from app.extensions import db
from app.models import ApiKey, ApiPermission
from app.models.base import utcnow
from app.services import audit
from app.services.actor import Actor
from app.services.errors import ServiceError, ValidationFailed

KEY_PREFIX = "dsk_live_"
SECRET_BYTES = 32  # 43 URL-safe characters after the prefix
VISIBLE_CHARS = 6  # of the random part, shown in lists beside the prefix


class ApiAuthError(ServiceError):
    """The key is missing, unknown, revoked or expired (401)."""

    status_code = 401


def hash_key(plaintext: str) -> str:
    # A fast hash is right here: the key is 256 random bits, so there is nothing to brute-force.
    return hashlib.sha256(plaintext.encode()).hexdigest()


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(SECRET_BYTES)


def clean_permissions(permissions) -> list[str]:
    """The permissions as a sorted list; ValidationFailed naming any unknown one."""
    if isinstance(permissions, str):
        permissions = [p for p in permissions.replace(" ", "").split(",") if p]
    chosen = set(permissions or [])
    unknown = sorted(chosen - set(ApiPermission))
    if unknown:
        raise ValidationFailed(
            {
                "permissions": f"Unknown permission(s) {', '.join(unknown)}; choose from "
                f"{', '.join(ApiPermission)}."
            }
        )
    if not chosen:
        raise ValidationFailed({"permissions": "Choose at least one permission."})
    return sorted(chosen)


def create_key(
    name: str,
    permissions,
    actor: Actor,
    expires_in_days: int | None = None,
    rate_limit_per_minute: int | None = None,
    allowed_ips=None,
) -> tuple[ApiKey, str]:
    """A new key and its plaintext, which is never stored and cannot be shown again."""
    name = (name or "").strip()
    errors = {}
    if not name or len(name) > 100:
        errors["name"] = "Give the key a name of 1 to 100 characters (who uses it, for what)."
    try:
        permissions = clean_permissions(permissions)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    if expires_in_days is not None and not 1 <= int(expires_in_days) <= 3650:
        errors["expires_in_days"] = "Expiry must be between 1 and 3650 days."
    if errors:
        raise ValidationFailed(errors)
    plaintext = generate_key()
    key = ApiKey(
        name=name,
        prefix=plaintext[: len(KEY_PREFIX) + VISIBLE_CHARS],
        key_hash=hash_key(plaintext),
        permissions=permissions,
        rate_limit_per_minute=rate_limit_per_minute,
        allowed_ips=list(allowed_ips or []),
        expires_at=utcnow() + timedelta(days=int(expires_in_days)) if expires_in_days else None,
        created_by_id=actor.staff_id,
    )
    db.session.add(key)
    db.session.flush()
    audit.record(actor, "api_key.created", "api_key", key.id, name=name, permissions=permissions)
    db.session.commit()
    return key, plaintext


def find_by_plaintext(plaintext: str) -> ApiKey | None:
    return db.session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(plaintext)))


def usable(key: ApiKey, now=None) -> str | None:
    """Why the key cannot be used now (revoked, expired, past its rotation grace), or None."""
    now = now or utcnow()
    if key.revoked_at is not None:
        return "This API key has been revoked."
    if key.expires_at is not None and key.expires_at <= now:
        return "This API key has expired."
    if key.grace_until is not None and key.grace_until <= now:
        return "This API key was rotated and its grace period has ended; use the new key."
    return None


def authenticate(plaintext: str | None) -> ApiKey:
    """The usable key for this plaintext; ApiAuthError saying why not."""
    if not plaintext:
        raise ApiAuthError("Send your API key as 'Authorization: Bearer <key>'.")
    key = find_by_plaintext(plaintext)
    if key is None:
        raise ApiAuthError("This API key is not known.")
    reason = usable(key)
    if reason:
        raise ApiAuthError(reason)
    return key
