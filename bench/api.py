"""Accounting API benchmark: seed a big SACCO, serve the app with gunicorn, time three endpoints
against bare baselines measured in the same run.

    .venv/bin/python bench/api.py                        # SQLite in a temporary directory
    .venv/bin/python bench/api.py --database-url postgresql+psycopg://postgres@127.0.0.1/daystar_api_bench
    .venv/bin/python bench/api.py --both                 # SQLite, then PostgreSQL (the URL above)

Seeds 100,000 members with about 2 loans and 12 repayments each (a database that has members
already is reused as it is; a missing PostgreSQL database is created, and VACUUMed as autovacuum
would), creates an API key with every permission, starts `gunicorn bench.api_app:app` on a free
loopback port and times, from a pool of client threads with `requests.Session`:

- GET /api/accounting/v1/loans?per_page=100, then the URLs of its Link rel="next" (cursors), as
  a synchronisation reads the list (pages drawn over the whole table from that chain)
- GET /api/accounting/v1/loans?per_page=100&page=N            (the same pages by number)
- GET /api/accounting/v1/repayments?member_id=N&per_page=100  (members with repayments)
- GET /api/accounting/v1/financial-summary?period=monthly&date_from=<12 months ago>&date_to=<today>

300 requests per list endpoint after 30 warm-up ones, 60 summaries after 4.
Beside each it times the baseline: the same SQL run in the same gunicorn and dumped with plain
`json`, without auth, audit log or schemas (/bench/... in bench/api_app.py). Prints p50/p95 in
milliseconds and requests per second, then PASS or MISS for each target (figures, not asserts;
the script exits 0): each endpoint at least half its baseline's requests per second; the financial
summary's p50 within twice its baseline's; p50 under 30 ms for the list endpoints on PostgreSQL.
"""

import argparse
import contextlib
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402
from dateutil.relativedelta import relativedelta  # noqa: E402
from redis import Redis  # noqa: E402
from sqlalchemy import create_engine, func, inspect, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from app import clock, create_app  # noqa: E402
from app.extensions import db  # noqa: E402
from app.models import ApiPermission, Loan, Member, Repayment  # noqa: E402
from app.services import api_keys, demo  # noqa: E402
from app.services.actor import Actor  # noqa: E402
from config import TestingConfig, engine_options  # noqa: E402

API = "/api/accounting/v1"
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/daystar_api_bench"
REDIS_CLAIM = "daystar-test-run"  # the claim tests/conftest.py uses: runs never share a database
LIST_P50_TARGET_MS = 30
SUMMARY_WARMUP = 4
# What the TLS proxy in front of gunicorn adds to every request (PROXY_FIX_HOPS=1 believes it).
PROXIED = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "127.0.0.1"}


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    pass


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=_HelpFormatter)
    parser.add_argument("--members", type=int, default=100_000, help="members to seed")
    parser.add_argument("--loans-per-member", type=float, default=2.0, help="average loans")
    parser.add_argument(
        "--instalment-parts", type=int, default=1, help="most payments per instalment (1-4)"
    )
    parser.add_argument("--seed", type=int, default=42, help="random seed of the demo data")
    parser.add_argument(
        "--database-url",
        help="default: SQLite in a temporary directory; with --both: " + DEFAULT_POSTGRES,
    )
    parser.add_argument(
        "--both",
        action="store_true",
        help="run on SQLite in a temporary directory, then on PostgreSQL at --database-url",
    )
    parser.add_argument(
        "--drop-created",
        action="store_true",
        help="drop a PostgreSQL database this run created, at the end",
    )
    parser.add_argument(
        "--loan-pages",
        type=int,
        default=0,
        help="draw loan pages from the first N only (0: from every page, as a full sync reads)",
    )
    parser.add_argument(
        "--requests", type=int, default=300, help="timed requests per list endpoint"
    )
    parser.add_argument("--warmup", type=int, default=30, help="untimed requests per list endpoint")
    parser.add_argument(
        "--summary-requests",
        type=int,
        default=60,
        help=f"timed financial summaries (after {SUMMARY_WARMUP} untimed; each takes a second or more)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="baseline/API alternations")
    parser.add_argument("--threads", type=int, default=4, help="client threads")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0", help="Redis server")
    args = parser.parse_args(argv)
    if not 1 <= args.instalment_parts <= 4:
        parser.error("--instalment-parts is 1 to 4")
    return args


# --- database -----------------------------------------------------------------------------------
def ensure_postgres_database(url: str) -> bool:
    """Create the PostgreSQL database `url` names unless it exists; True when created."""
    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database}
            )
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    finally:
        admin.dispose()
    return not exists


