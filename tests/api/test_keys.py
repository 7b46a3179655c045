"""API keys: format and hashing, the 401 cases, permissions, IP allow-list, expiry, revocation,
rotation with its grace period, last use, HTTPS-only and the proxy headers."""

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import event, select

from app import create_app
from app.extensions import db as _db
from app.extensions import limiter
from app.models import ApiKey, ApiRequestLog, AuditLog
from app.models.base import utcnow
from app.services import api_keys, api_log
from app.services.errors import IllegalTransition, NotFound, ValidationFailed
from config import Config, ProductionConfig, TestingConfig
from tests.conftest import IsolatedClient
from tests.factories import SYSTEM

LOANS = "/api/accounting/v1/loans"
COMPAT_LOANS = "/wp-json/daystar-accounting/v1/loans"


def bearer(plaintext: str) -> dict:
    return {"Authorization": f"Bearer {plaintext}"}


def fresh(key_id: int) -> ApiKey:
    """The key as stored, once the buffered request log (which records its last use) is written."""
    api_log.flush()
    _db.session.expire_all()
    return _db.session.get(ApiKey, key_id)


def assert_401(response, detail_part: str, token_sent: bool = True):
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert ('error="invalid_token"' in challenge) is token_sent
    body = response.json
    assert body["status"] == 401 and body["title"] == "Unauthorized"
    assert detail_part in body["detail"]


# --- keys -----------------------------------------------------------------------------------------


def test_a_key_is_random_long_shown_once_and_stored_as_its_hash(make_key, db):
    key, plaintext = make_key(["read_loans"], name="Xero sync")
    assert plaintext.startswith("dsk_live_")
    assert len(plaintext) - len("dsk_live_") >= 32
    assert key.key_hash == hashlib.sha256(plaintext.encode()).hexdigest()
    assert key.prefix == plaintext[:15] and plaintext not in key.prefix + key.key_hash
    _, other = make_key(["read_loans"])
    assert other != plaintext
    entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "api_key.created"))
    assert entry.target_id == key.id and plaintext not in str(entry.details)


def test_create_validates_every_field_at_once(db):
    with pytest.raises(ValidationFailed) as err:
        api_keys.create_key(
            "",
            "read_loans,read_everything",
            SYSTEM,
            expires_in_days=0,
            rate_limit_per_minute="lots",
            allowed_ips=["10.0.0.0/8", "not-an-ip"],
        )
    errors = err.value.errors
    assert set(errors) == {
        "name",
        "permissions",
        "expires_in_days",
        "rate_limit_per_minute",
        "allowed_ips",
    }
    assert "read_everything" in errors["permissions"]
    assert "not-an-ip" in errors["allowed_ips"]
    assert db.session.scalar(select(ApiKey)) is None


def test_allowed_ips_are_normalised(make_key):
    key, _ = make_key(allowed_ips="203.0.113.7, 10.1.2.3/8 2001:db8::/32 203.0.113.7")
    assert key.allowed_ips == ["203.0.113.7/32", "10.0.0.0/8", "2001:db8::/32"]


# --- 401 and 403 ----------------------------------------------------------------------------------


def test_missing_key_is_401_with_bearer_challenge(client):
    assert_401(client.get(LOANS), "Authorization: Bearer", token_sent=False)
    assert_401(client.get(COMPAT_LOANS), "Authorization: Bearer", token_sent=False)
    basic = client.get(LOANS, headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert_401(basic, "Authorization: Bearer", token_sent=False)


def test_unknown_key_is_401(client):
    assert_401(client.get(LOANS, headers=bearer("dsk_live_" + "x" * 43)), "not known")


def test_revoked_key_is_401_and_the_revocation_is_audited(client, make_key, db):
    key, plaintext = make_key(["read_loans"])
    assert client.get(LOANS, headers=bearer(plaintext)).status_code == 200
    api_keys.revoke_key(key.id, SYSTEM, reason="laptop stolen")
    assert_401(client.get(LOANS, headers=bearer(plaintext)), "revoked")
    entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "api_key.revoked"))
    assert entry.target_id == key.id and entry.details["reason"] == "laptop stolen"
    assert entry.actor_label == SYSTEM.label
    with pytest.raises(IllegalTransition, match="already revoked"):
        api_keys.revoke_key(key.id, SYSTEM)
    with pytest.raises(NotFound):
        api_keys.revoke_key(key.id + 100, SYSTEM)


