"""API keys: random, shown once, stored only as a SHA-256 hash, each with its permissions, an
optional expiry, rate limit and IP allow-list; revoked at once or rotated with a grace period."""

import hashlib
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from app.extensions import db
from app.models import ApiKey, ApiPermission, ApiRequestLog
from app.models.base import utcnow
from app.services import audit
from app.services.actor import Actor
from app.services.errors import IllegalTransition, ServiceError, ValidationFailed
from app.services.lookup import get_or_not_found

KEY_PREFIX = "dsk_live_"
SECRET_BYTES = 32  # 43 URL-safe characters after the prefix
VISIBLE_CHARS = 6  # of the random part, shown in lists beside the prefix
MAX_RATE_LIMIT = 100_000  # requests a minute
MAX_GRACE_HOURS = 30 * 24
MAX_ALLOWED_NETWORKS = 50
UNCHANGED = object()  # update_key(): leave this setting as it is


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
    expires_in_days = _collect(errors, "expires_in_days", clean_expiry_days, expires_in_days)
    rate_limit_per_minute = _collect(
        errors, "rate_limit_per_minute", clean_rate_limit, rate_limit_per_minute
    )
    allowed_ips = _collect(errors, "allowed_ips", clean_allowed_ips, allowed_ips)
    if errors:
        raise ValidationFailed(errors)
    key, plaintext = _new_key(
        name,
        permissions,
        rate_limit_per_minute,
        allowed_ips,
        utcnow() + timedelta(days=expires_in_days) if expires_in_days else None,
        actor,
    )
    audit.record(
        actor,
        "api_key.created",
        "api_key",
        key.id,
        name=name,
        prefix=key.prefix,
        permissions=permissions,
        expires_at=key.expires_at.isoformat() if key.expires_at else None,
        rate_limit_per_minute=rate_limit_per_minute,
        allowed_ips=allowed_ips,
    )
    db.session.commit()
    return key, plaintext


def _new_key(name, permissions, rate_limit_per_minute, allowed_ips, expires_at, actor):
    plaintext = generate_key()
    key = ApiKey(
        name=name,
        prefix=plaintext[: len(KEY_PREFIX) + VISIBLE_CHARS],
        key_hash=hash_key(plaintext),
        permissions=permissions,
        rate_limit_per_minute=rate_limit_per_minute,
        allowed_ips=allowed_ips,
        expires_at=expires_at,
        created_by_id=actor.staff_id,
    )
    db.session.add(key)
    db.session.flush()
    return key, plaintext


def _collect(errors: dict, field: str, clean, value):
    """clean(value), or None with the ValidationFailed message put under `field` in `errors`."""
    try:
        return clean(value)
    except ValidationFailed as exc:
        errors[field] = exc.errors["value"]
        return None


def _as_int(value, low: int, high: int, message: str) -> int:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise ValidationFailed({"value": message}) from None
    if not low <= number <= high:
        raise ValidationFailed({"value": message})
    return number


def clean_expiry_days(value) -> int | None:
    if value is None or value == "":
        return None
    return _as_int(value, 1, 3650, "Expiry must be a whole number of days from 1 to 3650.")


def clean_grace_hours(value) -> int:
    return _as_int(
        value,
        0,
        MAX_GRACE_HOURS,
        f"The grace period must be a whole number of hours, 0 to {MAX_GRACE_HOURS}.",
    )


def clean_rate_limit(value) -> int | None:
    """None (the configured default) or a whole number of requests a minute."""
    if value is None or value == "":
        return None
    return _as_int(
        value,
        1,
        MAX_RATE_LIMIT,
        f"The rate limit must be a whole number of requests a minute, 1 to {MAX_RATE_LIMIT:,}.",
    )


def clean_allowed_ips(value) -> list[str]:
    """The allow-list as normalised CIDRs ("10.0.0.0/8", "203.0.113.7/32"); empty: any address.
    Accepts a list or a comma/space separated string."""
    if value is None:
        return []
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    networks, bad = [], []
    for item in value:
        text = str(item).strip()
        if not text:
            continue
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            bad.append(text)
            continue
        if str(network) not in networks:
            networks.append(str(network))
    if bad:
        raise ValidationFailed(
            {
                "value": f"Not an IP address or CIDR range: {', '.join(bad[:5])} "
                "(write for example 203.0.113.7 or 10.0.0.0/8)."
            }
        )
    if len(networks) > MAX_ALLOWED_NETWORKS:
        raise ValidationFailed(
            {"value": f"At most {MAX_ALLOWED_NETWORKS} addresses or ranges per key."}
        )
    return networks


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


def ip_allowed(key: ApiKey, ip: str | None) -> bool:
    """True when the key has no allow-list or `ip` lies in one of its ranges."""
    if not key.allowed_ips:
        return True
    try:
        address = ipaddress.ip_address(ip or "")
    except ValueError:
        return False
    candidates = [address]
    if address.version == 6 and address.ipv4_mapped:  # ::ffff:203.0.113.7 from dual-stack servers
        candidates.append(address.ipv4_mapped)
    for cidr in key.allowed_ips:
        network = ipaddress.ip_network(cidr, strict=False)
        if any(candidate in network for candidate in candidates):
            return True
    return False


