"""`flask api-keys ...`: create prints the key once (alone on stdout), list never shows a key,
revoke and rotate work and are audited."""

import hashlib
from datetime import timedelta

from sqlalchemy import select

from app.extensions import db
from app.models import ApiKey, AuditLog
from app.models.base import utcnow


def invoke(app, *args):
    return app.test_cli_runner().invoke(args=["api-keys", *args])


def test_create_prints_the_key_once_and_only_on_stdout(app):
    result = invoke(
        app,
        "create",
        "Sage nightly",
        "--permissions",
        "read_loans,read_members",
        "--expires-in-days",
        "30",
        "--rate-limit",
        "120",
        "--allowed-ip",
        "203.0.113.0/24",
        "--allowed-ip",
        "198.51.100.7",
    )
    assert result.exit_code == 0, result.output
    plaintext = result.stdout.strip()
    assert plaintext.startswith("dsk_live_") and "\n" not in plaintext
    assert plaintext not in result.stderr and "cannot be shown again" in result.stderr
    key = db.session.scalar(select(ApiKey))
    assert key.key_hash == hashlib.sha256(plaintext.encode()).hexdigest()
    assert key.name == "Sage nightly" and key.permissions == ["read_loans", "read_members"]
    assert key.rate_limit_per_minute == 120
    assert key.allowed_ips == ["203.0.113.0/24", "198.51.100.7/32"]
    assert timedelta(days=29) < key.expires_at - utcnow() <= timedelta(days=30)
    entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "api_key.created"))
    assert entry.actor_label == "cli"


def test_create_refuses_bad_input_clearly(app):
    unknown = invoke(app, "create", "X", "--permissions", "read_loans,write_loans")
    assert unknown.exit_code == 1 and "write_loans" in unknown.output
    bad_ip = invoke(app, "create", "X", "--permissions", "read_loans", "--allowed-ip", "10.0.0.300")
    assert bad_ip.exit_code == 1 and "10.0.0.300" in bad_ip.output
    missing = invoke(app, "create", "X")
    assert missing.exit_code == 2 and "--permissions" in missing.output
    assert db.session.scalar(select(ApiKey)) is None


def test_list_revoke_and_rotate(app):
    first = invoke(app, "create", "Xero", "--permissions", "read_loans").stdout.strip()
    second = invoke(app, "create", "Odoo", "--permissions", "read_members").stdout.strip()
    xero, odoo = db.session.scalars(select(ApiKey).order_by(ApiKey.id)).all()

    listing = invoke(app, "list")
    assert listing.exit_code == 0, listing.output
    header, *lines = listing.stdout.splitlines()
    assert header.split() == [
        "ID",
        "NAME",
        "PREFIX",
        "PERMISSIONS",
        "STATUS",
        "EXPIRES",
        "LAST",
        "USED",
        "24H",
    ]
    assert lines[0].split()[:5] == [
        str(odoo.id),
        "Odoo",
        odoo.prefix + "…",
        "read_members",
        "active",
    ]
    assert lines[1].split()[:5] == [str(xero.id), "Xero", xero.prefix + "…", "read_loans", "active"]
    assert first not in listing.output and second not in listing.output

    revoked = invoke(app, "revoke", str(xero.id), "--reason", "contract ended")
    assert revoked.exit_code == 0 and f"Revoked API key {xero.id}" in revoked.output
    again = invoke(app, "revoke", str(xero.id))
    assert again.exit_code == 1 and "already revoked" in again.output

    rotated = invoke(app, "rotate", str(odoo.id), "--grace-hours", "2")
    assert rotated.exit_code == 0, rotated.output
    new_plaintext = rotated.stdout.strip()
    assert new_plaintext.startswith("dsk_live_") and new_plaintext != second
    assert "keeps working until" in rotated.stderr
    db.session.expire_all()
    old = db.session.get(ApiKey, odoo.id)
    new = db.session.get(ApiKey, old.replaced_by_id)
    assert new.key_hash == hashlib.sha256(new_plaintext.encode()).hexdigest()
    assert timedelta(hours=1, minutes=59) < old.grace_until - utcnow() <= timedelta(hours=2)

    statuses = {line.split()[0]: line for line in invoke(app, "list").stdout.splitlines()[1:]}
    assert "revoked" in statuses[str(xero.id)]
    assert "rotated, works until" in statuses[str(odoo.id)]
    assert "active" in statuses[str(new.id)]

    missing = invoke(app, "rotate", "999")
    assert missing.exit_code == 1 and "no API key 999" in missing.output
    actions = set(db.session.scalars(select(AuditLog.action)))
    assert {"api_key.created", "api_key.revoked", "api_key.rotated"} <= actions


def test_list_with_no_keys(app):
    result = invoke(app, "list")
    assert result.exit_code == 0 and "No API keys." in result.output