def test_expired_key_is_401(client, make_key, db):
    key, plaintext = make_key(["read_loans"], expires_in_days=30)
    assert key.expires_at - utcnow() > timedelta(days=29)
    assert client.get(LOANS, headers=bearer(plaintext)).status_code == 200
    db.session.execute(
        ApiKey.__table__.update()
        .where(ApiKey.id == key.id)
        .values(expires_at=utcnow() - timedelta(seconds=1))
    )
    db.session.commit()
    assert_401(client.get(LOANS, headers=bearer(plaintext)), "expired")


def test_key_without_the_permission_is_403_naming_it(client, make_key):
    _, plaintext = make_key(["read_members", "read_repayments"])
    for url in (LOANS, COMPAT_LOANS):
        response = client.get(url, headers=bearer(plaintext))
        assert response.status_code == 403
        assert response.mimetype == "application/problem+json"
        assert "'read_loans'" in response.json["detail"]
        assert response.json["type"].endswith("missing-permission")


# --- IP allow-list --------------------------------------------------------------------------------


def test_ip_allow_list(client, make_key):
    _, plaintext = make_key(["read_loans"], allowed_ips=["203.0.113.0/24", "2001:db8::/32"])
    inside = client.get(
        LOANS, headers=bearer(plaintext), environ_base={"REMOTE_ADDR": "203.0.113.9"}
    )
    assert inside.status_code == 200
    v6 = client.get(LOANS, headers=bearer(plaintext), environ_base={"REMOTE_ADDR": "2001:db8::5"})
    assert v6.status_code == 200
    mapped = client.get(
        LOANS, headers=bearer(plaintext), environ_base={"REMOTE_ADDR": "::ffff:203.0.113.10"}
    )
    assert mapped.status_code == 200
    outside = client.get(
        LOANS, headers=bearer(plaintext), environ_base={"REMOTE_ADDR": "198.51.100.7"}
    )
    assert outside.status_code == 403
    assert outside.mimetype == "application/problem+json"
    assert "198.51.100.7 is not allowed" in outside.json["detail"]
    assert outside.json["type"].endswith("ip-not-allowed")


def test_key_without_allow_list_works_from_anywhere(client, make_key):
    _, plaintext = make_key(["read_loans"])
    response = client.get(
        LOANS, headers=bearer(plaintext), environ_base={"REMOTE_ADDR": "198.51.100.7"}
    )
    assert response.status_code == 200


def test_update_key_changes_limit_and_allow_list_and_is_audited(client, make_key, db):
    key, plaintext = make_key(["read_loans"])
    api_keys.update_key(key.id, SYSTEM, rate_limit_per_minute=50, allowed_ips=["192.0.2.0/24"])
    key = fresh(key.id)
    assert key.rate_limit_per_minute == 50 and key.allowed_ips == ["192.0.2.0/24"]
    assert client.get(LOANS, headers=bearer(plaintext)).status_code == 403  # from 127.0.0.1
    entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "api_key.updated"))
    assert entry.details["after"] == {"rate_limit_per_minute": 50, "allowed_ips": ["192.0.2.0/24"]}
    api_keys.update_key(key.id, SYSTEM, allowed_ips=[])  # any address again; limit unchanged
    assert fresh(key.id).rate_limit_per_minute == 50
    assert client.get(LOANS, headers=bearer(plaintext)).status_code == 200
    with pytest.raises(ValidationFailed) as err:
        api_keys.update_key(key.id, SYSTEM, rate_limit_per_minute=0, allowed_ips=["300.1.1.1"])
    assert set(err.value.errors) == {"rate_limit_per_minute", "allowed_ips"}


# --- rotation -------------------------------------------------------------------------------------


