"""Pooled database connections are checked before use when they have sat idle in the pool, not
on every use.

SQLAlchemy's `pool_pre_ping` sends `SELECT 1` each time a connection leaves the pool: one more
round trip for every web request and every commit of a job, a tenth of a delivery report's time
on PostgreSQL (bench/notify.py). A connection the pool took back a moment ago is as alive as
that ping would show; one idle for longer (across a database restart, a proxy's idle cut-off) is
pinged, and if the ping fails it is replaced before anyone uses it, as with pre-ping: raising
DisconnectionError from the checkout event makes the pool connect afresh (SQLAlchemy's
documented "pessimistic disconnect handling" recipe)."""

import time

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError

IDLE_SINCE = "daystar_idle_since"


def ping_idle_connections(engine: Engine, idle_seconds: float) -> None:
    """Ping a connection at checkout when it was checked in over `idle_seconds` ago."""
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _note_idle_since(_dbapi_connection, record) -> None:
        record.info[IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection, record, _proxy) -> None:
        since = record.info.pop(IDLE_SINCE, None)
        if since is None or time.monotonic() - since < idle_seconds:
            return  # new from connect, or back in the pool only a moment ago
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError(f"an idle pooled connection failed its ping: {exc}") from exc
