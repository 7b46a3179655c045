"""worker.py as operators run it: a separate process that reads the same database and Redis."""

import os
import subprocess
import sys
from pathlib import Path

from rq import get_current_job
from sqlalchemy import select

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


def worker_key_ttl() -> int:
    """Run as a job: how long the running worker's key lives without another heartbeat."""
    job = get_current_job()
    return job.connection.ttl(f"rq:worker:{job.worker_name}")


def test_the_worker_runs_short_queues_in_process_and_low_in_a_work_horse(app, redis_conn):
    """`worker.py` without --fork/--no-fork: `high` and `default` jobs (callbacks, sends) in the
    worker's own process, `low` ones (reminders, nightly jobs) in a forked horse."""
    from worker import DaystarWorker

    jobs = {
        name: enqueue("os.getpid", queue=name, retry=None) for name in ("high", "default", "low")
    }
    DaystarWorker([get_queue(name) for name in jobs], connection=redis_conn).work(burst=True)
    ran_in = {name: job.return_value() for name, job in jobs.items()}
    assert ran_in["high"] == ran_in["default"] == os.getpid()
    assert ran_in["low"] not in (None, os.getpid())


def test_a_job_run_in_process_keeps_its_worker_alive_for_its_whole_timeout(app, redis_conn):
    """No horse monitor renews the heartbeat while a job runs in the worker's process: the one
    set before it must outlast the job's timeout (RQ's forking worker sets 90 s), or a long
    send batch would be taken for abandoned."""
    from worker import DaystarWorker

    in_process = enqueue(worker_key_ttl, queue="default", retry=None, timeout=1800)
    forked = enqueue(worker_key_ttl, queue="low", retry=None, timeout=1800)
    DaystarWorker([get_queue("default"), get_queue("low")], connection=redis_conn).work(burst=True)
    assert in_process.return_value() > 1800
    assert 0 < forked.return_value() <= 90  # renewed by the worker watching the horse


def connection_opened_in() -> tuple[int, int]:
    """Run as a job: (this process, the process that first used this database connection)."""
    record = db.session.connection().connection  # the pooled connection, and its info dict
    opened_in = record.info.setdefault("opened_in", os.getpid())
    db.session.execute(select(1))
    return os.getpid(), opened_in


def test_a_work_horse_opens_its_own_database_connections(app, redis_conn):
    """A job run in process leaves its connection in the pool; a horse forked after it must not
    use that connection (one socket in two processes), and the worker's stays usable."""
    from worker import DaystarWorker

    jobs = [enqueue(connection_opened_in, queue=name, retry=None) for name in ("default", "low", "default")]  # fmt: skip
    DaystarWorker([get_queue("default"), get_queue("low")], connection=redis_conn).work(burst=True)
    (worker, first), (horse, in_horse), (same_worker, after) = [j.return_value() for j in jobs]
    assert worker == same_worker == os.getpid() != horse
    assert in_horse == horse  # a connection of its own
    assert first == after == os.getpid()


def test_stopping_a_job_run_in_process_does_not_kill_the_worker_process_group():
    """RQ's stop-job command kills the horse's process group; with no horse (a job run in
    process) that would be the worker's own group. Run in a session of its own."""
    code = (
        "from redis import Redis; from rq import Queue; from worker import DaystarWorker; "
        "w = DaystarWorker([Queue('default', connection=Redis())], connection=Redis()); "
        "w.kill_horse(); print('still running')"
    )
    result = subprocess.run(  # noqa: S603 - our own code, above
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
        start_new_session=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "still running" in result.stdout
