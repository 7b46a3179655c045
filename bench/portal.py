"""Portal benchmark: seed a demo SACCO, then time the members search and loans list partials.

    .venv/bin/python bench/portal.py                      # 100,000 members in a temporary SQLite file
    .venv/bin/python bench/portal.py --members 20000 --requests 100
    .venv/bin/python bench/portal.py --database-url postgresql+psycopg://postgres@127.0.0.1/bench

Prints the seeding time and row counts, then p50/p95/max in milliseconds of the HTMX partials
(`GET /members/?q=...` and `GET /loans/?status=...` with `HX-Request: true`) through the Flask test
client, and the number of SQL queries each page runs at 25 and at 100 rows a page (it must not grow
with the page size). `--explain` adds the query plans of the slowest request of each page.
Target: p50 under 50 ms for both pages on SQLite. A database that already has members is reused
as it is (nothing is seeded into it); its tables are never dropped.
"""

import argparse
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from random import Random
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import event, func, select  # noqa: E402

from app import create_app  # noqa: E402
from app.extensions import db  # noqa: E402
from app.models import Loan, LoanProduct, LoanStatus, Member, Role, StaffUser  # noqa: E402
from app.services import demo, staff  # noqa: E402
from app.services.actor import Actor  # noqa: E402
from config import TestingConfig  # noqa: E402

EMAIL = "bench@daystar.co.ke"
PASSWORD = "bench-password-0"  # noqa: S105 - a throwaway account in a throwaway database
HTMX = {"HX-Request": "true"}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=100_000, help="members to seed")
    parser.add_argument("--seed", type=int, default=42, help="random seed of the demo data")
    parser.add_argument("--requests", type=int, default=200, help="timed requests per page")
    parser.add_argument("--database-url", help="default: SQLite in a temporary directory")
    parser.add_argument("--explain", action="store_true", help="print the slowest requests' plans")
    return parser.parse_args(argv)


def make_app(url: str):
    class BenchConfig(TestingConfig):
        SQLALCHEMY_DATABASE_URI = url
        TESTING = False

    return create_app(BenchConfig)


class QueryLog:
    """Counts (and keeps) the SQL statements the engine runs."""

    def __init__(self, engine):
        self.engine = engine
        self.statements: list[tuple[str, object]] = []
        event.listen(engine, "before_cursor_execute", self._record)

    def _record(self, _conn, _cursor, statement, parameters, _context, _executemany):
        self.statements.append((statement, parameters))

    def mark(self) -> int:
        return len(self.statements)


def seed(members: int, seed_value: int) -> None:
    db.create_all()
    result = demo.seed(members=members, seed=seed_value, if_empty=True)
    print(result.summary())
    for model in (Member, Loan):
        print(
            f"  {model.__tablename__}: {db.session.scalar(select(func.count()).select_from(model)):,}"
        )
    if db.session.scalar(select(StaffUser.id).where(StaffUser.email == EMAIL)) is None:
        staff.create_user(EMAIL, PASSWORD, Role.ADMIN, Actor.system("bench"), "Benchmark")


def member_queries(rng: Random, count: int) -> list[tuple[str, str]]:
    """(kind, query string) pairs: name, number, phone and national ID prefixes of real members."""
    highest = db.session.scalar(select(func.max(Member.id)))
    ids = [rng.randint(1, highest) for _ in range(count)]
    rows = {m.id: m for m in db.session.scalars(select(Member).where(Member.id.in_(ids)))}
    kinds = ("first name", "last name", "full name", "DST number", "phone", "national ID", "list")
    queries = []
    for n, member_id in enumerate(ids):
        m = rows.get(member_id) or next(iter(rows.values()))
        kind = kinds[n % len(kinds)]
        q = {
            "first name": m.first_name[: rng.randint(2, len(m.first_name))],
            "last name": m.last_name[: rng.randint(3, len(m.last_name))].lower(),
            "full name": f"{m.first_name} {m.last_name[:2]}",
            "DST number": m.member_number[: rng.randint(6, 9)],
            "phone": "0" + m.phone[3 : rng.randint(7, 12)],
            "national ID": m.national_id[: rng.randint(4, 8)],
            "list": "",
        }[kind]
        params = {"q": q, **({"status": "active"} if n % 5 == 4 else {})}
        queries.append((kind, f"/members/?{urlencode(params)}"))
    return queries