def drop_postgres_database(url: str) -> None:
    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
    finally:
        admin.dispose()


def vacuum(engine) -> None:
    """VACUUM (ANALYZE) the seeded tables, as autovacuum would have in a running system (a
    benchmark server may run without it): index-only scans need the visibility map."""
    started = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in demo.TABLES:
            conn.execute(text(f"VACUUM (ANALYZE) {table.name}"))
    print(f"  VACUUM (ANALYZE) of the seeded tables: {time.perf_counter() - started:.0f} s")


def claim_redis(base_url: str) -> str:
    """A Redis database number that no test run (nor another benchmark) is using."""
    root = base_url.rsplit("/", 1)[0]
    for number in range(15, 0, -1):
        conn = Redis.from_url(f"{root}/{number}")
        if conn.set(REDIS_CLAIM, f"bench-api-{os.getpid()}", nx=True, ex=3600):
            return f"{root}/{number}"
    raise SystemExit("every Redis database 1-15 is claimed by a test run; try again later")


def add_missing_indexes() -> None:
    """create_all() adds missing tables only: a reused database's seeded tables also get the
    indexes their models gained since it was seeded (those on columns it lacks are reported)."""
    inspector = inspect(db.engine)
    for table in demo.TABLES:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for index in table.indexes:
            lacking = [column.name for column in index.columns if column.name not in present]
            if lacking:
                print(
                    f"  WARNING {table.name} has no column {', '.join(lacking)} (the database "
                    "predates the models): drop it to measure the current schema"
                )
                continue
            index.create(db.engine, checkfirst=True)


@dataclass
class Workload:
    """What the timed requests ask for, drawn from the seeded data."""

    key: str
    loan_pages: list[int]
    member_ids: list[int]
    date_from: str
    date_to: str
    counts: dict[str, int] = field(default_factory=dict)


