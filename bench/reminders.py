"""Reminder benchmark: seed a demo SACCO, then time enqueueing the weekly contribution reminder
for its whole membership (and, for comparison, the daily repayment and overdue reminders).

    .venv/bin/python bench/reminders.py                  # 100,000 members in a temporary SQLite file
    .venv/bin/python bench/reminders.py --members 20000
    .venv/bin/python bench/reminders.py --database-url postgresql+psycopg://postgres@127.0.0.1/daystar_reminders_bench
    .venv/bin/python bench/reminders.py --both           # SQLite, then PostgreSQL (the URL above)

"Enqueued" means what `send_contribution_reminders` does before any provider is called: select
the active members who have not contributed since Monday, render each one's SMS and email from
the templates, store the notifications (one per channel) and put their send jobs in Redis. The
script times it three ways: today, on the demo data as seeded (about 84% of members are active,
and some have contributed this week); again the same day (which must store nothing: once per
member a day); and with every member made active for next week, which nobody has contributed to
yet: the target's case, every one of the --members reminded, in under 30 s. It prints the time,
the notifications stored (SMS and emails) and the send jobs put in Redis, then the repayment-due
and overdue reminders for the same data, and PASS or MISS for each target.
Figures, not asserts: the script exits 0 whatever it measured, and non-zero only if the setup
fails. SQLite runs in a temporary directory; PostgreSQL in a schema of this run's own (created,
then dropped), in the database the URL names (created if missing). Redis: a free database number,
flushed at the end.
"""

import argparse
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from redis import Redis  # noqa: E402
from sqlalchemy import func, select, update  # noqa: E402

from app import clock  # noqa: E402
from app.extensions import db  # noqa: E402
from app.jobs import QUEUES, get_queue  # noqa: E402
from app.models import Member, MemberStatus, Notification  # noqa: E402
from app.services import demo  # noqa: E402
from app.services.notifications import reminders, templates  # noqa: E402
from bench.common import (  # noqa: E402
    bench_app,
    claim_redis,
    database_label,
    database_urls,
    print_summary,
    print_targets,
    scoped_database,
)

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/daystar_reminders_bench"
TARGET_SECONDS = 30.0
TARGET_MEMBERS = 100_000  # reminded members


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--members", type=int, default=100_000, help="members to seed")
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
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0", help="Redis server")
    args = parser.parse_args(argv)
    if args.members < 1:
        parser.error("--members must be positive")
    return args


def seed(members: int, seed_value: int) -> None:
    db.create_all()
    started = time.perf_counter()
    result = demo.seed(members=members, seed=seed_value, if_empty=True)
    if result.skipped:
        print(f"  {result.summary()} Using them.")
    else:
        print(f"  seeded {members:,} members in {time.perf_counter() - started:.1f} s")
    templates.ensure_defaults()


def count(query) -> int:
    return db.session.scalar(select(func.count()).select_from(query.subquery()))


def queued_jobs() -> tuple[int, int]:
    """(send jobs waiting in Redis, notifications they carry)."""
    jobs = notifications = 0
    for name in QUEUES:
        for job in get_queue(name).get_jobs():
            jobs += 1
            notifications += len(job.args[0]) if isinstance(job.args[0], list) else 1
    return jobs, notifications


def clear_queues() -> None:
    for name in QUEUES:
        get_queue(name).empty()


def show(run: reminders.Run, label: str) -> None:
    channels = dict(
        db.session.execute(
            select(Notification.channel, func.count())
            .where(Notification.notification_type == run.kind)
            .where(Notification.dedupe_key.like(f"%:{run.day.isoformat()}:%"))
            .group_by(Notification.channel)
        ).all()
    )
    rate = run.stored / run.seconds if run.seconds else 0
    print(
        f"  {label}: {run.seconds:.1f} s; {run.members:,} members, {run.already:,} of them had it "
        f"already; {run.stored:,} notifications stored ({rate:,.0f}/s): "
        f"{channels.get('sms', 0):,} SMS and {channels.get('email', 0):,} emails"
    )


def show_jobs() -> None:
    jobs, carried = queued_jobs()
    print(f"    {jobs:,} send jobs in Redis carrying {carried:,} notifications")
    clear_queues()


def run_on(url: str, label: str, args) -> list[str]:
    redis_url = claim_redis(args.redis_url)
    try:
        app = bench_app(url, redis_url)
        with app.app_context():
            seed(args.members, args.seed)
            today = clock.today()
            monday, _ = reminders.week_of(today)
            active = count(select(Member.id).where(Member.status == MemberStatus.ACTIVE))
            print(f"  {active:,} active members; today is {today} (the week from {monday})")

            usual = reminders.contribution(today)
            show(usual, "weekly contribution reminder today")
            show_jobs()
            again = reminders.contribution(today)
            show(again, "the same reminder again the same day")

            # The target's case: every member active and nobody has contributed yet this week
            # (next week, which the demo data has not reached).
            db.session.execute(update(Member).values(status=MemberStatus.ACTIVE))
            db.session.commit()
            next_monday = monday + timedelta(days=7)
            everyone = reminders.contribution(next_monday)
            show(everyone, f"all {args.members:,} members active, on {next_monday}")
            show_jobs()

            due = reminders.repayment_due(today)
            show(due, "repayment due in 3 days, today")
            late = reminders.overdue(today)
            show(late, "overdue notices, today")
            clear_queues()

            checks = [
                (
                    everyone.seconds < TARGET_SECONDS,
                    f"the weekly reminder for {everyone.members:,} members enqueued in "
                    f"{everyone.seconds:.1f} s (under {TARGET_SECONDS:.0f} s)",
                ),
                (again.stored == 0, f"a second run the same day stored {again.stored} (zero)"),
            ]
            if everyone.members < TARGET_MEMBERS:
                scaled = everyone.seconds * TARGET_MEMBERS / max(everyone.members, 1)
                print(f"  (for 100,000 members that would be about {scaled:.0f} s)")
            misses = print_targets(label, checks)
            db.session.remove()
            db.engine.dispose()
            return misses
    finally:
        Redis.from_url(redis_url).flushdb()  # the jobs and the claim


def run_one(url: str, args) -> list[str]:
    label = database_label(url)
    print(f"\n== {label}")
    with scoped_database(url, "reminders_bench") as scoped_url:
        return run_on(scoped_url, label, args)


def main(argv=None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="daystar-reminders-bench-") as tmp:
        misses = []
        for url in database_urls(args, tmp, DEFAULT_POSTGRES):
            misses += run_one(url, args)
        print_summary(misses)


if __name__ == "__main__":
    main()
