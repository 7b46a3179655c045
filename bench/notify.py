"""Notification gateway benchmark: send SMS through the gateway to the provider sandbox with real
RQ workers, apply the sandbox's delivery receipts through the app's callback route under
gunicorn, and compare with posting the same requests to the sandbox directly; then time
enqueueing the weekly contribution reminder (bench/reminders.py) on the same database.

    .venv/bin/python bench/notify.py                  # SQLite in a temporary directory
    .venv/bin/python bench/notify.py --database-url postgresql+psycopg://postgres@127.0.0.1/daystar_notify_bench
    .venv/bin/python bench/notify.py --both           # SQLite, then PostgreSQL (the URL above)
    .venv/bin/python bench/notify.py --messages 2000 --members 20000 --no-reminders   # a quick look

Creates the tables in a SQLite file in a temporary directory, or in a schema of its own in the
PostgreSQL database (created if missing; the schema is dropped at the end), and seeds the demo
SACCO (--members, 100,000: the reminder target's size). Then, with the sandbox
(`flask --app sandbox run`, receipts posted as soon as a message is accepted, from
--receipt-threads threads, as a provider posts them from many servers) in a process of its own:

1. bare baseline: --messages SMS posted straight to the sandbox's Africa's Talking endpoint
   (`POST /version1/messaging`, the form and `apiKey` header the app's client sends) by
   --baseline-senders threads, each a loop with its own `requests.Session`; the sandbox has no
   delivery-report URL yet, so it posts none;
2. `gunicorn -w 2 wsgi:app` starts (production config, DAYSTAR_PUBLIC_BASE_URL pointing at it)
   and becomes the account's delivery-report URL, as in production, where Africa's Talking
   reports on every message the account sends (Sent, then Success) however it was sent;
3. baseline: the same posts again, the sandbox now posting their reports to the app's
   `/callbacks/notify/africastalking/<secret>/status` (they match no notification: kept,
   waiting); once all are in they are deleted. The target is judged against this one, from its
   first post until the app stored its last report (its whole work, as the gateway's ends when
   its last report is applied): both runs then carry the same report traffic on the same two
   cores (the sandbox's posting of them included, which in production is the provider's CPU,
   not ours). How many of its reports the app had stored when the loop ended is printed: with
   too few posting threads the reports fall behind the loop (one thread, sessions 4-5: a sixth
   of them in the loop's time; four, session 7: about half, 4 threads over ~11 ms a post being
   fewer reports a second than the loop's), and the loop's rate alone then leaves out the rest;
4. gateway: the script stores the same SMS, one per member, as a broadcast or a reminder run does
   (`bulk.store()`: one send job per 50; --one-by-one: `gateway.create()`, a send job each, as
   an event's message), normal priority, quiet hours switched off for the run so that a night
   run is not held until the morning; then --rq-workers `python worker.py` processes, as
   deployed (the send jobs run in the worker process; `--fork`: each in a work horse) send them,
   the sandbox posts their reports, and the script waits until every message is sent and every
   receipt applied.

Prints messages per second of the three (the loops' from the first post to the last answer, the
gateway's from the first send to the last by the notifications' sent_at, and of each its whole
work: until the baseline's last report was stored and the gateway's last applied), how long
storing took, the CPU time per message of each process involved (the database server not
counted), then PASS or MISS: the gateway's whole work at least half the baseline's rate. Then
runs bench/reminders.py's measurement on the same database (target: the weekly reminder for
100,000 members enqueued in under 30 s). Figures, not asserts: the script exits 0 whatever it
measured, and non-zero only if the setup fails. Redis: a free database number, flushed at the
end.
"""

import argparse
import os
import secrets
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from redis import Redis  # noqa: E402
from sqlalchemy import delete, func, select  # noqa: E402

