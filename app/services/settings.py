"""Stored settings: plain values as text, secrets as Fernet tokens; masked for display."""

import logging
import time

from sqlalchemy import select

from app.extensions import db
from app.models import Setting
from app.services import audit
from app.services.actor import Actor
from app.services.crypto import decrypt, encrypt

log = logging.getLogger(__name__)

# prefix -> (time.monotonic() when read, the values): stored(prefix, max_age)'s copies.
_recent: dict[str, tuple[float, dict[str, str]]] = {}


def stored(prefix: str, max_age: float = 0) -> dict[str, str]:
    """Every stored setting whose key starts with `prefix.`, secrets decrypted, keyed without the
    prefix. With `max_age`, this process's copy is given while it is younger than that many
    seconds: the callback routes answer Safaricom and the providers at once, and reading and
    decrypting every setting on each request was a fifth of their time. A value saved by another
    process counts here within max_age; one saved by this process, at once (save() forgets). A
    secret that cannot be decrypted is left out (logged), as if it were not set."""
    if max_age > 0 and (copy := _recent.get(prefix)) and time.monotonic() - copy[0] < max_age:
        return dict(copy[1])
    rows = db.session.scalars(select(Setting).where(Setting.key.startswith(f"{prefix}.")))
    values = {}
    for row in rows:
        name = row.key.removeprefix(f"{prefix}.")
        try:
            values[name] = decrypt(row.value) if row.secret else row.value
        except ValueError:
            # Stored under an earlier DAYSTAR_ENCRYPTION_KEY: not set until staff save it again
            # (`flask doctor` lists them), rather than every page and callback reading it failing.
            log.warning("setting %s cannot be decrypted: treated as not set", row.key)
    if max_age > 0:
        _recent[prefix] = (time.monotonic(), dict(values))
    return values


def forget_copies() -> None:
    """Drop every copy stored(prefix, max_age) kept."""
    _recent.clear()


def save(prefix: str, values: dict[str, str | None], secret_keys: set[str], actor: Actor) -> list:
    """Store `values` under `prefix` (None or "" deletes a setting), encrypting the secret ones,
    and audit which keys changed (never their values). Commits; returns the changed keys."""
    current = {row.key: row for row in db.session.scalars(select(Setting).where(
        Setting.key.in_([f"{prefix}.{k}" for k in values])))}  # fmt: skip
    changed = []
    for name, value in values.items():
        key = f"{prefix}.{name}"
        row = current.get(key)
        if value is None or value == "":
            if row is not None:
                db.session.delete(row)
                changed.append(name)
            continue
        secret = name in secret_keys
        if row is not None and _holds(row, value):
            continue
        if row is None:
            row = Setting(key=key)
            db.session.add(row)
        row.value, row.secret, row.updated_by_id = (
            encrypt(value) if secret else value,
            secret,
            actor.staff_id,
        )
        changed.append(name)
    if changed:
        audit.record(actor, f"{prefix}.settings_changed", "settings", None, keys=sorted(changed))
    db.session.commit()
    _recent.pop(prefix, None)
    return changed


def _holds(row: Setting, value: str) -> bool:
    """Whether the stored row already holds `value`. A secret that cannot be decrypted (stored
    under an earlier DAYSTAR_ENCRYPTION_KEY) holds nothing usable: saving replaces it."""
    if not row.secret:
        return row.value == value
    try:
        return decrypt(row.value) == value
    except ValueError:
        return False


def mask(value: str | None) -> str:
    """What a page may show of a secret: its last four characters at most."""
    if not value:
        return ""
    if len(value) <= 8:
        return "•" * 8
    return "•" * 8 + value[-4:]
