"""Stored settings: plain values as text, secrets as Fernet tokens; masked for display."""

from sqlalchemy import select

from app.extensions import db
from app.models import Setting
from app.services import audit
from app.services.actor import Actor
from app.services.crypto import decrypt, encrypt


def stored(prefix: str) -> dict[str, str]:
    """Every stored setting whose key starts with `prefix.`, secrets decrypted, keyed without the
    prefix."""
    rows = db.session.scalars(select(Setting).where(Setting.key.startswith(f"{prefix}.")))
    return {
        row.key.removeprefix(f"{prefix}."): decrypt(row.value) if row.secret else row.value
        for row in rows
    }


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
        if row is not None and (decrypt(row.value) if row.secret else row.value) == value:
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
    return changed


def mask(value: str | None) -> str:
    """What a page may show of a secret: its last four characters at most."""
    if not value:
        return ""
    if len(value) <= 8:
        return "•" * 8
    return "•" * 8 + value[-4:]