def test_rotation_issues_a_twin_and_the_old_key_works_only_during_the_grace(client, make_key, db):
    old, old_plaintext = make_key(
        ["read_loans", "read_members"],
        name="Odoo",
        rate_limit_per_minute=120,
        allowed_ips=["127.0.0.0/8"],
        expires_in_days=90,
    )
    new, new_plaintext = api_keys.rotate_key(old.id, SYSTEM, grace_hours=24)
    old = fresh(old.id)
    assert new_plaintext != old_plaintext and new.id != old.id
    assert (new.name, new.permissions, new.rate_limit_per_minute, new.allowed_ips) == (
        "Odoo",
        ["read_loans", "read_members"],
        120,
        ["127.0.0.0/8"],
    )
    assert new.expires_at - utcnow() > timedelta(days=89)  # as long a life as the old key had
    assert old.replaced_by_id == new.id
    assert timedelta(hours=23, minutes=59) < old.grace_until - utcnow() <= timedelta(hours=24)
    assert api_keys.key_status(old) == "rotated"

    assert client.get(LOANS, headers=bearer(old_plaintext)).status_code == 200  # inside grace
    assert client.get(LOANS, headers=bearer(new_plaintext)).status_code == 200

    db.session.execute(
        ApiKey.__table__.update()
        .where(ApiKey.id == old.id)
        .values(grace_until=utcnow() - timedelta(seconds=1))
    )
    db.session.commit()
    assert_401(client.get(LOANS, headers=bearer(old_plaintext)), "grace period has ended")
    assert client.get(LOANS, headers=bearer(new_plaintext)).status_code == 200
    assert api_keys.key_status(fresh(old.id)) == "replaced"

    entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "api_key.rotated"))
    assert entry.target_id == old.id and entry.details["replaced_by_id"] == new.id
    assert new_plaintext not in str(entry.details)


def test_rotation_refusals(make_key):
    key, _ = make_key()
    new, _ = api_keys.rotate_key(key.id, SYSTEM)
    with pytest.raises(IllegalTransition, match=f"key {new.id}"):
        api_keys.rotate_key(key.id, SYSTEM)
    with pytest.raises(ValidationFailed) as err:
        api_keys.rotate_key(new.id, SYSTEM, grace_hours=-1)
    assert "grace_hours" in err.value.errors
    api_keys.revoke_key(new.id, SYSTEM)
    with pytest.raises(IllegalTransition, match="revoked"):
        api_keys.rotate_key(new.id, SYSTEM)


def test_rotation_with_no_grace_stops_the_old_key_at_once(client, make_key):
    key, plaintext = make_key(["read_loans"])
    api_keys.rotate_key(key.id, SYSTEM, grace_hours=0)
    assert_401(client.get(LOANS, headers=bearer(plaintext)), "rotated")


# --- last use -------------------------------------------------------------------------------------


def test_last_use_is_recorded_at_most_once_a_minute_per_address(client, make_key, db):
    key, plaintext = make_key(["read_loans"])
    assert key.last_used_at is None
    ip = {"REMOTE_ADDR": "192.0.2.10"}
    client.get(LOANS, headers=bearer(plaintext), environ_base=ip, buffered=True)
    first = fresh(key.id)
    assert first.last_used_ip == "192.0.2.10"
    assert utcnow() - first.last_used_at < timedelta(seconds=10)

    recently = utcnow() - timedelta(seconds=30)
    db.session.execute(
        ApiKey.__table__.update().where(ApiKey.id == key.id).values(last_used_at=recently)
    )
    db.session.commit()
    client.get(LOANS, headers=bearer(plaintext), environ_base=ip, buffered=True)
    assert fresh(key.id).last_used_at == recently  # used within the minute: left alone

    client.get(
        LOANS, headers=bearer(plaintext), environ_base={"REMOTE_ADDR": "192.0.2.11"}, buffered=True
    )
    assert fresh(key.id).last_used_ip == "192.0.2.11"  # a new address is recorded at once

    long_ago = utcnow() - timedelta(seconds=61)
    db.session.execute(
        ApiKey.__table__.update().where(ApiKey.id == key.id).values(last_used_at=long_ago)
    )
    db.session.commit()
    client.get(
        LOANS, headers=bearer(plaintext), environ_base={"REMOTE_ADDR": "192.0.2.11"}, buffered=True
    )
    assert fresh(key.id).last_used_at > long_ago + timedelta(seconds=30)