def get_key(key_id: int) -> ApiKey:
    return get_or_not_found(ApiKey, key_id, f"There is no API key {key_id}.")


def revoke_key(key_id: int, actor: Actor, reason: str | None = None) -> ApiKey:
    """The key stops working at once (401 from its next request); audited with the reason."""
    key = get_key(key_id)
    if key.revoked_at is not None:
        raise IllegalTransition(f"API key {key.prefix}… was already revoked.")
    key.revoked_at = utcnow()
    reason = (reason or "").strip()[:300] or None
    audit.record(actor, "api_key.revoked", "api_key", key.id, prefix=key.prefix, reason=reason)
    db.session.commit()
    return key


def rotate_key(key_id: int, actor: Actor, grace_hours=24) -> tuple[ApiKey, str]:
    """A new key with the same name, permissions, limit and allow-list (its plaintext shown once);
    the old key keeps working until `grace_hours` from now, then answers 401."""
    errors: dict[str, str] = {}
    grace_hours = _collect(errors, "grace_hours", clean_grace_hours, grace_hours)
    if errors:
        raise ValidationFailed(errors)
    old = get_key(key_id)
    now = utcnow()
    if old.revoked_at is not None:
        raise IllegalTransition(f"API key {old.prefix}… is revoked; create a new key instead.")
    if old.replaced_by_id is not None:
        raise IllegalTransition(
            f"API key {old.prefix}… was already rotated; rotate its replacement "
            f"(key {old.replaced_by_id}) instead."
        )
    if old.expires_at is not None and old.expires_at <= now:
        raise IllegalTransition(f"API key {old.prefix}… has expired; create a new key instead.")
    # The new key lives as long as the old one was meant to, counted from now.
    lifetime = old.expires_at - old.created_at if old.expires_at else None
    new, plaintext = _new_key(
        old.name,
        list(old.permissions),
        old.rate_limit_per_minute,
        list(old.allowed_ips or []),
        now + lifetime if lifetime else None,
        actor,
    )
    old.replaced_by_id = new.id
    old.grace_until = now + timedelta(hours=grace_hours)
    audit.record(
        actor,
        "api_key.rotated",
        "api_key",
        old.id,
        prefix=old.prefix,
        replaced_by_id=new.id,
        new_prefix=new.prefix,
        grace_until=old.grace_until.isoformat(),
    )
    db.session.commit()
    return new, plaintext


def update_key(
    key_id: int, actor: Actor, rate_limit_per_minute=UNCHANGED, allowed_ips=UNCHANGED
) -> ApiKey:
    """Change a key's rate limit (None: the default) and/or IP allow-list (empty: any address)."""
    key = get_key(key_id)
    errors: dict[str, str] = {}
    changes = {}
    if rate_limit_per_minute is not UNCHANGED:
        value = _collect(errors, "rate_limit_per_minute", clean_rate_limit, rate_limit_per_minute)
        changes["rate_limit_per_minute"] = value
    if allowed_ips is not UNCHANGED:
        changes["allowed_ips"] = _collect(errors, "allowed_ips", clean_allowed_ips, allowed_ips)
    if errors:
        raise ValidationFailed(errors)
    if key.revoked_at is not None:
        raise IllegalTransition(f"API key {key.prefix}… is revoked and cannot be changed.")
    changes = {k: v for k, v in changes.items() if getattr(key, k) != v}
    if not changes:
        return key
    before = {k: getattr(key, k) for k in changes}
    for name, value in changes.items():
        setattr(key, name, value)
    audit.record(
        actor, "api_key.updated", "api_key", key.id, prefix=key.prefix, before=before, after=changes
    )
    db.session.commit()
    return key


def key_status(key: ApiKey, now: datetime | None = None) -> str:
    """active, rotated (still in its grace period), revoked, expired or replaced."""
    now = now or utcnow()
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= now:
        return "expired"
    if key.grace_until is not None:
        return "rotated" if key.grace_until > now else "replaced"
    return "active"


@dataclass(frozen=True)
class KeyRow:
    key: ApiKey
    status: str
    requests_24h: int


def list_keys() -> list[KeyRow]:
    """Every key, newest first, with its status and its requests in the last 24 hours: one
    query, whatever the number of keys."""
    now = utcnow()
    recent = (
        select(ApiRequestLog.api_key_id.label("key_id"), func.count().label("requests"))
        .where(
            ApiRequestLog.created_at >= now - timedelta(hours=24),
            ApiRequestLog.api_key_id.is_not(None),
        )
        .group_by(ApiRequestLog.api_key_id)
        .subquery()
    )
    rows = db.session.execute(
        select(ApiKey, func.coalesce(recent.c.requests, 0))
        .outerjoin(recent, recent.c.key_id == ApiKey.id)
        .order_by(ApiKey.id.desc())
    )
    return [KeyRow(key, key_status(key, now), requests) for key, requests in rows]
