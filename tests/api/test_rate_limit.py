"""Per-key rate limits (Flask-Limiter on the real Redis): RateLimit-* headers, 429 with
Retry-After, one counter per key across both prefixes, the API only, and no 500 when Redis is
down (in-memory fallback, tested against a port where nothing listens)."""

import socket

import pytest

from app import create_app
from app.extensions import db as _db
from app.extensions import limiter
from config import TestingConfig
from tests.conftest import IsolatedClient

LOANS = "/api/accounting/v1/loans"
COMPAT_LOANS = "/wp-json/daystar-accounting/v1/loans"


def bearer(plaintext: str) -> dict:
    return {"Authorization": f"Bearer {plaintext}"}


@pytest.fixture(autouse=True)
def limiter_on_this_app(app):
    """Flask-Limiter keeps its storage on one object, bound to the app initialised last; other
    test modules build apps of their own, so bind it to the test app (and its Redis database)."""
    limiter.init_app(app)


def test_requests_carry_ratelimit_headers_and_the_fourth_of_three_is_429(client, make_key):
    _, plaintext = make_key(["read_loans"], rate_limit_per_minute=3)
    for remaining in (2, 1, 0):
        response = client.get(LOANS, headers=bearer(plaintext))
        assert response.status_code == 200
        assert response.headers["RateLimit-Limit"] == "3"
        assert response.headers["RateLimit-Remaining"] == str(remaining)
        assert 0 < int(response.headers["RateLimit-Reset"]) <= 60
        assert response.headers["RateLimit-Policy"] == "3;w=60"
        assert "X-RateLimit-Limit" not in response.headers
    refused = client.get(LOANS, headers=bearer(plaintext))
    assert refused.status_code == 429
    assert refused.mimetype == "application/problem+json"
    assert refused.json["status"] == 429 and "3 requests a minute" in refused.json["detail"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["RateLimit-Limit"] == "3"
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert 0 < int(refused.headers["RateLimit-Reset"]) <= 60


def test_another_key_is_unaffected(client, make_key):
    _, limited = make_key(["read_loans"], rate_limit_per_minute=3)
    _, other = make_key(["read_loans"], rate_limit_per_minute=3)
    for _ in range(3):
        client.get(LOANS, headers=bearer(limited))
    assert client.get(LOANS, headers=bearer(limited)).status_code == 429
    response = client.get(LOANS, headers=bearer(other))
    assert response.status_code == 200 and response.headers["RateLimit-Remaining"] == "2"


def test_one_counter_per_key_across_both_prefixes_and_refused_permissions(client, make_key):
    key, plaintext = make_key(["read_loans"], rate_limit_per_minute=3)
    assert client.get(LOANS, headers=bearer(plaintext)).status_code == 200
    assert client.get(COMPAT_LOANS, headers=bearer(plaintext)).status_code == 200
    # A request the key may not make still counts.
    forbidden = client.get("/api/accounting/v1/members", headers=bearer(plaintext))
    assert forbidden.status_code == 403 and forbidden.headers["RateLimit-Remaining"] == "0"
    assert client.get(COMPAT_LOANS, headers=bearer(plaintext)).status_code == 429


def test_default_limit_comes_from_config(app, client, make_key, monkeypatch):
    _, plaintext = make_key(["read_loans"])
    assert app.config["DAYSTAR_API_RATE_LIMIT_PER_MINUTE"] == 600
    response = client.get(LOANS, headers=bearer(plaintext))
    assert response.headers["RateLimit-Limit"] == "600"
    monkeypatch.setitem(app.config, "DAYSTAR_API_RATE_LIMIT_PER_MINUTE", 2)
    _, small = make_key(["read_loans"])
    assert client.get(LOANS, headers=bearer(small)).headers["RateLimit-Limit"] == "2"


def test_counters_live_in_redis_under_their_own_prefix(client, make_key, redis_conn):
    _, plaintext = make_key(["read_loans"], rate_limit_per_minute=3)
    client.get(LOANS, headers=bearer(plaintext))
    keys = [k.decode() for k in redis_conn.keys("*")]
    counters = [k for k in keys if k.startswith("daystar-ratelimit:")]
    assert len(counters) == 1 and "daystar-api" in counters[0]


def test_unauthenticated_requests_and_the_portal_are_not_limited(client, redis_conn):
    for _ in range(3):
        response = client.get(LOANS)
        assert response.status_code == 401 and "RateLimit-Limit" not in response.headers
    portal = client.get("/auth/login")
    assert portal.status_code == 200 and "RateLimit-Limit" not in portal.headers
    assert not [k for k in redis_conn.keys("*") if k.startswith(b"daystar-ratelimit:")]


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed on leaving: nothing listens there


@pytest.fixture
def app_without_redis(app, database_url, engine_options):
    """A second app on the same database whose Redis is a port where nothing listens."""

    class NoRedis(TestingConfig):
        SQLALCHEMY_DATABASE_URI = database_url
        SQLALCHEMY_ENGINE_OPTIONS = engine_options
        REDIS_URL = f"redis://127.0.0.1:{_dead_port()}/0"

    other = create_app(NoRedis)
    other.test_client_class = IsolatedClient
    yield other
    with other.app_context():
        _db.engine.dispose()
    limiter.init_app(app)


def test_redis_down_falls_back_to_memory_and_never_500s(app_without_redis, make_key):
    _, plaintext = make_key(["read_loans"], rate_limit_per_minute=2)
    _, other = make_key(["read_loans"], rate_limit_per_minute=2)
    client = app_without_redis.test_client()
    first = client.get(LOANS, headers=bearer(plaintext))
    assert first.status_code == 200, first.text
    assert first.headers["RateLimit-Limit"] == "2"  # the key's own limit, kept in memory
    assert client.get(COMPAT_LOANS, headers=bearer(plaintext)).status_code == 200
    refused = client.get(LOANS, headers=bearer(plaintext))
    assert refused.status_code == 429 and refused.headers["Retry-After"]
    assert client.get(LOANS, headers=bearer(other)).status_code == 200
    assert client.get(LOANS).status_code == 401
    assert client.get("/auth/login").status_code == 200
