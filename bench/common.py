"""What the benchmark scripts share: where each run's database lives (SQLite in a temporary
directory, or a schema of the run's own in PostgreSQL), the app they seed and count with, and the
processes they measure: gunicorn serving the app as deployed, real `python worker.py` RQ workers,
and the provider sandbox (sandbox/) in a process of its own. Every process is stopped on the way
out, with the children a stopped RQ worker may leave behind.

Free loopback ports, Redis database numbers and missing PostgreSQL databases come from
bench/api.py, which the other scripts have always imported them from."""

import argparse
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402
from redis import Redis  # noqa: E402
from rq import Worker  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from app import create_app  # noqa: E402
from bench.api import claim_redis, ensure_postgres_database, free_port  # noqa: E402
from config import TestingConfig  # noqa: E402

__all__ = ["claim_redis", "ensure_postgres_database", "free_port"]

NOISE_NOTE = "(figures carry the noise of whatever else runs on this machine)"


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    pass


# --- databases ----------------------------------------------------------------------------------
def database_urls(args, tmp: str, default_postgres: str) -> list[str]:
    """The databases a run measures: SQLite in `tmp` by default, `--database-url` when given,
    SQLite then PostgreSQL with `--both`."""
    sqlite_url = f"sqlite:///{tmp}/bench.db"
    if args.both:
        return [sqlite_url, args.database_url or default_postgres]
    return [args.database_url or sqlite_url]


def is_postgres(url: str) -> bool:
    return url.startswith("postgresql")


def database_label(url: str) -> str:
    """`SQLite: sqlite:///...` or `PostgreSQL: postgresql+psycopg://...` (no password)."""
    shown = make_url(url).render_as_string(hide_password=True)
    return f"{'PostgreSQL' if is_postgres(url) else 'SQLite'}: {shown}"


@contextlib.contextmanager
def postgres_schema(url: str, prefix: str):
    """A schema of this run's own (`<prefix>_<pid>`) in the database `url` names (created if
    missing): yields the URL whose connections use it, and drops it with everything in it on the
    way out. Every run starts from tables built from the current models, and nothing else in the
    database is read or changed."""
    if ensure_postgres_database(url):
        print(f"  created the database {make_url(url).database}")
    schema = f"{prefix}_{os.getpid()}"
    admin = create_engine(url)
    try:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        print(f"  in the schema {schema} (dropped at the end)")
        scoped = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield scoped.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


@contextlib.contextmanager
def scoped_database(url: str, schema_prefix: str):
    """The URL to use for `url`: itself for SQLite, a schema of the run's own on PostgreSQL."""
    if not is_postgres(url):
        yield url
        return
    with postgres_schema(url, schema_prefix) as scoped_url:
        yield scoped_url


def bench_app(url: str, redis_url: str):
    """The app a script uses for seeding and counting (not the one being measured)."""

    class BenchConfig(TestingConfig):
        SQLALCHEMY_DATABASE_URI = url
        REDIS_URL = redis_url
        TESTING = False

    return create_app(BenchConfig)


# --- processes ----------------------------------------------------------------------------------
def production_environment(url: str, redis_url: str, **variables: str) -> dict[str, str]:
    """The environment of a served app or worker as deployed: production config, throwaway
    secrets, the database and Redis of this run, plus `variables`."""
    return {
        **os.environ,
        "DAYSTAR_ENV": "production",
        "DATABASE_URL": url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": secrets.token_urlsafe(32),
        "DAYSTAR_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        **variables,
    }


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is `pid` (an RQ worker's scheduler and work horse)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            # The command name (2nd field) may hold spaces; the parent pid follows its ")".
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(stat.parent.name))
    return children


def stop(process: subprocess.Popen, seconds: float = 30) -> None:
    """SIGTERM (gunicorn and RQ finish what they are doing), then SIGKILL if it takes too long;
    then SIGTERM whatever child outlived it (an RQ worker may leave its scheduler running)."""
    children = child_pids(process.pid)
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


