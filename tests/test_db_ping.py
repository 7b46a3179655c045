"""Pooled connections pinged only after sitting idle (app/db_ping.py), on the test database
(SQLite, or PostgreSQL when TEST_DATABASE_URL is set), each test with an engine of its own."""

import time

import pytest
from sqlalchemy import create_engine, text

from app.db_ping import ping_idle_connections

IDLE = 1.0  # seconds: far longer than any pause between two uses below, even on a busy machine


@pytest.fixture()
def engine(database_url, engine_options):
    engine = create_engine(database_url, **engine_options)
    ping_idle_connections(engine, IDLE)
    pings = []
    ping = engine.dialect.do_ping

    def counted_ping(dbapi_connection):  # the dialect's own ping, counted
        pings.append(dbapi_connection)
        return ping(dbapi_connection)

    engine.dialect.do_ping = counted_ping
    engine.pings = pings
    yield engine
    engine.dispose()


def _backend(connection):
    """Something that names the server-side connection: its PostgreSQL pid, or the SQLite
    DBAPI connection object."""
    if connection.dialect.name == "postgresql":
        return connection.scalar(text("SELECT pg_backend_pid()"))
    return id(connection.connection.dbapi_connection)


def test_a_connection_back_in_the_pool_a_moment_ago_is_used_without_a_ping(engine):
    with engine.connect() as connection:  # new: not pinged either
        first = _backend(connection)
    for _ in range(5):
        with engine.connect() as connection:
            assert _backend(connection) == first
    assert engine.pings == []


def test_a_connection_idle_longer_is_pinged_once_and_kept(engine):
    with engine.connect() as connection:
        first = _backend(connection)
    time.sleep(IDLE * 1.5)
    with engine.connect() as connection:
        assert _backend(connection) == first
    assert len(engine.pings) == 1
    with engine.connect() as connection:  # just checked in again: no ping
        assert connection.scalar(text("SELECT 1")) == 1
    assert len(engine.pings) == 1


def test_an_idle_connection_that_died_is_replaced_before_use(engine, database_url):
    with engine.connect() as connection:
        first = _backend(connection)
        dbapi_connection = connection.connection.dbapi_connection
    if engine.dialect.name == "postgresql":
        # The server ends that session, as a restart or an idle cut-off would.
        killer = create_engine(database_url)
        with killer.begin() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        killer.dispose()
    else:
        dbapi_connection.close()  # SQLite has no server: the handle itself is gone
    time.sleep(IDLE * 1.5)
    with engine.connect() as connection:  # no error reaches the caller
        assert connection.scalar(text("SELECT 1")) == 1
        assert _backend(connection) != first
    assert len(engine.pings) == 1
