"""The request log's buffer: rows wait in Redis and are inserted in batches (by the web process
when due, by the periodic job for the rest); nothing is lost or written twice; with Redis down
each row is written at once."""

import logging
from datetime import timedelta

import pytest
from redis import Redis
from sqlalchemy import func, select

from app.jobs import enqueue
from app.jobs.api import flush_api_request_log
from app.jobs.schedule import PERIODIC
from app.models import ApiKey, ApiRequestLog
from app.models.base import utcnow
from app.services import api_log

LOANS = "/api/accounting/v1/loans"


@pytest.fixture(autouse=True)
def fresh_buffer_state(monkeypatch):
    """Each test starts as a new process would: never flushed, Redis not known to be down."""
    monkeypatch.setattr(api_log, "_state", api_log._BufferState())


@pytest.fixture
def no_automatic_flush(monkeypatch):
    """The web process never finds a flush due, so rows stay in the buffer until flushed."""
    monkeypatch.setattr(api_log, "FLUSH_ROWS", 10**9)
    monkeypatch.setattr(api_log, "FLUSH_SECONDS", 10**9)
    api_log._state.last_flush = api_log.monotonic()


def stored(db) -> list[ApiRequestLog]:
    """The rows in the table now (no flush)."""
    db.session.expire_all()
    return list(db.session.scalars(select(ApiRequestLog).order_by(ApiRequestLog.id)))


def bearer(plaintext: str) -> dict:
    return {"Authorization": f"Bearer {plaintext}"}


def entry(path: str, key_id=None, ip="192.0.2.1", at=None) -> api_log.RequestRecord:
    return api_log.RequestRecord(
        method="GET",
        path=path,
        query="",
        status=200,
        duration_ms=3,
        ip=ip,
        user_agent="test",
        response_size=10,
        api_key_id=key_id,
        created_at=at or utcnow(),
    )


def test_rows_wait_in_the_buffer_and_arrive_with_a_flush(client, make_key, db, no_automatic_flush):
    key, plaintext = make_key(["read_loans"])
    for page in (1, 2, 3):
        response = client.get(
            f"{LOANS}?page={page}&token=s3cret",
            headers=bearer(plaintext),
            environ_base={"REMOTE_ADDR": "192.0.2.7"},
            buffered=True,
        )
        assert response.status_code == 400  # token is no parameter of ours
    assert stored(db) == [] and api_log.buffered() == 3
    assert db.session.get(ApiKey, key.id).last_used_at is None

    assert api_log.flush() == 3
    rows = stored(db)
    assert [r.query for r in rows] == [f"page={n}&token=***" for n in (1, 2, 3)]  # masked
    assert {(r.api_key_id, r.status, r.ip) for r in rows} == {(key.id, 400, "192.0.2.7")}
    assert api_log.buffered() == 0 and api_log.flush() == 0
    used = db.session.get(ApiKey, key.id)
    assert used.last_used_ip == "192.0.2.7"
    assert used.last_used_at == max(r.created_at for r in rows)


def test_the_buffer_holds_rows_already_masked(redis_conn, make_key, no_automatic_flush):
    _, plaintext = make_key()
    record = entry(f"{LOANS}/{plaintext}")
    record.query = f"api_key={plaintext}"
    api_log.log_request(record)
    [raw] = redis_conn.lrange(api_log.BUFFER_KEY, 0, -1)
    assert plaintext.encode() not in raw and b"***" in raw


def test_the_web_process_flushes_when_enough_rows_wait(client, make_key, db, monkeypatch):
    _, plaintext = make_key(["read_loans"])
    monkeypatch.setattr(api_log, "FLUSH_ROWS", 3)
    monkeypatch.setattr(api_log, "FLUSH_SECONDS", 10**9)
    api_log._state.last_flush = api_log.monotonic()
    for _ in range(2):
        client.get(LOANS, headers=bearer(plaintext), buffered=True)
    assert stored(db) == []
    client.get(LOANS, headers=bearer(plaintext), buffered=True)
    assert len(stored(db)) == 3 and api_log.buffered() == 0


def test_the_web_process_flushes_a_second_after_its_last_flush(client, make_key, db, monkeypatch):
    _, plaintext = make_key(["read_loans"])
    monkeypatch.setattr(api_log, "FLUSH_ROWS", 10**9)
    api_log._state.last_flush = api_log.monotonic()
    client.get(LOANS, headers=bearer(plaintext), buffered=True)
    assert stored(db) == []
    api_log._state.last_flush -= api_log.FLUSH_SECONDS  # a second has passed
    client.get(LOANS, headers=bearer(plaintext), buffered=True)
    assert len(stored(db)) == 2


