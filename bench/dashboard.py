"""Dashboard benchmark: seed the 100,000-member demo SACCO and a week of integration traffic, then
time the dashboard page, each of its cards and the activity feed, with the cache cold and warm.

    .venv/bin/python bench/dashboard.py                  # SQLite in a temporary directory
    .venv/bin/python bench/dashboard.py --members 20000 --api-per-day 10000
    .venv/bin/python bench/dashboard.py --database-url postgresql+psycopg://postgres@127.0.0.1/daystar_dashboard_bench
    .venv/bin/python bench/dashboard.py --both           # SQLite, then PostgreSQL (the URL above)

Seeds the demo SACCO (app.services.demo, as `flask --app wsgi seed-demo`), then `--days` days of
integration traffic spread evenly over time, per day by default: 50,000 API request log rows
(2% answered 4xx, 0.5% 5xx), 5,000 M-Pesa transactions (STK pushes, paybill payments and
disbursements) each with its callback, 30,000 notifications and 20,000 integration log entries
(a tenth of them activity); plus API keys, webhook endpoints (one failing), open suspense items,
two registered RQ workers, the scheduler's lock and a few queued and failed jobs. On PostgreSQL
the tables are VACUUM (ANALYZE)d, as autovacuum would have done.

Then, signed in as an administrator through the Flask test client (the app as the web process
runs it, in this process), times `--requests` requests of each of:
- GET /dashboard (the page: placeholders and the activity feed)
- each SACCO figure card (GET /dashboard/cards/<name>) and each integration card
  (GET /dashboard/integrations/<name>), as htmx asks for them
- GET /dashboard/activity (the feed's poll)
"cold": the dashboard cache emptied (Redis and this process) before every request, as the first
poll after the figures went stale; "warm": the figures cached, as every other poll within 15 s.
Cards without cached figures are timed once ("live"). Prints p50/p95/max in milliseconds and the
SQL statements per request, then PASS or MISS for each: p95 under 200 ms. `--explain` prints the
query plans of each cold integration card. Figures, not asserts: the script exits 0 whatever it
measured. SQLite runs in a temporary directory; PostgreSQL in a schema of this run's own (created,
then dropped). Redis: a free database number, flushed at the end.
"""

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from redis import Redis  # noqa: E402
from rq import Worker  # noqa: E402
from sqlalchemy import func, insert, select, text  # noqa: E402