# --- listing --------------------------------------------------------------------------------------


def _log_row(key_id, minutes_ago: int) -> ApiRequestLog:
    return ApiRequestLog(
        api_key_id=key_id,
        method="GET",
        path=LOANS,
        status=200,
        duration_ms=5,
        created_at=utcnow() - timedelta(minutes=minutes_ago),
    )


def test_list_keys_counts_the_last_24_hours_in_one_query(make_key, db):
    active, _ = make_key(name="Active")
    quiet, _ = make_key(name="Quiet")
    revoked, _ = make_key(name="Revoked")
    api_keys.revoke_key(revoked.id, SYSTEM)
    db.session.add_all(
        [_log_row(active.id, m) for m in (1, 30, 600, 1439)]
        + [_log_row(active.id, 1441), _log_row(quiet.id, 2000), _log_row(None, 5)]
    )
    db.session.commit()
    statements = []

    def count(*_args):
        statements.append(1)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        rows = api_keys.list_keys()
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert len(statements) == 1
    summary = [(row.key.name, row.status, row.requests_24h) for row in rows]
    assert summary == [("Revoked", "revoked", 0), ("Quiet", "active", 0), ("Active", "active", 4)]


# --- HTTPS and proxies ----------------------------------------------------------------------------


def test_https_is_required_only_in_production_by_default():
    assert Config.API_REQUIRE_HTTPS is False and TestingConfig.API_REQUIRE_HTTPS is False
    assert ProductionConfig.API_REQUIRE_HTTPS is True
    assert Config.PROXY_FIX_HOPS == 0


def test_plain_http_is_refused_when_https_is_required(app, client, make_key, monkeypatch):
    _, plaintext = make_key(["read_loans"])
    monkeypatch.setitem(app.config, "API_REQUIRE_HTTPS", True)
    for url in (LOANS, COMPAT_LOANS, "/api/accounting/v1/no-such-thing"):
        refused = client.get(url, headers=bearer(plaintext))
        assert refused.status_code == 403
        assert refused.mimetype == "application/problem+json"
        assert "use https://" in refused.json["detail"]
    secure = client.get(LOANS, headers=bearer(plaintext), base_url="https://localhost")
    assert secure.status_code == 200
    # Without PROXY_FIX_HOPS a forwarded scheme is not believed: anyone could send the header.
    forged = client.get(LOANS, headers={**bearer(plaintext), "X-Forwarded-Proto": "https"})
    assert forged.status_code == 403
    # The portal is not the API: it is not refused.
    assert client.get("/auth/login").status_code == 200


@pytest.fixture
def proxied_app(app, database_url, engine_options):
    """A second app, as deployed behind one reverse proxy with HTTPS required."""

    class Proxied(TestingConfig):
        SQLALCHEMY_DATABASE_URI = database_url
        SQLALCHEMY_ENGINE_OPTIONS = engine_options
        REDIS_URL = app.config["REDIS_URL"]
        PROXY_FIX_HOPS = 1
        API_REQUIRE_HTTPS = True

    other = create_app(Proxied)
    other.test_client_class = IsolatedClient
    yield other
    with other.app_context():
        _db.engine.dispose()
    limiter.init_app(app)  # the limiter follows the app initialised last: give it back


def test_behind_a_proxy_forwarded_proto_and_address_are_honoured(proxied_app, make_key):
    key, plaintext = make_key(["read_loans"], allowed_ips=["203.0.113.0/24"])
    client = proxied_app.test_client()
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.50"}
    ok = client.get(LOANS, headers={**bearer(plaintext), **forwarded}, buffered=True)
    assert ok.status_code == 200
    assert fresh(key.id).last_used_ip == "203.0.113.50"
    plain = client.get(LOANS, headers={**bearer(plaintext), "X-Forwarded-For": "203.0.113.50"})
    assert plain.status_code == 403 and "HTTPS" in plain.json["title"]
    elsewhere = client.get(
        LOANS,
        headers={**bearer(plaintext), "X-Forwarded-Proto": "https", "X-Forwarded-For": "8.8.8.8"},
    )
    assert elsewhere.status_code == 403 and "8.8.8.8 is not allowed" in elsewhere.json["detail"]