def test_nothing_is_lost_or_written_twice_across_flushes_and_the_job(
    make_key, db, run_jobs, monkeypatch
):
    key, _ = make_key()
    monkeypatch.setattr(api_log, "FLUSH_ROWS", 100)
    monkeypatch.setattr(api_log, "FLUSH_SECONDS", 10**9)
    monkeypatch.setattr(api_log, "FLUSH_BATCH", 150)
    api_log._state.last_flush = api_log.monotonic()
    paths = [f"{LOANS}/{n}" for n in range(1, 1235)]
    for path in paths:
        api_log.log_request(entry(path, key.id))
    flushed_as_it_went = len(stored(db))
    assert 0 < flushed_as_it_went < len(paths)  # the web process flushed some as it went
    job = enqueue(flush_api_request_log, queue="default")
    run_jobs()
    assert job.return_value() == len(paths) - flushed_as_it_went
    written = [r.path for r in stored(db)]
    assert sorted(written) == sorted(paths) and api_log.buffered() == 0


def test_the_flush_job_runs_every_minute():
    [job] = [job for job in PERIODIC if job["func"] is flush_api_request_log]
    assert job["interval"] == 60


def test_a_refused_row_is_reported_and_the_rest_of_its_batch_written(
    make_key, db, no_automatic_flush, caplog
):
    """A real refusal: a row naming a key that no longer exists breaks the foreign key."""
    key, _ = make_key()
    doomed, _ = make_key()
    for n in range(3):
        api_log.log_request(entry(f"{LOANS}/{n}", key.id))
    api_log.log_request(entry(f"{LOANS}/doomed", doomed.id))
    db.session.execute(ApiKey.__table__.delete().where(ApiKey.id == doomed.id))
    db.session.commit()
    with caplog.at_level(logging.WARNING, logger="app.services.api_log"):
        assert api_log.flush() == 3
    assert [r.path for r in stored(db)] == [f"{LOANS}/{n}" for n in range(3)]
    assert any(f"{LOANS}/doomed" in r.getMessage() for r in caplog.records)
    assert api_log.buffered() == 0


def test_rows_go_back_to_the_buffer_when_the_database_fails(
    make_key, db, no_automatic_flush, monkeypatch
):
    """A database outage cannot be produced on both test databases, so the insert is made to
    raise what the driver raises when the server is gone (OperationalError)."""
    from sqlalchemy.exc import OperationalError

    key, _ = make_key()
    for n in range(4):
        api_log.log_request(entry(f"{LOANS}/{n}", key.id))

    def database_gone(rows):
        raise OperationalError("INSERT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(api_log, "_insert", database_gone)
    assert api_log.flush() == 0
    assert api_log.buffered() == 4
    monkeypatch.undo()
    assert api_log.flush() == 4
    assert len(stored(db)) == 4


def test_with_redis_down_each_row_is_written_at_once(app, client, make_key, db, monkeypatch):
    """Redis really unreachable: a client of a port nothing listens on."""
    key, plaintext = make_key(["read_loans"])
    monkeypatch.setitem(app.extensions, "redis", Redis(port=1, socket_connect_timeout=1))
    api_log._state.last_flush = api_log.monotonic()  # no flush due: only the fallback writes
    response = client.get(LOANS, headers=bearer(plaintext), buffered=True)
    assert response.status_code == 200
    [row] = stored(db)
    assert (row.api_key_id, row.status, row.path) == (key.id, 200, LOANS)
    assert api_log._state.redis_down_until > api_log.monotonic()
    client.get(f"{LOANS}?page=2", headers=bearer(plaintext), buffered=True)
    assert len(stored(db)) == 2  # while Redis is taken to be down, no second attempt
    assert api_log.buffered() == 0 and api_log.flush() == 0  # nothing to read: no error


def test_the_log_browser_and_usage_show_buffered_rows(client, make_key, db, no_automatic_flush):
    key, plaintext = make_key(["read_loans"])
    client.get(LOANS, headers=bearer(plaintext), buffered=True)
    client.get(f"{LOANS}/999", headers=bearer(plaintext), buffered=True)
    assert stored(db) == []
    found = api_log.search(key_id=key.id)
    assert found.total == 2 and [r.status for r in found.items] == [404, 200]
    usage = api_log.key_usage(key.id, days=1)
    assert (usage.requests, usage.errors) == (2, 1)
    assert db.session.scalar(select(func.count()).select_from(ApiRequestLog)) == 2
    assert utcnow() - found.items[0].created_at < timedelta(seconds=30)
