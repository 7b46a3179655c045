"""The callback benchmark's WSGI app: the real app plus a bare baseline route, and a timing header
on every answer. Served only by bench/callbacks.py
(`gunicorn 'bench.callbacks_app:create_bench_app()'`), never by a deployment.

- POST /bench/raw-callback   inserts the raw body into `bench_raw_callbacks` (a table of its own)
  and answers Daraja's {"ResultCode": 0, "ResultDesc": "Accepted"}: no secret check, no parsing,
  no settings read, no headers kept, no job enqueued.

Every answer carries `Server-Timing: app;dur=<ms>, sql;dur=<ms>, commit;dur=<ms>, redis;dur=<ms>`:
the time from the request reaching the app until its answer was ready, and the parts of it spent
in SQL statements, in database commits and in Redis calls (enqueueing jobs). What the client
measures beyond `app` is gunicorn's queue, the connection and the client itself. The counters are
per thread: gunicorn.conf.py gives each process several threads.
"""

import threading
import time

import redis.client
from flask import Blueprint, jsonify, request
from sqlalchemy import Column, DateTime, Integer, MetaData, Table, Text, event, insert
from sqlalchemy.engine import Engine

from app import create_app
from app.extensions import csrf, db, limiter
from app.models.base import utcnow

ACCEPTED = {"ResultCode": 0, "ResultDesc": "Accepted"}

RAW_CALLBACKS = Table(
    "bench_raw_callbacks",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("body", Text, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)

baseline = Blueprint("bench_baseline", __name__)
csrf.exempt(baseline)
limiter.exempt(baseline)


@baseline.post("/raw-callback")
def raw_callback():
    """Store the raw body and answer as Daraja expects: the least a callback route can do."""
    body = request.get_data(cache=False).decode("utf-8", errors="replace")
    db.session.execute(insert(RAW_CALLBACKS).values(body=body, received_at=utcnow()))
    db.session.commit()
    return jsonify(ACCEPTED)


# --- where a request's time goes ----------------------------------------------------------------
PARTS = ("sql", "commit", "redis")
# Per thread: gunicorn.conf.py serves each process's requests from several threads.
_timing = threading.local()


def _spent() -> dict:
    if not hasattr(_timing, "spent"):
        _timing.spent = dict.fromkeys(PARTS, 0.0)
        _timing.started = {}
    return _timing.spent


def _started() -> dict:
    _spent()
    return _timing.started


def _add(part: str, since: float) -> None:
    _spent()[part] += time.perf_counter() - since


def _timed(part: str, method):
    def timed(*args, **kwargs):
        since = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            _add(part, since)

    return timed


def _count_sql_and_commits(session) -> None:
    @event.listens_for(Engine, "before_cursor_execute")
    def _before_statement(conn, cursor, statement, parameters, context, executemany):
        _started()["sql"] = time.perf_counter()

    @event.listens_for(Engine, "after_cursor_execute")
    def _after_statement(conn, cursor, statement, parameters, context, executemany):
        if "sql" in _started():
            _add("sql", _started().pop("sql"))

    @event.listens_for(Engine, "commit")
    def _before_commit(conn):
        _started()["commit"] = time.perf_counter()

    # First of the after_commit listeners: the others enqueue jobs, which is Redis time.
    @event.listens_for(session, "after_commit", insert=True)
    def _after_commit(_session):
        if "commit" in _started():
            _add("commit", _started().pop("commit"))


def _count_redis_calls() -> None:
    redis.client.Redis.execute_command = _timed("redis", redis.client.Redis.execute_command)
    redis.client.Pipeline.execute = _timed("redis", redis.client.Pipeline.execute)
    redis.client.Pipeline.immediate_execute_command = _timed(
        "redis", redis.client.Pipeline.immediate_execute_command
    )


class ServerTiming:
    """WSGI middleware adding the request's time, and its parts, as a `Server-Timing` header."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        spent = _spent()
        for part in PARTS:
            spent[part] = 0.0
        _started().clear()
        began = time.perf_counter()

        def timed_start_response(status, headers, exc_info=None):
            parts = {"app": time.perf_counter() - began, **spent}
            value = ", ".join(f"{name};dur={seconds * 1000:.2f}" for name, seconds in parts.items())
            return start_response(status, [*headers, ("Server-Timing", value)], exc_info)

        return self.wsgi_app(environ, timed_start_response)


def create_bench_app():
    """The app as `wsgi.py` builds it (configured by the environment), plus the baseline route
    and the timing header."""
    app = create_app()
    app.register_blueprint(baseline, url_prefix="/bench")
    _count_sql_and_commits(db.session)
    _count_redis_calls()
    app.wsgi_app = ServerTiming(app.wsgi_app)
    return app
