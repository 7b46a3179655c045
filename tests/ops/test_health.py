"""/healthz and /readyz: JSON, no sign-in, never a 500; /readyz is 503 naming each failed check."""

from sqlalchemy.exc import OperationalError

from app.extensions import db


def test_healthz_answers_without_touching_the_database(client, monkeypatch):
    def no_database(*args, **kwargs):
        raise AssertionError("/healthz must not query the database")

    monkeypatch.setattr(db.session, "execute", no_database)
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"


def test_readyz_is_200_when_database_redis_and_a_worker_are_there(client, live_worker):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json == {
        "status": "ok",
        "database": {"ok": True},
        "redis": {"ok": True},
        "workers": {"ok": True, "count": 1},
    }


def test_readyz_is_503_when_no_worker_is_alive(client):
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json
    assert body["status"] == "unavailable"
    assert body["database"] == {"ok": True} and body["redis"] == {"ok": True}
    assert body["workers"]["ok"] is False and body["workers"]["count"] == 0
    assert "no RQ worker is alive" in body["workers"]["error"]


def test_a_worker_that_died_no_longer_counts(client, live_worker):
    live_worker.register_death()
    assert client.get("/readyz").json["workers"]["ok"] is False


def test_readyz_is_503_not_500_when_redis_is_unreachable(client, live_worker, redis_down):
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json
    assert body["redis"]["ok"] is False
    assert "ConnectionError" in body["redis"]["error"] and len(body["redis"]["error"]) <= 200
    assert body["workers"] == {"ok": False, "count": 0, "error": "unknown: Redis is unreachable"}
    assert body["database"] == {"ok": True}


def test_readyz_is_503_when_the_database_fails(client, live_worker, monkeypatch):
    def refused(*args, **kwargs):
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(db.session, "execute", refused)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json["database"]["ok"] is False
    assert "OperationalError" in response.json["database"]["error"]
    assert response.json["redis"] == {"ok": True}


def test_health_endpoints_need_no_sign_in_and_answer_head(client):
    assert client.head("/healthz").status_code == 200
    response = client.get("/readyz")  # no worker here: 503 JSON, not a redirect to the login page
    assert response.status_code == 503 and response.is_json
