"""Writes that someone is waiting on (a callback's acknowledgement), kept from queueing behind
longer transactions on SQLite.

SQLite lets one writer at a time into the whole database, and a connection that finds it busy
sleeps in steps that grow to 100 ms (its busy handler) while the workers' transactions keep
taking the lock in turn: an acknowledgement could wait a second. Here the write is tried at once
and, while the lock is held, tried again every millisecond, so it goes in as soon as the
current writer commits. PostgreSQL locks rows, not the database: the write simply runs."""

import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import OperationalError

from app.extensions import db

T = TypeVar("T")

POLL_SECONDS = 0.001
BUSY_TIMEOUT_MS = 5000  # every SQLite connection's wait for the lock (app/__init__.py)
PROMPT = "daystar_prompt_write"  # marks a pooled connection whose busy_timeout is 0


def commit_promptly(write: Callable[[], T]) -> T:
    """`write()` (which adds its rows and commits; run again from the start if SQLite's lock was
    taken) and what it returns."""
    if db.session.get_bind().dialect.name != "sqlite":
        return write()
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        connection = db.session.connection()
        connection.exec_driver_sql("PRAGMA busy_timeout=0")
        connection.info[PROMPT] = True  # restored when the pool takes it back (app/__init__.py)
        try:
            return write()
        except OperationalError as exc:
            if "locked" not in str(exc.orig) or time.monotonic() >= deadline:
                raise
            db.session.rollback()
            time.sleep(POLL_SECONDS)