from app import create_app  # noqa: E402
from app.extensions import db  # noqa: E402
from app.jobs import QUEUES, get_queue  # noqa: E402
from app.models import (  # noqa: E402
    ApiKey,
    ApiRequestLog,
    IntegrationLogEntry,
    Member,
    MpesaCallback,
    MpesaTransaction,
    Notification,
    Role,
    SuspenseItem,
    WebhookEndpoint,
)
from app.services import demo, ops_cache, ops_cards, ops_figures, staff  # noqa: E402
from app.services.actor import Actor  # noqa: E402
from bench.api import vacuum  # noqa: E402
from bench.common import (  # noqa: E402
    HelpFormatter,
    claim_redis,
    database_label,
    database_urls,
    print_summary,
    print_targets,
    scoped_database,
)
from bench.portal import QueryLog, explain, percentile  # noqa: E402
from config import TestingConfig, engine_options  # noqa: E402

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/daystar_dashboard_bench"
TARGET_MS = 200
EMAIL = "dashboard-bench@daystar.co.ke"
PASSWORD = "bench-password-0"  # noqa: S105 - a throwaway account in a throwaway database
HTMX = {"HX-Request": "true"}
BATCH = 10_000
SACCO_CARDS = ("members", "active-loans", "portfolio", "repayments-month")
TRAFFIC_TABLES = (
    ApiRequestLog.__table__,
    MpesaTransaction.__table__,
    MpesaCallback.__table__,
    Notification.__table__,
    IntegrationLogEntry.__table__,
    SuspenseItem.__table__,
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--members", type=int, default=100_000, help="members to seed")
    parser.add_argument("--seed", type=int, default=42, help="random seed of the data")
    parser.add_argument("--days", type=int, default=7, help="days of integration traffic")
    parser.add_argument("--api-per-day", type=int, default=50_000, help="API requests a day")
    parser.add_argument("--mpesa-per-day", type=int, default=5_000, help="M-Pesa transactions")
    parser.add_argument("--notify-per-day", type=int, default=30_000, help="notifications a day")
    parser.add_argument("--log-per-day", type=int, default=20_000, help="integration log entries")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per measure")
    parser.add_argument(
        "--database-url",
        help="default: SQLite in a temporary directory; with --both: " + DEFAULT_POSTGRES,
    )
    parser.add_argument(
        "--both",
        action="store_true",
        help="run on SQLite in a temporary directory, then on PostgreSQL at --database-url",
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0", help="Redis server")
    parser.add_argument("--explain", action="store_true", help="print the cold cards' plans")
    args = parser.parse_args(argv)
    if args.members < 1 or args.days < 1 or args.requests < 1:
        parser.error("--members, --days and --requests must be positive")
    return args


def dashboard_app(url: str, redis_url: str):
    """The app as a web process runs it (PostgreSQL without JIT, as configured in production)."""

    class DashboardBenchConfig(TestingConfig):
        SQLALCHEMY_DATABASE_URI = url
        SQLALCHEMY_ENGINE_OPTIONS = engine_options(url)
        REDIS_URL = redis_url
        TESTING = False

    return create_app(DashboardBenchConfig)


# --- seeding ------------------------------------------------------------------------------------
def insert_rows(model, rows) -> int:
    """Insert `rows` (an iterable of dicts) in batches; how many."""
    count, batch = 0, []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            db.session.execute(insert(model), batch)
            count, batch = count + len(batch), []
    if batch:
        db.session.execute(insert(model), batch)
        count += len(batch)
    db.session.commit()
    return count


def moments(rng: Random, now: datetime, days: int, per_day: int):
    """`days * per_day` times spread at random over the last `days` days, oldest first."""
    span = days * 86_400
    return sorted(now - timedelta(seconds=rng.uniform(0, span)) for _ in range(days * per_day))


def api_rows(rng: Random, now: datetime, args, key_ids: list[int]):
    paths = ("/api/accounting/v1/loans", "/api/accounting/v1/repayments",
             "/api/accounting/v1/members", "/api/accounting/v1/financial-summary")  # fmt: skip
    for moment in moments(rng, now, args.days, args.api_per_day):
        roll = rng.random()
        status = 500 if roll < 0.005 else 404 if roll < 0.015 else 401 if roll < 0.025 else 200
        yield {
            "api_key_id": rng.choice(key_ids),
            "method": "GET",
            "path": rng.choice(paths),
            "query": "per_page=100",
            "status": status,
            "duration_ms": int(rng.lognormvariate(3.2, 0.6)),  # median about 25 ms
            "ip": "10.0.0.7",
            "user_agent": "erp-sync/2.1",
            "response_size": rng.randint(200, 60_000),
            "created_at": moment,
        }


def mpesa_rows(rng: Random, now: datetime, args, members: int):
    """(transactions, callbacks): most finished, a few still open in the last hour."""
    transactions, callbacks = [], []
    for n, moment in enumerate(moments(rng, now, args.days, args.mpesa_per_day), start=1):
        kind = rng.choices(("stk_push", "c2b", "b2c"), (70, 20, 10))[0]
        recent = now - moment < timedelta(hours=1)
        roll = rng.random()
        if recent and roll < 0.1:
            status = "pending"
        elif roll < 0.002:
            status = "unknown"
        elif kind == "stk_push" and roll < 0.2:
            status = "failed"
        else:
            status = "completed"
        done = status in ("completed", "failed")
        transactions.append({
            "id": n, "transaction_type": kind, "status": status, "environment": "production",
            "checkout_request_id": f"ws_CO_{n:012d}" if kind == "stk_push" else None,
            "mpesa_receipt_number": f"T{n:09d}" if status == "completed" else None,
            "phone_number": f"2547{rng.randint(0, 99_999_999):08d}",
            "amount": rng.choice((500, 1000, 1500, 2500, 5000)),
            "account_reference": f"DST{rng.randint(1, members):06d}",
            "member_id": rng.randint(1, members), "verification": "not_required",
            "status_checks": 0, "created_at": moment, "updated_at": moment,
            "completed_at": moment + timedelta(seconds=20) if done else None,
        })  # fmt: skip
        if done:
            callbacks.append({
                "kind": "stk" if kind == "stk_push" else f"{kind}_result" if kind == "b2c"
                else "c2b_confirmation", "body": '{"Body": {"stkCallback": {"ResultCode": 0}}}',
                "headers": {}, "remote_addr": "196.201.214.200", "state": "processed",
                "received_at": moment + timedelta(seconds=20), "transaction_id": n,
                "correlation_id": f"ws_CO_{n:012d}",
            })  # fmt: skip
    callbacks.sort(key=lambda row: row["received_at"])
    return transactions, callbacks


def notification_rows(rng: Random, now: datetime, args, members: int):
    for moment in moments(rng, now, args.days, args.notify_per_day):
        channel = rng.choices(("sms", "email"), (75, 25))[0]
        status = rng.choices(("delivered", "sent", "failed", "skipped"), (88, 6, 3, 3))[0]
        yield {
            "recipient_id": rng.randint(1, members),
            "notification_type": "repayment_received",
            "channel": channel,
            "provider": ("africastalking" if channel == "sms" else "sendgrid")
            if status != "skipped" else None,
            "message": "Dear member, we have received your repayment of KES 1,500.00. Asante.",
            "recipient_contact": f"2547{rng.randint(0, 99_999_999):08d}",
            "status": status,
            "retry_count": 0,
            "max_retries": 3,
            "priority": "normal",
            "created_at": moment,
            "updated_at": moment,
        }  # fmt: skip


def log_rows(rng: Random, now: datetime, args, transactions: int):
    for moment in moments(rng, now, args.days, args.log_per_day):
        is_activity = rng.random() < 0.1
        txn = rng.randint(1, transactions)
        yield {
            "created_at": moment,
            "integration": "mpesa" if is_activity else rng.choice(("mpesa", "notifications",
                                                                  "accounting_api", "webhooks")),
            "level": "info" if is_activity or rng.random() < 0.9 else "warning",
            "event": "mpesa.payment_received" if is_activity else "mpesa.callback_processed",
            "message": f"Payment received: KES 1,500.00 from DST{txn:06d}, receipt T{txn:09d}."
            if is_activity else f"stk callback {txn}: credited.",
            "context": {"callback_id": txn},
            "activity": is_activity,
            "mpesa_transaction_id": txn,
        }  # fmt: skip


def seed_traffic(args, rng: Random) -> dict[str, int]:
    """API keys, webhook endpoints and `--days` of integration traffic; rows per table."""
    now = datetime.now(UTC)
    members = db.session.scalar(select(func.max(Member.id)))
    keys = [
        ApiKey(name=f"ERP {n}", prefix=f"dsk_live_{n}", key_hash=f"{n:064d}", permissions=[])
        for n in range(5)
    ]
    db.session.add_all(keys)
    db.session.add_all(
        WebhookEndpoint(
            url=f"https://erp{n}.example/hooks",
            events=["loan.approved"],
            secret_encrypted="not-a-secret",  # noqa: S106 - never used to sign
            failing_since=now - timedelta(hours=3) if n == 0 else None,
        )
        for n in range(5)
    )
    db.session.commit()
    counts = {"api_request_log": insert_rows(
        ApiRequestLog, api_rows(rng, now, args, [k.id for k in keys]))}  # fmt: skip
    transactions, callbacks = mpesa_rows(rng, now, args, members)
    counts["mpesa_transactions"] = insert_rows(MpesaTransaction, transactions)
    counts["mpesa_callbacks"] = insert_rows(MpesaCallback, callbacks)
    counts["notifications"] = insert_rows(Notification, notification_rows(rng, now, args, members))
    counts["integration_log"] = insert_rows(
        IntegrationLogEntry, log_rows(rng, now, args, max(1, len(transactions)))
    )
    counts["mpesa_suspense_items"] = insert_rows(
        SuspenseItem,
        (
            {"source": "c2b", "receipt": f"S{n:09d}", "amount": 1000, "reason": "No such account",
             "status": "open" if n < 20 else "resolved", "created_at": now, "updated_at": now}
            for n in range(300)
        ),
    )  # fmt: skip
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in TRAFFIC_TABLES:
                conn.execute(text(f"VACUUM (ANALYZE) {table.name}"))
    return counts


def seed_redis(redis_url: str) -> list[Worker]:
    """Two registered workers, the scheduler's lock, a few queued and failed jobs."""
    connection = Redis.from_url(redis_url)
    workers = []
    for number in range(2):
        worker = Worker([get_queue(name) for name in QUEUES], connection=connection,
                        name=f"dashboard-bench-{number}")  # fmt: skip
        worker.register_birth()
        workers.append(worker)
    connection.set(ops_figures.CRON_LOCK, "dashboard-bench", ex=3600)
    for name in QUEUES:
        queue = get_queue(name)
        connection.rpush(queue.key, *[f"bench-job-{name}-{n}" for n in range(12)])
        connection.zadd(queue.failed_job_registry.key, {f"bench-failed-{name}": time.time() + 600})
    return workers


def prepare(args) -> dict[str, int]:
    """Create the tables, seed the SACCO and the traffic, create the benchmark admin."""
    db.create_all()
    started = time.perf_counter()
    result = demo.seed(members=args.members, seed=args.seed, if_empty=True)
    print(f"  {result.summary()}".replace("\n", "\n  "))
    if db.engine.dialect.name == "postgresql":
        vacuum(db.engine)
    print(f"  SACCO seeded in {time.perf_counter() - started:.0f} s")
    started = time.perf_counter()
    counts = seed_traffic(args, Random(args.seed))
    print(
        f"  integration traffic ({args.days} days) seeded in {time.perf_counter() - started:.0f} s:"
    )
    print("    " + ", ".join(f"{n:,} {table}" for table, n in counts.items()))
    staff.create_user(EMAIL, PASSWORD, Role.ADMIN, Actor.system("bench"), "Benchmark")
    return counts


# --- timing -------------------------------------------------------------------------------------
def forget_cards(redis_url: str) -> None:
    """Empty the dashboard cache: in Redis and in this process."""
    connection = Redis.from_url(redis_url)
    keys = list(connection.scan_iter(f"{ops_cache.PREFIX}*"))
    if keys:
        connection.delete(*keys)
    ops_cache.forget()


def time_requests(client, log: QueryLog, url: str, count: int, before=None):
    """(milliseconds of each request, SQL statements of the last, its first statement's index)."""
    times, statements, first = [], 0, 0
    for _ in range(count):
        if before:
            before()
        first = log.mark()
        started = time.perf_counter()
        response = client.get(url, headers=HTMX if url != "/dashboard" else {})
        times.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}: {response.text[:300]}")
        statements = log.mark() - first
    return times, statements, first


def measure(client, log: QueryLog, args, redis_url: str) -> list[tuple[str, str, list, int]]:
    """(what, mode, times, SQL statements) for the page, each card and the feed."""
    cold = lambda: forget_cards(redis_url)  # noqa: E731
    plans = []
    urls = {"page /dashboard": "/dashboard", "activity feed": "/dashboard/activity"}
    urls |= {f"card {name}": f"/dashboard/cards/{name}" for name in SACCO_CARDS}
    for url in [*urls.values(), *(f"/dashboard/integrations/{n}" for n in ops_cards.CARDS)]:
        client.get(url, headers=HTMX)  # templates compiled, connections opened
    results = []
    for label, url in urls.items():
        times, statements, _ = time_requests(client, log, url, args.requests)
        results.append((label, "live", times, statements))
    for name, spec in ops_cards.CARDS.items():
        url = f"/dashboard/integrations/{name}"
        if not spec.cached:
            times, statements, _ = time_requests(client, log, url, args.requests)
            results.append((f"integration {name}", "live", times, statements))
            continue
        times, statements, first = time_requests(client, log, url, args.requests, before=cold)
        results.append((f"integration {name}", "cold", times, statements))
        plans.append((name, first, statements))
        times, statements, _ = time_requests(client, log, url, args.requests)
        results.append((f"integration {name}", "warm", times, statements))
    if args.explain:
        for name, first, statements in plans:
            print(f"\n  plans of the cold {name} card:")
            explain(log, first, statements)
    return results


def report(label: str, results) -> list[str]:
    print(f"\n  {'request':<30} {'cache':<5} {'p50':>8} {'p95':>8} {'max':>8}   SQL")
    checks = []
    for what, mode, times, statements in results:
        p50, p95 = statistics.median(times), percentile(times, 0.95)
        print(f"  {what:<30} {mode:<5} {p50:8.1f} {p95:8.1f} {max(times):8.1f}   {statements}")
        checks.append((p95 < TARGET_MS, f"{what} ({mode}): p95 {p95:.1f} ms (under {TARGET_MS})"))
    return print_targets(label, checks)


def run_one(url: str, args) -> list[str]:
    label = database_label(url)
    print(f"\n== {label}")
    with scoped_database(url, "dashboard_bench") as scoped_url:
        redis_url = claim_redis(args.redis_url)
        try:
            app = dashboard_app(scoped_url, redis_url)
            with app.app_context():
                prepare(args)
                workers = seed_redis(redis_url)
                log = QueryLog(db.engine)
                db.session.remove()
            client = app.test_client()
            response = client.post("/auth/login", data={"email": EMAIL, "password": PASSWORD})
            if response.status_code != 302:
                raise SystemExit(f"sign-in failed: {response.status_code} {response.text[:300]}")
            print(f"  timing {args.requests} requests of each (Flask test client, in process)")
            results = measure(client, log, args, redis_url)  # each request in its own context
            with app.app_context():
                for worker in workers:
                    worker.register_death()
                db.session.remove()
                db.engine.dispose()
            return report(label, results)
        finally:
            Redis.from_url(redis_url).flushdb()  # the cache, the workers, the claim


def main(argv=None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="daystar-dashboard-bench-") as tmp:
        misses = []
        for url in database_urls(args, tmp, DEFAULT_POSTGRES):
            misses += run_one(url, args)
        print_summary(misses)


if __name__ == "__main__":
    main()