def loan_queries(rng: Random, count: int) -> list[tuple[str, str]]:
    """(kind, query string) pairs over the loans list filters and a few pages."""
    products = list(db.session.scalars(select(LoanProduct.id)))
    newest = db.session.scalar(select(func.max(Loan.application_date)))
    recent = (newest - timedelta(days=90)).isoformat()
    statuses = [s.value for s in LoanStatus]
    queries = []
    for n in range(count):
        kind = ("all", "status", "status+product", "date range", "deep page")[n % 5]
        url = {
            "all": f"/loans/?page={rng.randint(1, 3)}",
            "status": f"/loans/?status={rng.choice(statuses)}&page={rng.randint(1, 3)}",
            "status+product": f"/loans/?status={rng.choice(statuses)}"
            f"&product_id={rng.choice(products)}",
            "date range": f"/loans/?date_from={recent}&status={rng.choice(statuses)}",
            "deep page": f"/loans/?status=active&page={rng.randint(20, 200)}",
        }[kind]
        queries.append((kind, url))
    return queries


def timed(client, log: QueryLog, url: str) -> tuple[float, int, int]:
    """(milliseconds, SQL statements, first statement index) of one partial request."""
    start_mark = log.mark()
    started = time.perf_counter()
    response = client.get(url, headers=HTMX)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200 or b"<html" in response.data:
        raise SystemExit(
            f"{url} answered {response.status_code} (or a full page): {response.text[:300]}"
        )
    return elapsed, log.mark() - start_mark, start_mark


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def report(title: str, samples: list[tuple[str, float, int]]) -> None:
    times = [ms for _, ms, _ in samples]
    print(
        f"\n{title}: {len(times)} requests  p50 {statistics.median(times):.1f} ms  "
        f"p95 {percentile(times, 0.95):.1f} ms  max {max(times):.1f} ms"
    )
    by_kind = defaultdict(list)
    for kind, ms, queries in samples:
        by_kind[kind].append((ms, queries))
    for kind, values in by_kind.items():
        ms = [v for v, _ in values]
        counts = sorted({q for _, q in values})
        print(
            f"  {kind:<15} n={len(ms):<4} p50 {statistics.median(ms):6.1f}  "
            f"p95 {percentile(ms, 0.95):6.1f}  max {max(ms):6.1f} ms   SQL/request {counts}"
        )


def explain(log: QueryLog, first: int, count: int) -> None:
    with log.engine.connect() as conn:
        prefix = "EXPLAIN QUERY PLAN " if conn.dialect.name == "sqlite" else "EXPLAIN "
        for statement, parameters in log.statements[first : first + count]:
            if not statement.lstrip().upper().startswith("SELECT"):
                continue
            print(f"    {' '.join(statement.split())[:300]}")
            for row in conn.exec_driver_sql(prefix + statement, parameters):
                print(f"      {' | '.join(str(v) for v in row)}")


def bench_page(client, log, title, queries, explain_slowest: bool) -> None:
    for _, url in queries[:5]:  # warm-up: templates compiled, pages cached by the database
        client.get(url, headers=HTMX)
    samples, slowest = [], (0.0, "", 0, 0)
    for kind, url in queries:
        ms, count, first = timed(client, log, url)
        samples.append((kind, ms, count))
        slowest = max(slowest, (ms, url, first, count))
    report(title, samples)
    print(f"  slowest: {slowest[1]} ({slowest[0]:.1f} ms)")
    if explain_slowest:
        explain(log, slowest[2], slowest[3])


def query_counts(client, log, urls: dict[str, str]) -> None:
    print("\nSQL statements per request (including the signed-in user's lookup):")
    for label, url in urls.items():
        counts = []
        for per_page in (25, 100):
            _, count, _ = timed(
                client, log, f"{url}{'&' if '?' in url else '?'}per_page={per_page}"
            )
            counts.append(count)
        print(f"  {label:<28} per_page=25: {counts[0]}   per_page=100: {counts[1]}")


def main(argv=None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="daystar-bench-") as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.db"
        app = make_app(url)
        print(f"Database: {url.split('@')[-1]}")
        with app.app_context():
            started = time.perf_counter()
            seed(args.members, args.seed)
            print(f"Ready in {time.perf_counter() - started:.1f} s")
            rng = Random(args.seed)
            members_urls = member_queries(rng, args.requests)
            loans_urls = loan_queries(rng, args.requests)
            log = QueryLog(db.engine)
        client = app.test_client()
        response = client.post("/auth/login", data={"email": EMAIL, "password": PASSWORD})
        if response.status_code != 302:
            raise SystemExit(f"sign-in failed: {response.status_code} {response.text[:300]}")
        bench_page(client, log, "Members search partial", members_urls, args.explain)
        bench_page(client, log, "Loans list partial", loans_urls, args.explain)
        query_counts(
            client,
            log,
            {
                "members list": "/members/",
                "members search 'wa'": "/members/?q=wa",
                "loans list": "/loans/",
                "loans status=active": "/loans/?status=active",
            },
        )
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


if __name__ == "__main__":
    main()