from app.extensions import db  # noqa: E402
from app.models import (  # noqa: E402
    Member,
    Notification,
    NotificationAttempt,
    NotificationReceipt,
    NotificationStatus,
    Priority,
)
from app.models.base import utcnow  # noqa: E402
from app.services import settings  # noqa: E402
from app.services.actor import Actor  # noqa: E402
from app.services.notifications import bulk, gateway  # noqa: E402
from bench import reminders as reminders_bench  # noqa: E402
from bench.common import (  # noqa: E402
    HelpFormatter,
    bench_app,
    claim_redis,
    cpu_seconds_by_process,
    database_label,
    database_urls,
    free_port,
    gunicorn,
    is_postgres,
    print_summary,
    print_targets,
    production_environment,
    rq_workers,
    sandbox,
    scoped_database,
    show_log_tails,
)

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/daystar_notify_bench"
PROVIDER = "africastalking"  # the first SMS provider of the default failover order
SEND_PATH = "/version1/messaging"
KIND = "bench_notify"  # notification_type of this script's messages
STORE_PAGE = 1_000  # bulk.store() calls of this many, as the reminders page through members
TEXT = "Daystar SACCO: your November statement is ready. Dial *483*57# to view it. Ref {ref}"
OPEN = (NotificationStatus.PENDING, NotificationStatus.SENDING)
STALLED_AFTER = 120  # seconds without a send or a receipt: something died (see the logs)
# Whose CPU time is counted, by a word of the process's command line (bench.common).
PROCESSES = {"worker.py": "workers", "gunicorn": "gunicorn", "--app sandbox": "sandbox"}


class CpuMeter:
    """CPU seconds spent between start() and stop() by this script and by the processes it
    started (the database server is not among them)."""

    def start(self) -> "CpuMeter":
        self._began = self._now()
        return self

    def stop(self) -> dict[str, float]:
        now = self._now()
        return {name: now[name] - self._began.get(name, 0.0) for name in now}

    @staticmethod
    def _now() -> dict[str, float]:
        own = os.times()
        return {"this script": own.user + own.system, **cpu_seconds_by_process(PROCESSES)}