def prepare(url: str, redis_url: str, args) -> Workload:
    """Create the tables, seed unless there are members, create a key, draw the parameters."""

    class SeedConfig(TestingConfig):
        SQLALCHEMY_DATABASE_URI = url
        SQLALCHEMY_ENGINE_OPTIONS = engine_options(url)
        REDIS_URL = redis_url
        TESTING = False

    app = create_app(SeedConfig)
    with app.app_context():
        db.create_all()
        add_missing_indexes()
        started = time.perf_counter()
        result = demo.seed(
            members=args.members,
            seed=args.seed,
            if_empty=True,
            loans_per_member=args.loans_per_member,
            instalment_parts=args.instalment_parts,
        )
        if result.skipped:
            print(f"  {result.summary()} Reusing it.")
        else:
            print(f"  {result.summary()}".replace("\n", "\n  "))
            print(f"  seeded and analysed in {time.perf_counter() - started:.0f} s")
        if db.engine.dialect.name == "postgresql":
            vacuum(db.engine)
        counts = {
            model.__tablename__: db.session.scalar(select(func.count()).select_from(model))
            for model in (Member, Loan, Repayment)
        }
        print("  rows: " + ", ".join(f"{n:,} {table}" for table, n in counts.items()))
        _, key = api_keys.create_key(
            f"bench/api.py {time.strftime('%Y-%m-%d %H:%M:%S')}",
            list(ApiPermission),
            Actor.system("bench"),
            expires_in_days=1,
            # The benchmark measures speed, not the limiter: the highest limit a key may have.
            rate_limit_per_minute=getattr(api_keys, "MAX_RATE_LIMIT", 100_000),
        )
        rng = Random(args.seed)
        total = args.requests + args.warmup
        pages = max(1, -(-counts["loans"] // 100))
        if args.loan_pages:
            pages = min(pages, args.loan_pages)
        loan_pages = [rng.randint(1, pages) for _ in range(total)]
        # Members weighted by their repayments: a member with none would make an empty answer.
        highest = db.session.scalar(select(func.max(Repayment.id))) or 1
        picks = [rng.randint(1, highest) for _ in range(total)]
        by_id = dict(
            db.session.execute(
                select(Repayment.id, Repayment.member_id).where(Repayment.id.in_(picks))
            ).all()
        )
        fallback = next(iter(by_id.values()), 1)
        member_ids = [by_id.get(pick, fallback) for pick in picks]
        today = clock.today()
        workload = Workload(
            key=key,
            loan_pages=loan_pages,
            member_ids=member_ids,
            date_from=(today - relativedelta(months=12)).isoformat(),
            date_to=today.isoformat(),
            counts=counts,
        )
        db.session.remove()
        db.engine.dispose()
    return workload


# --- gunicorn -----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def gunicorn(url: str, redis_url: str, workers: int, log_path: Path):
    """`gunicorn bench.api_app:app` on a free loopback port, configured as in production;
    yields its base URL and stops it on the way out."""
    port = free_port()
    env = {
        **os.environ,
        "DAYSTAR_ENV": "production",
        "DATABASE_URL": url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": secrets.token_urlsafe(32),
        "DAYSTAR_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        # As deployed: behind one TLS proxy, whose X-Forwarded-Proto the API's HTTPS check reads.
        "PROXY_FIX_HOPS": "1",
    }
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
        "bench.api_app:app",
    ]
    base = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise SystemExit(f"gunicorn exited ({process.returncode}):\n{log_path.read_text()}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{base}/bench/loans?per_page=1", timeout=5).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"gunicorn did not answer in 60 s:\n{log_path.read_text()}")
            time.sleep(0.3)
        print(f"  gunicorn: {workers} workers at {base} (pid {process.pid})")
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- load ---------------------------------------------------------------------------------------
@dataclass
class Timing:
    latencies_ms: list[float] = field(default_factory=list)
    sql_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.latencies_ms)

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms)

    @property
    def p95(self) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]

    @property
    def rps(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


class Client:
    """A pool of threads, each with its own `requests.Session` (keep-alive on loopback)."""

    def __init__(self, base: str, threads: int):
        self.base, self.threads = base, threads
        self.local = threading.local()
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="bench-client")

    def session(self) -> requests.Session:
        session = getattr(self.local, "session", None)
        if session is None:
            session = self.local.session = requests.Session()
        return session

    def one(self, path: str, headers: dict) -> tuple[float, float | None, str | None]:
        started = time.perf_counter()
        response = self.session().get(self.base + path, headers=headers, timeout=60)
        body = response.content
        elapsed = (time.perf_counter() - started) * 1000
        error = None
        if response.status_code != 200 or not body:
            error = f"{path} -> {response.status_code}: {body[:300]!r}"
        sql = None
        timing = response.headers.get("Server-Timing", "")
        if timing.startswith("sql;dur="):
            sql = float(timing.removeprefix("sql;dur="))
        return elapsed, sql, error

    def run(self, paths: list[str], headers: dict, timing: Timing) -> None:
        started = time.perf_counter()
        results = list(self.pool.map(lambda path: self.one(path, headers), paths))
        timing.seconds += time.perf_counter() - started
        for elapsed, sql, error in results:
            timing.latencies_ms.append(elapsed)
            if sql is not None:
                timing.sql_ms.append(sql)
            if error:
                timing.errors.append(error)

    def close(self) -> None:
        self.pool.shutdown(cancel_futures=True)


@dataclass
class Endpoint:
    name: str
    api_paths: list[str]
    baseline_paths: list[str]
    warmup: int  # the first `warmup` paths are not timed
    is_list: bool = True  # a list endpoint (p50 target on PostgreSQL); else the summary
    api: Timing = field(default_factory=Timing)
    baseline: Timing = field(default_factory=Timing)


@dataclass
class SyncChain:
    """The loans list as a synchronisation reads it: page n (from 1) at index n - 1."""

    api_paths: list[str]  # the first page, then each page's Link rel="next"
    baseline_paths: list[str]  # the same pages' SQL: COUNT on the first only, then keyset