def _wait_until_answering(process, base: str, probe_path: str, log_path: Path, name: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise SystemExit(f"{name} exited ({process.returncode}):\n{log_path.read_text()}")
        with contextlib.suppress(requests.RequestException):
            # Any answer below 500 (405 for a POST-only route, a redirect) means it is up.
            response = requests.get(base + probe_path, timeout=5, allow_redirects=False)
            if response.status_code < 500:
                return
        if time.monotonic() > deadline:
            raise SystemExit(f"{name} did not answer in 60 s:\n{log_path.read_text()}")
        time.sleep(0.3)


@contextlib.contextmanager
def gunicorn(
    env: dict,
    workers: int,
    log_path: Path,
    app_spec: str,
    probe_path: str,
    port: int | None = None,
):
    """`gunicorn <app_spec>` on a loopback port (a free one unless given); yields its base URL."""
    port = port or free_port()
    command = [
        str(Path(sys.executable).with_name("gunicorn")),
        "--workers",
        str(workers),
        "--bind",
        f"127.0.0.1:{port}",
        "--chdir",
        str(ROOT),
        "--timeout",
        "120",
        app_spec,
    ]
    base = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        # cwd: gunicorn reads ./gunicorn.conf.py (the deployed settings) from where it starts.
        process = subprocess.Popen(  # noqa: S603
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        _wait_until_answering(process, base, probe_path, log_path, "gunicorn")
        print(f"  gunicorn: {workers} workers at {base} (pid {process.pid})")
        yield base
    finally:
        stop(process)


@contextlib.contextmanager
def rq_workers(env: dict, count: int, redis_url: str, log_dir: Path, options=()):
    """`count` real `python worker.py [options]` processes (every queue); stopped on the way
    out."""
    processes = []
    try:
        for number in range(count):
            with open(log_dir / f"worker-{number}.log", "wb") as log:
                processes.append(
                    subprocess.Popen(  # noqa: S603
                        [sys.executable, str(ROOT / "worker.py"), *options],
                        cwd=ROOT,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        connection = Redis.from_url(redis_url)
        deadline = time.monotonic() + 60
        while Worker.count(connection=connection) < count:
            dead = [p for p in processes if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                logs = (log_dir / "worker-0.log").read_text()[-3000:]
                raise SystemExit(f"the RQ workers did not start:\n{logs}")
            time.sleep(0.3)
        print(f"  RQ workers: {count} (pids {', '.join(str(p.pid) for p in processes)})")
        yield processes
    finally:
        for process in processes:
            stop(process)


@contextlib.contextmanager
def sandbox(log_path: Path, **settings):
    """The provider sandbox (`flask --app sandbox run`: Werkzeug, a thread per connection, one
    process, since it keeps its state in memory) on a free loopback port, configured with
    `SANDBOX_*` `settings`; yields its base URL."""
    port = free_port()
    env = {**os.environ, **{key: str(value) for key, value in settings.items()}}
    command = [
        str(Path(sys.executable).with_name("flask")),
        "--app",
        "sandbox",
        "run",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-reload",
        "--no-debugger",
    ]
    base = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(  # noqa: S603
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        _wait_until_answering(process, base, "/sandbox/api/notify/", log_path, "the sandbox")
        print(f"  sandbox: {base} (pid {process.pid})")
        yield base
    finally:
        stop(process)


def _descendants(root: int) -> list[int]:
    children, found = [root], []
    while children:
        pid = children.pop()
        kids = child_pids(pid)
        found += kids
        children += kids
    return found


def cpu_seconds_by_process(labels: dict[str, str]) -> dict[str, float]:
    """CPU seconds (user + system, with their reaped children: an RQ worker's work horses) of
    this script's descendant processes, summed per label: the first `labels` key found in a
    process's command line names its group; a process matching none is left out."""
    tick = os.sysconf("SC_CLK_TCK")
    totals = dict.fromkeys(labels.values(), 0.0)
    for pid in _descendants(os.getpid()):
        with contextlib.suppress(OSError, IndexError, ValueError):
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            seconds = sum(int(value) for value in fields[11:15]) / tick
            label = next((labels[key] for key in labels if key in command), None)
            if label is not None:
                totals[label] += seconds
    return totals


def show_log_tails(log_dir: Path, lines: int = 20) -> None:
    """The end of each process's log: why something was refused or not processed."""
    for path in sorted(log_dir.glob("*.log")):
        tail = path.read_text(errors="replace").splitlines()[-lines:]
        print(f"  --- {path.name} (last {len(tail)} lines)")
        print("\n".join("    " + line for line in tail))


# --- figures ------------------------------------------------------------------------------------
def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def print_targets(label: str, checks: list[tuple[bool, str]]) -> list[str]:
    """PASS or MISS for each (ok, line); the missed ones, prefixed with `label`."""
    print("  targets:")
    misses = []
    for ok, line in checks:
        print(f"    {verdict(ok)}  {line}")
        misses += [] if ok else [f"{label}: {line}"]
    return misses


def print_summary(misses: list[str]) -> None:
    print("\nAll targets met." if not misses else "\nMissed:\n  " + "\n  ".join(misses))
    print(NOISE_NOTE)