def per_message(cpu: dict[str, float], count: int) -> str:
    """`12.3 ms (workers 8.1, gunicorn 3.0, ...)` of CPU per message."""
    parts = ", ".join(
        f"{name} {seconds * 1000 / count:.1f}" for name, seconds in cpu.items() if seconds > 0
    )
    return f"{sum(cpu.values()) * 1000 / count:.1f} ms ({parts})"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--messages", type=int, default=10_000, help="SMS to send each way")
    parser.add_argument("--members", type=int, default=100_000, help="members to seed")
    parser.add_argument("--seed", type=int, default=42, help="random seed of the demo data")
    parser.add_argument("--rq-workers", type=int, default=2, help="`python worker.py` processes")
    parser.add_argument(
        "--fork",
        action="store_true",
        help="run the workers as `worker.py --fork` (each job in a forked work horse)",
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument(
        "--one-by-one",
        action="store_true",
        help="store each message with gateway.create() (a send job each, as an event's message) "
        "instead of bulk.store() (a send job per 50, as a broadcast or a reminder run)",
    )
    parser.add_argument(
        "--receipt-threads",
        type=int,
        default=8,
        help="threads the sandbox posts delivery reports from (SANDBOX_CALLBACK_THREADS), as a "
        "provider posts from many servers; with fewer they fall behind the baseline's loop",
    )
    parser.add_argument(
        "--baseline-senders",
        type=int,
        help="threads posting the baseline (default: as many as --rq-workers)",
    )
    parser.add_argument(
        "--timeout", type=float, default=1800, help="seconds to wait for the sends and receipts"
    )
    parser.add_argument(
        "--no-reminders", action="store_true", help="skip the weekly reminder measurement"
    )
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
    if args.messages < 1 or args.members < args.messages:
        parser.error("--messages must be positive and --members at least --messages")
    args.baseline_senders = args.baseline_senders or args.rq_workers
    return args


# --- the messages -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sms:
    member_id: int
    phone: str
    text: str


def plan_messages(count: int) -> list[Sms]:
    """One SMS to each of the first `count` members who take SMS (each text its own)."""
    members = db.session.execute(
        select(Member.id, Member.phone)
        .where(Member.phone.is_not(None), Member.sms_opt_in.is_(True))
        .order_by(Member.id)
        .limit(count)
    ).all()
    if len(members) < count:
        raise SystemExit(f"only {len(members):,} members take SMS; seed more (--members)")
    return [Sms(m.id, m.phone, TEXT.format(ref=f"BN{n:05d}")) for n, m in enumerate(members)]


def switch_quiet_hours_off() -> None:
    """The messages are not urgent (normal priority, the `default` queue), so quiet hours would
    hold them until the morning when the script runs at night: stored off for the run."""
    settings.save(
        "notify",
        {"quiet_hours_start": "00:00", "quiet_hours_end": "00:00"},
        set(),
        Actor.system("bench/notify.py"),
    )


# --- baseline -----------------------------------------------------------------------------------
@dataclass
class Baseline:
    accepted: int
    refused: Counter
    seconds: float  # the loop's, first post to last answer
    cpu: dict  # the loop's
    started_at: datetime  # the app's clock (UTC), as receipts' received_at
    meter: "CpuMeter"  # still running: stopped when the last delivery report is in
    reports_in_window: int = 0  # delivery reports the app had stored when the loop ended
    all_in_seconds: float = 0.0  # from the first post until the app stored the last report
    cpu_all_in: dict | None = None  # until then

    @property
    def per_second(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0

    @property
    def all_in_per_second(self) -> float:
        return self.accepted / self.all_in_seconds if self.all_in_seconds else 0.0


def at_form(credentials: dict, sms: Sms) -> dict:
    """What app/integrations/notify/africastalking.py posts for one message."""
    return {
        "username": credentials["username"],
        "to": "+" + sms.phone,
        "message": sms.text,
        "bulkSMSMode": "1",
    }


def post_directly(sandbox_url: str, credentials: dict, messages: list[Sms], senders: int):
    """The messages posted straight to the sandbox by `senders` threads, each a plain loop with
    a `requests.Session`."""
    url = sandbox_url + SEND_PATH
    headers = {"apiKey": credentials["api_key"], "Accept": "application/json"}
    outcomes = Counter()
    lock = threading.Lock()

    def loop(share: list[Sms]) -> None:
        seen = Counter()
        with requests.Session() as session:
            for sms in share:
                try:
                    response = session.post(
                        url, data=at_form(credentials, sms), headers=headers, timeout=(5, 10)
                    )
                    recipients = response.json()["SMSMessageData"]["Recipients"]
                    seen["Success" if recipients[0]["status"] == "Success" else response.status_code] += 1  # fmt: skip
                except (requests.RequestException, ValueError, KeyError, IndexError) as exc:
                    seen[type(exc).__name__] += 1
        with lock:
            outcomes.update(seen)

    threads = [
        threading.Thread(target=loop, args=(messages[n::senders],), name=f"baseline-{n}")
        for n in range(senders)
    ]
    meter = CpuMeter().start()
    started_at = utcnow()
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    cpu = meter.stop()
    accepted = outcomes.pop("Success", 0)
    return Baseline(accepted, outcomes, seconds, cpu, started_at, meter)


# --- gateway ------------------------------------------------------------------------------------
@dataclass
class GatewayRun:
    stored_seconds: float  # gateway.create() of every message (and the enqueue after each commit)
    first_sent: datetime | None
    last_sent: datetime | None
    last_applied: datetime | None
    statuses: Counter
    receipts: int
    receipts_unapplied: int
    send_ms: list[int]  # the provider's answer, per accepted attempt
    finished: bool
    cpu: dict  # while the workers sent and the receipts came (their start-up excluded)

    @property
    def sending_seconds(self) -> float | None:
        if self.first_sent is None or self.last_sent is None:
            return None
        return (self.last_sent - self.first_sent).total_seconds()

    @property
    def receipts_seconds(self) -> float | None:
        if self.first_sent is None or self.last_applied is None:
            return None
        return (self.last_applied - self.first_sent).total_seconds()


def run_messages():
    return select(Notification.id).where(Notification.notification_type == KIND)


def progress() -> tuple[Counter, int, int]:
    """(statuses of the run's notifications, receipts stored, receipts not applied yet)."""
    statuses = Counter(
        dict(
            db.session.execute(
                select(Notification.status, func.count())
                .where(Notification.notification_type == KIND)
                .group_by(Notification.status)
            ).all()
        )
    )
    receipts, unapplied = db.session.execute(
        select(func.count(), func.count().filter(NotificationReceipt.applied_at.is_(None))).where(
            NotificationReceipt.provider == PROVIDER
        )
    ).one()
    db.session.rollback()  # no snapshot or SQLite read lock held between polls
    return statuses, receipts, unapplied


def store_messages(messages: list[Sms], one_by_one: bool) -> float:
    """The messages stored and their sends enqueued after the commit, the way a broadcast or a
    reminder run does (bulk.store: pages of 1,000, one send job per 50), or with one_by_one the
    way an event's message is (gateway.create(): a send job each); seconds."""
    clock = time.perf_counter()
    if one_by_one:
        for sms in messages:
            gateway.create(sms.member_id, sms.text, "sms", None, {"type": KIND})
    else:
        for start in range(0, len(messages), STORE_PAGE):
            items = [
                bulk.Outgoing(sms.member_id, "sms", sms.phone, sms.text, f"{KIND}:{sms.member_id}")
                for sms in messages[start : start + STORE_PAGE]
            ]
            bulk.store(items, KIND, priority=Priority.NORMAL)
    seconds = time.perf_counter() - clock
    print(
        f"  stored and enqueued {len(messages):,} SMS in {seconds:.1f} s "
        f"({len(messages) / seconds:,.0f}/s), before any worker runs"
    )
    return seconds


def wait_for_sends_and_receipts(stored_seconds: float, timeout: float) -> GatewayRun:
    """Wait until the workers have sent every message and every receipt is applied."""
    meter = CpuMeter().start()
    deadline = time.monotonic() + timeout
    finished = False
    last_seen, moved_at = None, time.monotonic()
    while time.monotonic() < deadline:
        statuses, receipts, unapplied = progress()
        open_ = sum(statuses[s] for s in OPEN)
        # Every message settled, and its receipts (Sent, then Success) in and applied.
        if not open_ and not unapplied and statuses[NotificationStatus.SENT] == 0:
            finished = True
            break
        seen = (sorted(statuses.items()), receipts, unapplied)
        if seen != last_seen:
            last_seen, moved_at = seen, time.monotonic()
        elif time.monotonic() - moved_at > STALLED_AFTER:
            print(f"  nothing moved for {STALLED_AFTER} s: {seen}; giving up waiting")
            break
        time.sleep(0.5)
    cpu = meter.stop()
    statuses, receipts, unapplied = progress()
    first_sent, last_sent = db.session.execute(
        select(func.min(Notification.sent_at), func.max(Notification.sent_at)).where(
            Notification.notification_type == KIND
        )
    ).one()
    last_applied = db.session.scalar(
        select(func.max(NotificationReceipt.applied_at)).where(
            NotificationReceipt.notification_id.in_(run_messages())
        )
    )
    send_ms = list(
        db.session.scalars(
            select(NotificationAttempt.duration_ms).where(
                NotificationAttempt.notification_id.in_(run_messages()),
                NotificationAttempt.outcome == "accepted",
            )
        )
    )
    db.session.rollback()
    return GatewayRun(
        stored_seconds,
        first_sent,
        last_sent,
        last_applied,
        statuses,
        receipts,
        unapplied,
        send_ms,
        finished,
        cpu,
    )


def stored_receipts() -> int:
    db.session.rollback()  # a fresh snapshot
    return db.session.scalar(select(func.count()).where(NotificationReceipt.provider == PROVIDER))


def wait_for_baseline_receipts(baseline: Baseline, timeout: float) -> None:
    """Wait until the baseline's delivery reports have all reached the app (the sandbox posts
    them behind the sends, and when the loop ends some are still to come): when the last was
    stored is the end of the baseline's whole work, as the last receipt applied is the
    gateway's. Then delete them: they belong to no notification, and the gateway's run starts
    with none in flight."""
    expected = 2 * baseline.accepted
    deadline = time.monotonic() + timeout
    while (stored := stored_receipts()) < expected and time.monotonic() < deadline:
        time.sleep(0.1)
    baseline.cpu_all_in = baseline.meter.stop()
    last_stored = db.session.scalar(
        select(func.max(NotificationReceipt.received_at)).where(
            NotificationReceipt.provider == PROVIDER
        )
    )
    if stored >= expected and last_stored:
        baseline.all_in_seconds = (last_stored - baseline.started_at).total_seconds()
    db.session.execute(delete(NotificationReceipt).where(NotificationReceipt.provider == PROVIDER))
    db.session.commit()
    print(f"  baseline: its {stored:,} delivery reports all in; deleted before the gateway's run")


def receipt_round_trips(sandbox_url: str) -> list[float]:
    """How long each receipt post to the app took, as the sandbox recorded it (ms)."""
    deliveries = requests.get(f"{sandbox_url}/sandbox/api/deliveries", timeout=60).json()
    return [d["duration_ms"] for d in deliveries if d["provider"] == PROVIDER and d["duration_ms"]]


def report_to(sandbox_url: str, receipts_url: str) -> None:
    """Make `receipts_url` the sandbox's delivery-report URL for the provider's messages."""
    sandbox_control(sandbox_url, f"/notify/{PROVIDER}/webhook", {"url": receipts_url})


def sandbox_control(sandbox_url: str, path: str, body: dict | None = None):
    response = requests.post(f"{sandbox_url}/sandbox/api{path}", json=body or {}, timeout=30)
    response.raise_for_status()
    return response.json()


# --- report -------------------------------------------------------------------------------------
def median(values) -> float:
    return statistics.median(values) if values else 0.0


def report(
    label: str,
    count: int,
    bare: Baseline,
    baseline: Baseline,
    run: GatewayRun,
    trips: list[float],
    receipt_threads: int,
) -> list[str]:
    sending = run.sending_seconds
    applied_after = run.receipts_seconds
    sent = run.statuses[NotificationStatus.SENT] + run.statuses[NotificationStatus.DELIVERED]
    gateway_rate = (sent - 1) / sending if sending else 0.0
    gateway_all_in = (sent - 1) / applied_after if applied_after else 0.0
    print(f"\n{label}")
    for name, each in (("bare (no delivery reports)", bare), ("with delivery reports", baseline)):
        print(
            f"  baseline {name}, {each.accepted:,} posted straight to the sandbox: "
            f"{each.seconds:.1f} s, {each.per_second:,.1f} messages/s"
            + (f"; refused or failed: {dict(each.refused)}" if each.refused else "")
        )
    print(
        f"  the baseline's loop ended with {baseline.reports_in_window:,} of its "
        f"{2 * baseline.accepted:,} delivery reports stored; the last was stored "
        f"{baseline.all_in_seconds:.1f} s after its first post: {baseline.all_in_per_second:,.1f} "
        "messages/s, its whole work"
    )
    if sending:
        print(
            f"  gateway, {sent:,} SMS sent by the workers in {sending:.1f} s, first to last "
            f"({gateway_rate:,.1f} messages/s); storing and enqueueing them first took "
            f"{run.stored_seconds:.1f} s ({count / run.stored_seconds:,.0f}/s)"
        )
    print(f"  CPU per message, bare baseline: {per_message(bare.cpu, count)}")
    print(
        "  CPU per message, baseline until its last report was stored: "
        + per_message(baseline.cpu_all_in or baseline.cpu, count)
    )
    print(f"  CPU per message, gateway: {per_message(run.cpu, count)}")
    print(
        f"  provider answer p50 {median(run.send_ms):.0f} ms (as the worker timed it); "
        f"statuses {dict(sorted(run.statuses.items()))}"
    )
    if run.finished and applied_after:
        print(
            f"  receipts: all {run.receipts:,} applied {applied_after:.1f} s after the first SMS "
            f"was sent ({applied_after - sending:.1f} s after the last): "
            f"{gateway_all_in:,.1f} messages/s, its whole work; the sandbox's post to the "
            f"callback route took {median(trips):.1f} ms at p50 (from {receipt_threads} "
            "sandbox threads)"
        )
    else:
        print(
            f"  receipts: NOT all applied within the timeout ({run.receipts:,} stored, "
            f"{run.receipts_unapplied:,} not applied)"
        )
    share = _share(gateway_all_in, baseline.all_in_per_second)
    checks = [
        (
            share >= 0.5,
            f"the gateway's {gateway_all_in:,.1f} messages/s (every SMS sent and every report "
            f"applied) is {share:.0%} of the baseline's {baseline.all_in_per_second:,.1f} (every "
            f"SMS posted and every report stored) (at least 50%). Sends alone against the loop "
            f"alone: {_share(gateway_rate, baseline.per_second):.0%} ({gateway_rate:,.1f} against "
            f"{baseline.per_second:,.1f}); against the bare baseline's {bare.per_second:,.1f}: "
            f"{_share(gateway_rate, bare.per_second):.0%}",
        ),
        (
            run.finished and sent == count,
            f"{sent:,} of {count:,} sent and every receipt applied",
        ),
    ]
    return print_targets(label, checks)


def _share(rate: float, of: float) -> float:
    return rate / of if of else 0.0


# --- one database -------------------------------------------------------------------------------
def run_sms(url: str, label: str, args, tmp: Path) -> list[str]:
    redis_url = claim_redis(args.redis_url)
    try:
        app = bench_app(url, redis_url)
        with app.app_context():
            reminders_bench.seed(args.members, args.seed)
            switch_quiet_hours_off()
            messages = plan_messages(args.messages)
            with sandbox(
                tmp / "sandbox.log",
                SANDBOX_CALLBACK_DELAY=0,
                SANDBOX_CALLBACK_THREADS=args.receipt_threads,
            ) as sandbox_url:
                providers = requests.get(f"{sandbox_url}/sandbox/api/notify/", timeout=30).json()
                credentials = providers["providers"][PROVIDER]["credentials"]
                print(
                    f"  baseline, bare: {len(messages):,} SMS from {args.baseline_senders} "
                    "threads straight to the sandbox, which posts no delivery reports"
                )
                bare = post_directly(sandbox_url, credentials, messages, args.baseline_senders)
                sandbox_control(sandbox_url, "/reset")  # forget them; nothing is pending

                callback_secret = secrets.token_urlsafe(24)
                port = free_port()
                base = f"http://127.0.0.1:{port}"
                env = production_environment(
                    url,
                    redis_url,
                    DAYSTAR_PUBLIC_BASE_URL=base,
                    DAYSTAR_SMS_PROVIDERS=PROVIDER,
                    DAYSTAR_AFRICASTALKING_USERNAME=credentials["username"],
                    DAYSTAR_AFRICASTALKING_API_KEY=credentials["api_key"],
                    DAYSTAR_AFRICASTALKING_BASE_URL=sandbox_url,
                    DAYSTAR_AFRICASTALKING_CALLBACK_SECRET=callback_secret,
                    # gunicorn.conf.py as deployed, except that its workers are not recycled
                    # after 2,000 requests: the code measured stays the code that started.
                    GUNICORN_MAX_REQUESTS="0",
                    # Nothing here may reach Safaricom: a closed loopback port fails at once.
                    DAYSTAR_MPESA_ENV="simulator",
                    DAYSTAR_MPESA_BASE_URL="http://127.0.0.1:9",
                )
                receipts_url = f"{base}/callbacks/notify/{PROVIDER}/{callback_secret}/status"
                probe = f"/callbacks/notify/{PROVIDER}/status"  # POST only: 405 when it is up
                worker_options = ["--fork"] if args.fork else []
                with gunicorn(env, args.workers, tmp / "gunicorn.log", "wsgi:app", probe, port):
                    # The account's delivery-report URL is the app's, as in production: every
                    # message accepted, however it was sent, brings its reports (Sent, Success).
                    report_to(sandbox_url, receipts_url)
                    print(
                        f"  baseline: the same, the sandbox posting each message's delivery "
                        f"reports to {base} as for the gateway's (messages of no notification: "
                        "kept, waiting)"
                    )
                    baseline = post_directly(
                        sandbox_url, credentials, messages, args.baseline_senders
                    )
                    baseline.reports_in_window = stored_receipts()
                    wait_for_baseline_receipts(baseline, args.timeout)
                    # The gateway's run starts with a sandbox as empty as the baseline's did.
                    sandbox_control(sandbox_url, "/reset")
                    report_to(sandbox_url, receipts_url)
                    print(
                        f"  gateway: {len(messages):,} SMS stored, then {args.rq_workers} "
                        f"`{' '.join(['worker.py', *worker_options])}` processes send them; "
                        f"receipts to {base}"
                    )
                    stored_seconds = store_messages(messages, args.one_by_one)
                    with rq_workers(env, args.rq_workers, redis_url, tmp, worker_options):
                        run = wait_for_sends_and_receipts(stored_seconds, args.timeout)
                        trips = receipt_round_trips(sandbox_url)
            if not run.finished:
                show_log_tails(tmp)
            db.session.remove()
            db.engine.dispose()
        return report(label, len(messages), bare, baseline, run, trips, args.receipt_threads)
    finally:
        Redis.from_url(redis_url).flushdb()  # the jobs, the workers' keys, and the claim


def run_one(url: str, args, tmp: Path) -> list[str]:
    label = database_label(url)
    print(f"\n== {label}")
    with scoped_database(url, "notify_bench") as scoped_url:
        misses = run_sms(scoped_url, label, args, tmp)
        if not args.no_reminders:
            print("\n  -- the weekly contribution reminder (bench/reminders.py), same database")
            misses += reminders_bench.run_on(scoped_url, label, args)
    return misses


def main(argv=None) -> None:
    args = parse_args(argv)
    # Stopped from outside (SIGTERM): still stop the processes and free Redis.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="daystar-notify-bench-") as tmp:
        misses = []
        for url in database_urls(args, tmp, DEFAULT_POSTGRES):
            run_dir = Path(tmp) / ("postgres" if is_postgres(url) else "sqlite")
            run_dir.mkdir()
            misses += run_one(url, args, run_dir)
        print_summary(misses)


if __name__ == "__main__":
    main()