def walk_sync(client: Client, headers: dict, pages: int) -> SyncChain:
    """Follow the loans list's Link rel="next" from the first page for `pages` pages (untimed),
    checking that each loan comes once and in id order."""
    first = f"{API}/loans?per_page=100"
    chain = SyncChain([first], ["/bench/loans?per_page=100"])
    started = time.perf_counter()
    path, last_id, seen = first, 0, 0
    while True:
        response = client.session().get(client.base + path, headers=headers, timeout=60)
        if response.status_code != 200:
            raise SystemExit(f"{path} answered {response.status_code}: {response.text[:500]}")
        body = response.json()
        ids = [row["id"] for row in body["loans"]]
        if ids != sorted(set(ids)) or (ids and ids[0] <= last_id):
            raise SystemExit(f"{path}: loans out of order or repeated after id {last_id}")
        seen += len(ids)
        total = body["pagination"]["total_items"]
        following = response.links.get("next")
        if following is None or len(chain.api_paths) >= pages:
            break
        last_id = ids[-1]
        url = urlsplit(following["url"])  # https://... as the (simulated) proxy's client sees it
        path = f"{url.path}?{url.query}"
        chain.api_paths.append(path)
        page = len(chain.api_paths)
        chain.baseline_paths.append(
            f"/bench/loans?per_page=100&after={last_id}&page={page}&total={total}"
        )
    whole = following is None
    if whole and seen != total:
        raise SystemExit(f"following Link next gave {seen:,} loans of {total:,}")
    print(
        f"  followed Link next through {len(chain.api_paths):,} pages of loans in "
        f"{time.perf_counter() - started:.0f} s: {seen:,} loans"
        + (f" (all {total:,})" if whole else "")
        + ", each once, in id order"
    )
    return chain


def endpoints(work: Workload, args, chain: SyncChain) -> list[Endpoint]:
    summary = f"period=monthly&date_from={work.date_from}&date_to={work.date_to}"
    by_number = [f"/loans?per_page=100&page={page}" for page in work.loan_pages]
    repayments = [f"/repayments?member_id={m}&per_page=100" for m in work.member_ids]
    summaries = args.summary_requests + SUMMARY_WARMUP
    return [
        Endpoint(
            "GET /loans?per_page=100, then Link next",
            [chain.api_paths[page - 1] for page in work.loan_pages],
            [chain.baseline_paths[page - 1] for page in work.loan_pages],
            args.warmup,
        ),
        Endpoint(
            "GET /loans?per_page=100&page=N",
            [API + p for p in by_number],
            ["/bench" + p for p in by_number],
            args.warmup,
        ),
        Endpoint(
            "GET /repayments?member_id=",
            [API + p for p in repayments],
            ["/bench" + p for p in repayments],
            args.warmup,
        ),
        Endpoint(
            "GET /financial-summary (12 months, monthly)",
            [f"{API}/financial-summary?{summary}"] * summaries,
            [f"/bench/financial-summary?{summary}"] * summaries,
            SUMMARY_WARMUP,
            is_list=False,
        ),
    ]


def check_same_rows(client: Client, endpoint: Endpoint, headers: dict) -> None:
    """The baseline must do the API's work: the same records for the same request."""
    api = client.session().get(client.base + endpoint.api_paths[0], headers=headers, timeout=60)
    bare = client.session().get(
        client.base + endpoint.baseline_paths[0], headers=PROXIED, timeout=60
    )
    if api.status_code != 200:
        raise SystemExit(f"{endpoint.api_paths[0]} answered {api.status_code}: {api.text[:500]}")
    name = endpoint.api_paths[0].split("?")[0].rsplit("/", 1)[-1]
    if endpoint.is_list:
        api_ids = [row["id"] for row in api.json()[name]]
        bare_ids = [row["id"] for row in bare.json()[name]]
        api_total = api.json()["pagination"]["total_items"]
        bare_total = bare.json()["pagination"]["total_items"]
        if (api_ids, api_total) != (bare_ids, bare_total):
            print(
                f"  WARNING {name}: the API answered ids {api_ids[:3]}... of {api_total}, "
                f"the baseline {bare_ids[:3]}... of {bare_total}"
            )


