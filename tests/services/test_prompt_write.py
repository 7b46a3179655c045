"""commit_promptly: on SQLite a write that someone waits on goes in as soon as the writer holding
the database's lock commits, instead of sleeping in SQLite's growing steps; the connection's
busy_timeout is back to normal afterwards. On PostgreSQL the write simply runs."""

import sqlite3
import threading
import time

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import CallbackKind, MpesaCallback
from app.services.mpesa import callbacks
from app.services.prompt_write import BUSY_TIMEOUT_MS, commit_promptly

BODY = b'{"Body": {"stkCallback": {"MerchantRequestID": "m", "CheckoutRequestID": "c", "ResultCode": 1032, "ResultDesc": "Cancelled"}}}'  # noqa: E501


def sqlite_only():
    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's database-wide write lock")


def hold_the_write_lock(seconds: float) -> threading.Thread:
    """Another connection (another process, as a worker is) takes the lock and keeps it."""
    taken = threading.Event()
    path = db.engine.url.database

    def writer():
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        taken.set()
        time.sleep(seconds)
        other.execute("COMMIT")
        other.close()

    thread = threading.Thread(target=writer)
    thread.start()
    taken.wait(5)
    return thread


def test_the_write_is_tried_again_every_millisecond_until_the_lock_is_free():
    """SQLite's own busy handler would try a few times, then every 100 ms: here it is tried
    at once and then every millisecond, so it goes in as soon as the lock is released."""
    sqlite_only()
    attempts = []

    def store():
        attempts.append(time.monotonic())
        callback = MpesaCallback(kind=CallbackKind.STK, body="{}", headers={})
        db.session.add(callback)
        db.session.commit()
        return callback.id

    writer = hold_the_write_lock(0.15)
    stored = commit_promptly(store)
    released = time.monotonic()
    writer.join()
    assert len(attempts) > 20  # SQLite's handler: about 8 tries in 150 ms
    assert released - attempts[-1] < 0.05
    assert db.session.scalars(select(MpesaCallback.id)).all() == [stored]
    busy = db.session.connection().exec_driver_sql("PRAGMA busy_timeout").scalar()
    assert busy == BUSY_TIMEOUT_MS  # the pooled connection waits as usual again


def test_a_callback_arriving_while_a_worker_holds_the_lock_is_stored_and_acknowledged():
    sqlite_only()
    writer = hold_the_write_lock(0.2)
    callback, errors = callbacks.receive(CallbackKind.STK, BODY, {}, "196.201.214.200")
    writer.join()
    assert errors is None
    assert db.session.scalars(select(MpesaCallback.id)).all() == [callback.id]


def test_another_database_error_is_not_retried():
    sqlite_only()
    calls = []

    def broken():
        calls.append(1)
        db.session.connection().exec_driver_sql("SELECT * FROM no_such_table")

    with pytest.raises(Exception, match="no such table"):
        commit_promptly(broken)
    assert calls == [1]
    db.session.rollback()
