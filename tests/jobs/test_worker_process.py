"""worker.py as operators run it: a separate process that reads the same database and Redis."""

import os
import subprocess
import sys
from pathlib import Path

from app.extensions import db
from app.jobs import enqueue, get_queue
from app.models import Event
from tests import factories

ROOT = Path(__file__).resolve().parents[2]


def _process_env(app) -> dict:
    url = db.engine.url.render_as_string(hide_password=False)
    options = app.config["SQLALCHEMY_ENGINE_OPTIONS"].get("connect_args", {}).get("options")
    if options:  # the PostgreSQL run's own schema
        url += "?options=" + options.replace("=", "%3D")
    return {
        **os.environ,
        "DAYSTAR_ENV": "development",
        "DATABASE_URL": url,
        "REDIS_URL": app.config["REDIS_URL"],
        "SECRET_KEY": "worker-test",
        "DAYSTAR_ENCRYPTION_KEY": app.config["DAYSTAR_ENCRYPTION_KEY"],
    }


def test_worker_process_dispatches_committed_events(app):
    factories.member()
    result = subprocess.run(
        [sys.executable, "worker.py", "--burst"],
        cwd=ROOT,
        env=_process_env(app),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "dispatch_event" in result.stderr
    event = db.session.query(Event).one()
    db.session.refresh(event)
    assert event.dispatched_at is not None


def test_a_worker_without_work_horses_dispatches_every_event_with_a_fresh_session(app):
    factories.member()
    factories.member()
    result = subprocess.run(
        [sys.executable, "worker.py", "--burst", "--no-fork", "high", "default", "low"],
        cwd=ROOT,
        env=_process_env(app),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("dispatch_event") >= 2
    events = db.session.query(Event).all()
    for event in events:
        db.session.refresh(event)
    assert len(events) == 2
    assert all(event.dispatched_at is not None for event in events)


def test_the_no_fork_worker_drops_the_session_after_each_job(app, redis_conn):
    """What a job leaves in its session (here: an uncommitted member) is gone before the next."""
    from worker import NoForkWorker

    enqueue("builtins.len", "abc", queue="low")
    pending = Event(event_type="test.pending", subject_type="test", subject_id=1, payload={})
    db.session.add(pending)
    assert pending in db.session
    NoForkWorker([get_queue("low")], connection=redis_conn).work(burst=True)
    assert pending not in db.session


def test_worker_refuses_unknown_queues(app):
    result = subprocess.run(
        [sys.executable, "worker.py", "urgent"],
        cwd=ROOT,
        env=_process_env(app),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "unknown queue(s) urgent" in result.stderr


def test_the_worker_runs_its_jobs_at_a_lower_cpu_priority_than_the_web(app):
    """DAYSTAR_WORKER_NICE: the job reports the niceness it ran at (os.nice(0) changes nothing)."""
    job = enqueue("os.nice", 0, queue="low")
    ours = os.nice(0)
    result = subprocess.run(
        [sys.executable, "worker.py", "--burst", "--no-fork", "low"],
        cwd=ROOT,
        env={**_process_env(app), "DAYSTAR_WORKER_NICE": "7"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    job.refresh()
    assert job.return_value() == min(ours + 7, 19)


def test_by_default_the_worker_keeps_its_priority_on_sqlite_only(app):
    """A worker holding SQLite's database-wide write lock must not be descheduled for the web
    processes that wait for that lock; on PostgreSQL it gives way by 10."""
    job = enqueue("os.nice", 0, queue="low")
    ours = os.nice(0)
    env = {key: value for key, value in _process_env(app).items() if key != "DAYSTAR_WORKER_NICE"}
    result = subprocess.run(
        [sys.executable, "worker.py", "--burst", "--no-fork", "low"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    job.refresh()
    on_sqlite = app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite")
    assert job.return_value() == (ours if on_sqlite else min(ours + 10, 19))