def measure(client: Client, work: Workload, args) -> list[Endpoint]:
    bare = dict(PROXIED)
    headers = {**PROXIED, "Authorization": f"Bearer {work.key}", "Accept": "application/json"}
    chain = walk_sync(client, headers, max(work.loan_pages))
    chosen = endpoints(work, args, chain)
    for endpoint in chosen:
        check_same_rows(client, endpoint, headers)
        warm = endpoint.warmup
        client.run(endpoint.baseline_paths[:warm], bare, Timing())
        client.run(endpoint.api_paths[:warm], headers, Timing())
        # Alternate baseline and API in rounds, so that a burst of outside load hits both.
        timed_api, timed_bare = endpoint.api_paths[warm:], endpoint.baseline_paths[warm:]
        step = -(-len(timed_api) // max(1, args.rounds))
        for start in range(0, len(timed_api), step):
            client.run(timed_bare[start : start + step], bare, endpoint.baseline)
            client.run(timed_api[start : start + step], headers, endpoint.api)
    return chosen


# --- report -------------------------------------------------------------------------------------
def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(label: str, chosen: list[Endpoint], postgres: bool) -> list[str]:
    print(f"\n{label}")
    print(
        f"  {'':<44}{'p50 ms':>8}{'p95 ms':>9}{'req/s':>8}   "
        f"{'baseline p50':>12}{'p95':>9}{'req/s':>8}{'SQL p50':>9}"
    )
    misses = []
    for e in chosen:
        sql = f"{statistics.median(e.baseline.sql_ms):.1f}" if e.baseline.sql_ms else "-"
        print(
            f"  {e.name:<44}{e.api.p50:8.1f}{e.api.p95:9.1f}{e.api.rps:8.1f}   "
            f"{e.baseline.p50:12.1f}{e.baseline.p95:9.1f}{e.baseline.rps:8.1f}{sql:>9}"
        )
        for which, timing in (("API", e.api), ("baseline", e.baseline)):
            if timing.errors:
                print(f"    {len(timing.errors)} {which} errors, e.g. {timing.errors[0]}")
    print("  targets:")
    for e in chosen:
        share = e.api.rps / e.baseline.rps if e.baseline.rps else 0
        line = (
            f"{e.name}: {e.api.rps:.1f} req/s is {share:.1%} of the baseline's "
            f"{e.baseline.rps:.1f} (at least 50%)"
        )
        misses += [] if share >= 0.5 else [f"{label}: {line}"]
        print(f"    {verdict(share >= 0.5)}  {line}")
    for summary in (e for e in chosen if not e.is_list):
        ratio = summary.api.p50 / summary.baseline.p50 if summary.baseline.p50 else 0
        line = (
            f"financial summary p50 {summary.api.p50:.1f} ms is {ratio:.2f}x its bare SQL's "
            f"{summary.baseline.p50:.1f} ms (at most 2x)"
        )
        misses += [] if ratio <= 2 else [f"{label}: {line}"]
        print(f"    {verdict(ratio <= 2)}  {line}")
    for e in (e for e in chosen if e.is_list):
        ok = e.api.p50 < LIST_P50_TARGET_MS
        line = f"{e.name} p50 {e.api.p50:.1f} ms (under {LIST_P50_TARGET_MS} ms on PostgreSQL)"
        if postgres:
            misses += [] if ok else [f"{label}: {line}"]
            print(f"    {verdict(ok)}  {line}")
        else:
            print(f"    ----  {line}: a target on PostgreSQL only")
    return misses


def run_one(url: str, args, tmp: Path) -> list[str]:
    postgres = url.startswith("postgresql")
    label = f"{'PostgreSQL' if postgres else 'SQLite'}: {make_url(url).render_as_string(hide_password=True)}"
    print(f"\n== {label}")
    created = ensure_postgres_database(url) if postgres else False
    if created:
        print(f"  created the database {make_url(url).database}")
    redis_url = claim_redis(args.redis_url)
    try:
        work = prepare(url, redis_url, args)
        print(
            f"  {args.requests} timed requests per list endpoint after {args.warmup} warm-up ones, "
            f"{args.summary_requests} financial summaries after {SUMMARY_WARMUP}; "
            f"{args.threads} client threads; baseline and API alternating in {args.rounds} rounds"
        )
        with gunicorn(url, redis_url, args.workers, tmp / "gunicorn.log") as base:
            client = Client(base, args.threads)
            try:
                chosen = measure(client, work, args)
            finally:
                client.close()
        return report(label, chosen, postgres)
    finally:
        Redis.from_url(redis_url).flushdb()  # the rate-limit counters and jobs; and the claim
        if created and args.drop_created:
            drop_postgres_database(url)
            print(f"  dropped the database {make_url(url).database}")


def main(argv=None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="daystar-api-bench-") as tmp:
        sqlite_url = f"sqlite:///{tmp}/bench.db"
        if args.both:
            urls = [sqlite_url, args.database_url or DEFAULT_POSTGRES]
        else:
            urls = [args.database_url or sqlite_url]
        misses = []
        for url in urls:
            misses += run_one(url, args, Path(tmp))
        print("\nAll targets met." if not misses else "\nMissed:\n  " + "\n  ".join(misses))


if __name__ == "__main__":
    main()
