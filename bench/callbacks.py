"""M-Pesa callback benchmark: serve the app with gunicorn and real RQ workers, post one STK
success callback per pending payment (and 10% duplicates) from many concurrent senders, and check
that every one was acknowledged at once, stored, and credited exactly once.

    .venv/bin/python bench/callbacks.py                  # SQLite in a temporary directory
    .venv/bin/python bench/callbacks.py --database-url postgresql+psycopg://postgres@127.0.0.1/daystar_callbacks_bench
    .venv/bin/python bench/callbacks.py --both           # SQLite, then PostgreSQL (the URL above)

Creates the tables in a SQLite file in a temporary directory, or in a schema of its own in the
PostgreSQL database (created if missing; the schema is dropped at the end), seeds the demo SACCO
and records --payments pending STK requests, each with its own CheckoutRequestID,
MerchantRequestID, amount, phone and receipt, for a contribution or a loan repayment. Starts
`gunicorn -w 2` with the deployed gunicorn.conf.py (production config, throwaway secrets, a free
Redis database number) and --rq-workers `python worker.py --no-fork` processes (as the Procfile
runs the `high` queue; --fork for work horses), then posts, in alternating rounds from --senders
threads with a `requests.Session` each, as fast as they are answered (saturation):

- POST /callbacks/mpesa/<secret>/stk  the callback, in the shape of Daraja's official sample
  (shared/reference/mpesa/samples/stk_callback_success.json), plus --duplicates of them again,
  half in flight at the same time as their original and half later;
- POST /bench/raw-callback            the baseline (bench/callbacks_app.py): the same bodies, only
  inserted into a table of its own.

The last --paced-share of the callbacks then go at a steady rate (--paced-rate; by default half
the rate the route reached at saturation), each due at its time whether or not earlier ones were
answered, as Safaricom sends them: the acknowledgement latency of a callback route is what a
sender sees below saturation. (At saturation, 32 senders that post again the moment they are
answered keep gunicorn's queue full: there the latency is the queue, the same for any route.)

It then waits (--process-timeout) until the workers have processed every stored callback, and
prints acknowledgements per second, p50/p99 latency and where the server's time went (its
Server-Timing header), the time until all were processed, and the counts credited, duplicated,
credited twice and lost; then PASS or MISS for each target: p99 acknowledgement under 100 ms (in
the paced phase), at least half the baseline's throughput (at saturation), zero lost, zero
credited twice. Figures, not asserts: the
script exits 0 whatever it measured, and non-zero only if the setup fails.
"""

import argparse
import contextlib
import copy
import dataclasses
import json
import math
import random
import secrets
import signal
import string
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from redis import Redis  # noqa: E402
from sqlalchemy import func, insert, select  # noqa: E402

from app import clock  # noqa: E402
from app.extensions import db  # noqa: E402
from app.models import (  # noqa: E402
    CallbackState,
    Contribution,
    Loan,
    Member,
    MemberStatus,
    MpesaCallback,
    MpesaStatus,
    MpesaTransaction,
    MpesaType,
    PaymentMethod,
    PaymentPurpose,
    Repayment,
)
from app.services import demo  # noqa: E402
from app.services.repayments import REPAYABLE  # noqa: E402
from bench.callbacks_app import RAW_CALLBACKS  # noqa: E402
from bench.common import (  # noqa: E402
    HelpFormatter,
    bench_app,
    claim_redis,
    database_label,
    database_urls,
    gunicorn,
    is_postgres,
    print_summary,
    print_targets,
    production_environment,
    rq_workers,
    scoped_database,
    show_log_tails,
)

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/daystar_callbacks_bench"
SAMPLE = ROOT / "tests" / "data" / "mpesa" / "stk_callback_success.json"  # Daraja's sample, copied
BASELINE_PATH = "/bench/raw-callback"
APP_SPEC = "bench.callbacks_app:create_bench_app()"  # the real app, plus the baseline route
ACCEPTED = {"ResultCode": 0, "ResultDesc": "Accepted"}
P99_TARGET_MS = 100
AMOUNT_MARK = "@amount@"  # replaced by the amount written as Daraja writes it: 250.00
OPEN = (MpesaStatus.QUEUED, MpesaStatus.PENDING, MpesaStatus.UNKNOWN)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--payments", type=int, default=5000, help="pending STK requests to settle")
    parser.add_argument(
        "--duplicates", type=float, default=0.10, help="share of callbacks sent a second time"
    )
    parser.add_argument(
        "--loan-share", type=float, default=0.4, help="share of payments that repay a loan"
    )
    parser.add_argument("--members", type=int, default=3000, help="members to seed")
    parser.add_argument("--seed", type=int, default=42, help="random seed of data and order")
    parser.add_argument("--senders", type=int, default=32, help="concurrent sender threads")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--rq-workers", type=int, default=2, help="`python worker.py` processes")
    parser.add_argument("--rounds", type=int, default=5, help="baseline/callback alternations")
    parser.add_argument(
        "--paced-share",
        type=float,
        default=0.2,
        help="share of the callbacks sent last at a steady rate, for the latency target",
    )
    parser.add_argument(
        "--paced-rate",
        type=float,
        help="callbacks a second of the paced phase (default: half the rate the route reached "
        "at saturation in this run)",
    )
    parser.add_argument(
        "--fork",
        action="store_true",
        help="run the RQ workers with a work horse per job (default: --no-fork, as the Procfile "
        "runs the `high` queue that callbacks use)",
    )
    parser.add_argument(
        "--warmup", type=int, default=64, help="posts to each route before timing (still checked)"
    )
    parser.add_argument(
        "--process-timeout",
        type=float,
        default=1800,
        help="seconds to wait for the workers after the last post",
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
    if args.payments < 1 or not 0 <= args.duplicates <= 1 or not 0 <= args.loan_share <= 1:
        parser.error("--payments must be positive; --duplicates and --loan-share 0 to 1")
    if not 0 <= args.paced_share < 1 or (args.paced_rate is not None and args.paced_rate <= 0):
        parser.error("--paced-share must be 0 to 1 (exclusive); --paced-rate positive")
    return args


# --- the payments we pretend to have requested --------------------------------------------------
@dataclass(frozen=True)
class Payment:
    """One pending STK request of this run and what its callback will say."""

    checkout_request_id: str
    merchant_request_id: str
    amount: int
    phone: str
    receipt: str
    purpose: str


@dataclass(frozen=True)
class Post:
    payment: Payment
    body: bytes
    duplicate: bool


def create_tables_and_members(members: int, seed: int) -> None:
    """The app's tables and the baseline's, and the demo SACCO (unless members exist)."""
    db.create_all()
    RAW_CALLBACKS.create(db.engine, checkfirst=True)
    started = time.perf_counter()
    result = demo.seed(members=members, seed=seed, if_empty=True)
    if result.skipped:
        print(f"  {result.summary()} Using them.")
    else:
        print(f"  seeded {members:,} members in {time.perf_counter() - started:.1f} s")


def new_run_tag() -> str:
    """Three letters that begin no checkout id and no ledger reference yet: the prefix of this
    run's ids and receipts, so that its rows can be counted apart from everything else."""
    chooser = random.SystemRandom()
    while True:
        tag = "".join(chooser.choices(string.ascii_uppercase, k=3))
        taken = [
            select(MpesaTransaction.id).where(
                MpesaTransaction.checkout_request_id.startswith(f"ws_CO_{tag}")
            ),
            select(Repayment.id).where(Repayment.reference.startswith(tag)),
            select(Contribution.id).where(Contribution.reference.startswith(tag)),
        ]
        if not any(db.session.scalar(query.limit(1)) for query in taken):
            return tag


def record_pending_payments(count: int, loan_share: float, tag: str, rng: random.Random):
    """`count` pending STK requests as `sent_stk` in tests/mpesa records them: a contribution of
    a member who has not exited, or a repayment no larger than what its loan still owes."""
    members = db.session.execute(
        select(Member.id, Member.phone, Member.member_number).where(
            Member.status != MemberStatus.EXITED
        )
    ).all()
    loans = db.session.execute(
        select(Loan.id, Loan.member_id, Loan.balance, Member.phone, Member.member_number)
        .join(Member, Member.id == Loan.member_id)
        .where(Loan.status.in_(REPAYABLE))
    ).all()
    owed = {loan.id: loan.balance for loan in loans}
    payments, rows = [], []
    for number in range(count):
        loan = rng.choice(loans) if loans and rng.random() < loan_share else None
        amount = rng.randint(50, 5000)
        if loan is not None:
            amount = min(amount, int(owed[loan.id]))
            if amount < 10:
                loan = None
                amount = rng.randint(50, 5000)
        if loan is not None:
            owed[loan.id] -= amount
            member_id, phone, reference = loan.member_id, loan.phone, loan.member_number
            purpose = PaymentPurpose.LOAN_REPAYMENT
        else:
            member = rng.choice(members)
            member_id, phone, reference = member.id, member.phone, member.member_number
            purpose = PaymentPurpose.CONTRIBUTION
        payment = Payment(
            checkout_request_id=f"ws_CO_{tag}{number:010d}",
            merchant_request_id=f"{tag}-{number:08d}-1",
            amount=amount,
            phone=phone,
            receipt=f"{tag}{number:07d}",
            purpose=purpose,
        )
        payments.append(payment)
        rows.append(
            {
                "transaction_type": MpesaType.STK_PUSH,
                "status": MpesaStatus.PENDING,
                "environment": "simulator",
                "merchant_request_id": payment.merchant_request_id,
                "checkout_request_id": payment.checkout_request_id,
                "phone_number": phone,
                "amount": Decimal(amount).quantize(Decimal("0.01")),
                "account_reference": reference,
                "member_id": member_id,
                "loan_id": loan.id if loan is not None else None,
                "payment_purpose": purpose,
                "contribution_kind": "deposit" if purpose == PaymentPurpose.CONTRIBUTION else None,
            }
        )
    db.session.execute(insert(MpesaTransaction), rows)
    db.session.commit()
    return payments


def load_sample() -> dict:
    if not SAMPLE.exists():
        raise SystemExit(f"the official sample is missing: {SAMPLE}")
    return json.loads(SAMPLE.read_text())


def callback_body(sample: dict, payment: Payment, paid_at: str) -> bytes:
    """Daraja's success callback for this payment, in the exact shape of the official sample."""
    data = copy.deepcopy(sample)
    stk = data["Body"]["stkCallback"]
    stk["MerchantRequestID"] = payment.merchant_request_id
    stk["CheckoutRequestID"] = payment.checkout_request_id
    values = {
        "Amount": AMOUNT_MARK,
        "MpesaReceiptNumber": payment.receipt,
        "TransactionDate": int(paid_at),
        "PhoneNumber": int(payment.phone),
    }
    for item in stk["CallbackMetadata"]["Item"]:
        item["Value"] = values.get(item["Name"], item.get("Value"))
    text = json.dumps(data, indent=4).replace(f'"{AMOUNT_MARK}"', f"{payment.amount}.00")
    return text.encode()


def plan_posts(payments: list[Payment], duplicates: float, senders: int, rng: random.Random):
    """Every payment's callback once, in random order, and `duplicates` of them a second time:
    half right behind their original (in flight together), half some rounds of senders later."""
    sample = load_sample()
    paid_at = datetime.now(clock.NAIROBI).strftime("%Y%m%d%H%M%S")
    order = rng.sample(payments, len(payments))
    keyed = [
        (float(i), Post(p, callback_body(sample, p, paid_at), False)) for i, p in enumerate(order)
    ]
    repeated = rng.sample(range(len(order)), round(len(order) * duplicates))
    half = len(repeated) // 2
    for place in repeated[:half]:
        keyed.append((place + 0.5, Post(order[place], keyed[place][1].body, True)))
    for place in repeated[half:]:
        later = place + 2 * senders
        keyed.append((rng.uniform(later, max(later, len(order))), Post(order[place], keyed[place][1].body, True)))  # fmt: skip
    keyed.sort(key=lambda pair: pair[0])
    return [post for _, post in keyed], half


# --- processes ----------------------------------------------------------------------------------
def server_environment(url: str, redis_url: str, callback_secret: str) -> dict[str, str]:
    """As deployed: production config, secrets from the environment (throwaway ones here)."""
    return production_environment(
        url,
        redis_url,
        DAYSTAR_MPESA_CALLBACK_SECRET=callback_secret,
        # Nothing here may reach Safaricom: a closed loopback port fails at once.
        DAYSTAR_MPESA_ENV="simulator",
        DAYSTAR_MPESA_BASE_URL="http://127.0.0.1:9",
    )


# --- sending ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Ack:
    checkout_request_id: str
    latency_ms: float
    status: int  # 0: no answer at all
    accepted: bool  # 200 with Daraja's {"ResultCode": 0, ...}
    server_ms: dict[str, float]  # the Server-Timing parts


@dataclass
class RouteTiming:
    acks: list[Ack] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def accepted(self) -> list[Ack]:
        return [ack for ack in self.acks if ack.accepted]

    @property
    def per_second(self) -> float:
        return len(self.accepted) / self.seconds if self.seconds else 0.0

    def latency(self, quantile: float) -> float:
        return percentile([ack.latency_ms for ack in self.acks], quantile)

    def server(self, part: str, quantile: float) -> float:
        return percentile([ack.server_ms.get(part, 0.0) for ack in self.acks], quantile)


def percentile(values: list[float], quantile: float) -> float:
    """The nearest-rank percentile (p99 of 5,000 values is the 4,950th smallest)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(quantile * len(ordered)) - 1)]


def server_timing(header: str) -> dict[str, float]:
    parts = {}
    for part in header.split(","):
        name, _, duration = part.strip().partition(";dur=")
        with contextlib.suppress(ValueError):
            parts[name] = float(duration)
    return parts


class Senders:
    """A pool of threads, each posting with its own `requests.Session`, as Safaricom's many
    connections would."""

    def __init__(self, base: str, threads: int):
        self.base = base
        self.local = threading.local()
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="bench-sender")

    def session(self) -> requests.Session:
        session = getattr(self.local, "session", None)
        if session is None:
            session = self.local.session = requests.Session()
        return session

    def post(self, path: str, post: Post) -> Ack:
        started = time.perf_counter()
        try:
            response = self.session().post(
                self.base + path,
                data=post.body,
                headers={"Content-Type": "application/json"},
                timeout=60,
            )
            answer = response.content
        except requests.RequestException:
            return Ack(post.payment.checkout_request_id, (time.perf_counter() - started) * 1000, 0, False, {})  # fmt: skip
        elapsed = (time.perf_counter() - started) * 1000
        accepted = False
        if response.status_code == 200:
            with contextlib.suppress(ValueError):
                accepted = json.loads(answer) == ACCEPTED
        timing = server_timing(response.headers.get("Server-Timing", ""))
        return Ack(
            post.payment.checkout_request_id, elapsed, response.status_code, accepted, timing
        )

    def send(self, path: str, posts: list[Post], timing: RouteTiming) -> None:
        started = time.perf_counter()
        acks = list(self.pool.map(lambda post: self.post(path, post), posts))
        timing.seconds += time.perf_counter() - started
        timing.acks += acks

    def paced(self, path: str, posts: list[Post], rate: float, timing: RouteTiming) -> None:
        """Post at a steady `rate` a second whatever the answers take (as Safaricom sends: it
        does not wait for one callback's answer before sending the next). Each latency counts
        from the moment its post was due, so a post that waited for a free sender counts that
        wait too."""
        began = time.perf_counter() + 0.1

        def due(number: int, post: Post) -> Ack:
            at = began + number / rate
            time.sleep(max(0.0, at - time.perf_counter()))
            ack = self.post(path, post)
            late_ms = (time.perf_counter() - at) * 1000 - ack.latency_ms
            return dataclasses.replace(ack, latency_ms=ack.latency_ms + max(0.0, late_ms))

        acks = list(self.pool.map(due, range(len(posts)), posts))
        timing.seconds += time.perf_counter() - began
        timing.acks += acks

    def close(self) -> None:
        self.pool.shutdown(cancel_futures=True)


@dataclass
class Sent:
    callbacks: RouteTiming  # at saturation: every sender posts again as soon as it is answered
    baseline: RouteTiming
    paced: RouteTiming  # at a steady rate below saturation: the acknowledgement latency target
    paced_rate: float
    warmup_acks: list[Ack]
    first_post_at: float
    last_post_at: float

    @property
    def callback_acks(self) -> list[Ack]:
        return self.warmup_acks + self.callbacks.acks + self.paced.acks


def send_everything(senders: Senders, callback_path: str, posts: list[Post], args) -> Sent:
    """Warm both routes up, then post the callbacks and the baseline in alternating rounds (the
    baseline first in even rounds, last in odd ones), so that outside load hits both alike, as
    fast as the senders can (saturation: throughput); then the last --paced-share of the
    callbacks at a steady rate (latency)."""
    callbacks, baseline, paced = RouteTiming(), RouteTiming(), RouteTiming()
    paced_from = len(posts) - round(len(posts) * args.paced_share)
    posts, paced_posts = posts[:paced_from], posts[paced_from:]
    warm, timed = posts[: args.warmup], posts[args.warmup :]
    first_post_at = time.perf_counter()
    warmup = RouteTiming()
    senders.send(callback_path, warm, warmup)
    senders.send(BASELINE_PATH, warm, RouteTiming())
    step = max(1, math.ceil(len(timed) / max(1, args.rounds)))
    for number, start in enumerate(range(0, len(timed), step)):
        chunk = timed[start : start + step]
        order = [(BASELINE_PATH, baseline), (callback_path, callbacks)]
        for path, timing in order if number % 2 == 0 else reversed(order):
            senders.send(path, chunk, timing)
    rate = args.paced_rate or max(1.0, callbacks.per_second / 2)
    if paced_posts:
        senders.paced(callback_path, paced_posts, rate, paced)
    return Sent(callbacks, baseline, paced, rate, warmup.acks, first_post_at, time.perf_counter())


# --- after the posts ----------------------------------------------------------------------------
def run_callbacks(tag: str):
    return MpesaCallback.correlation_id.startswith(f"ws_CO_{tag}")


def wait_until_processed(tag: str, expected: int, timeout: float) -> float | None:
    """Poll until at least `expected` callbacks of this run are stored and none waits for its
    job; the moment that happened (perf_counter), or None after `timeout` seconds."""
    deadline = time.perf_counter() + timeout
    while True:
        stored, waiting = db.session.execute(
            select(
                func.count(),
                func.count().filter(MpesaCallback.state == CallbackState.RECEIVED),
            ).where(run_callbacks(tag))
        ).one()
        db.session.rollback()  # no snapshot or SQLite read lock held between polls
        if stored >= expected and not waiting:
            return time.perf_counter()
        if time.perf_counter() > deadline:
            return None
        time.sleep(0.25)


@dataclass
class Outcomes:
    credited: int  # completed with exactly one ledger row for its receipt
    duplicated: int  # callbacks recorded as duplicates
    credited_twice: int  # receipts on the ledger more than once + transactions credited twice
    still_pending: int
    never_stored: int  # acknowledged deliveries with no stored row
    never_processed: int  # stored rows still waiting for their job
    transaction_states: Counter
    callback_states: Counter

    @property
    def lost(self) -> int:
        return self.still_pending + self.never_stored + self.never_processed


def count_outcomes(tag: str, acks: list[Ack]) -> Outcomes:
    """What the database says happened to this run's payments and callbacks."""
    transactions = db.session.execute(
        select(MpesaTransaction.id, MpesaTransaction.status, MpesaTransaction.mpesa_receipt_number)
        .where(MpesaTransaction.checkout_request_id.startswith(f"ws_CO_{tag}"))
    ).all()  # fmt: skip
    ledger = Counter()
    for model in (Repayment, Contribution):
        ledger.update(
            db.session.scalars(
                select(model.reference).where(
                    model.method == PaymentMethod.MPESA, model.reference.startswith(tag)
                )
            )
        )
    callbacks = db.session.execute(
        select(MpesaCallback.correlation_id, MpesaCallback.state, MpesaCallback.transaction_id)
        .where(run_callbacks(tag))
    ).all()  # fmt: skip
    db.session.rollback()
    credits_per_transaction = Counter(
        c.transaction_id for c in callbacks if c.state == CallbackState.PROCESSED
    )
    stored = Counter(c.correlation_id for c in callbacks)
    acknowledged = Counter(ack.checkout_request_id for ack in acks if ack.accepted)
    return Outcomes(
        credited=sum(
            1
            for t in transactions
            if t.status == MpesaStatus.COMPLETED and ledger[t.mpesa_receipt_number] == 1
        ),
        duplicated=sum(1 for c in callbacks if c.state == CallbackState.DUPLICATE),
        credited_twice=sum(1 for n in ledger.values() if n > 1)
        + sum(1 for n in credits_per_transaction.values() if n > 1),
        still_pending=sum(1 for t in transactions if t.status in OPEN),
        never_stored=sum(max(0, n - stored[checkout]) for checkout, n in acknowledged.items()),
        never_processed=sum(1 for c in callbacks if c.state == CallbackState.RECEIVED),
        transaction_states=Counter(t.status for t in transactions),
        callback_states=Counter(c.state for c in callbacks),
    )


# --- report -------------------------------------------------------------------------------------
def report(
    label: str, sent: Sent, outcomes: Outcomes, done_at: float | None, posts: int
) -> list[str]:
    callbacks, baseline = sent.callbacks, sent.baseline
    print(f"\n{label}")
    print(
        f"  {'':<30}{'ack/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}   server p50/p99 ms:"
        f"{'app':>13}{'sql':>12}{'commit':>12}{'redis':>12}"
    )
    rows = (
        ("STK callback route", callbacks),
        ("baseline (raw insert)", baseline),
        (f"STK route paced at {sent.paced_rate:.0f}/s", sent.paced),
    )
    for name, timing in rows:
        if not timing.acks:
            continue
        parts = "".join(
            f"{timing.server(part, 0.5):>6.1f}/{timing.server(part, 0.99):<6.1f}"
            for part in ("app", "sql", "commit", "redis")
        )
        print(
            f"  {name:<30}{timing.per_second:8.1f}{timing.latency(0.5):9.1f}"
            f"{timing.latency(0.99):9.1f}{timing.latency(1.0):9.1f}{'':21}{parts}"
        )
        refused = Counter(ack.status for ack in timing.acks if not ack.accepted)
        if refused:
            print(f"    not acknowledged: {dict(refused)} (HTTP status: count; 0 = no answer)")
    if done_at is None:
        print("  processing: NOT finished within the timeout")
    else:
        total = done_at - sent.first_post_at
        print(
            f"  processing: all {posts:,} callbacks processed {total:.1f} s after the first post "
            f"({done_at - sent.last_post_at:.1f} s after the last); {posts / total:.0f} callbacks/s"
        )
    print(
        f"  credited {outcomes.credited:,} (completed with exactly one ledger row); "
        f"duplicated {outcomes.duplicated:,}; credited twice {outcomes.credited_twice}; "
        f"lost {outcomes.lost} (still pending {outcomes.still_pending}, acknowledged but never "
        f"stored {outcomes.never_stored}, stored but never processed {outcomes.never_processed})"
    )
    print(
        f"  transactions: {dict(sorted(outcomes.transaction_states.items()))}; "
        f"callbacks: {dict(sorted(outcomes.callback_states.items()))}"
    )
    share = callbacks.per_second / baseline.per_second if baseline.per_second else 0.0
    latency = sent.paced if sent.paced.acks else callbacks
    checks = [
        (
            latency.latency(0.99) < P99_TARGET_MS,
            f"p99 acknowledgement {latency.latency(0.99):.1f} ms at {sent.paced_rate:.0f} "
            f"callbacks/s (under {P99_TARGET_MS} ms; at saturation, which is mostly the "
            f"requests' wait in gunicorn's queue, {callbacks.latency(0.99):.1f} ms)",
        ),
        (
            share >= 0.5,
            f"{callbacks.per_second:.1f} acknowledged/s is {share:.0%} of the baseline's "
            f"{baseline.per_second:.1f} (at least 50%)",
        ),
        (outcomes.lost == 0 and done_at is not None, f"lost {outcomes.lost} (zero)"),
        (outcomes.credited_twice == 0, f"credited twice {outcomes.credited_twice} (zero)"),
    ]
    return print_targets(label, checks)


def run_one(url: str, args, tmp: Path) -> list[str]:
    label = database_label(url)
    print(f"\n== {label}")
    with scoped_database(url, "callbacks_bench") as scoped_url:
        return run_on(scoped_url, label, args, tmp)


def run_on(url: str, label: str, args, tmp: Path) -> list[str]:
    redis_url = claim_redis(args.redis_url)
    rng = random.Random(args.seed)
    try:
        app = bench_app(url, redis_url)
        with app.app_context():
            create_tables_and_members(args.members, args.seed)
            tag = new_run_tag()
            payments = record_pending_payments(args.payments, args.loan_share, tag, rng)
            purposes = Counter(p.purpose for p in payments)
            posts, at_once = plan_posts(payments, args.duplicates, args.senders, rng)
            duplicates = sum(1 for post in posts if post.duplicate)
            print(
                f"  {len(payments):,} pending STK requests (ids ws_CO_{tag}..., receipts {tag}...): "
                f"{purposes[PaymentPurpose.CONTRIBUTION]:,} contributions, "
                f"{purposes[PaymentPurpose.LOAN_REPAYMENT]:,} loan repayments"
            )
            print(
                f"  {len(posts):,} callbacks ({duplicates:,} duplicates, {at_once:,} of them in "
                f"flight with their original): {args.warmup} untimed, then from {args.senders} "
                f"senders in {args.rounds} rounds alternating with as many baseline posts, and "
                f"the last {args.paced_share:.0%} at a steady rate"
            )
            callback_secret = secrets.token_urlsafe(24)
            env = server_environment(url, redis_url, callback_secret)
            with (
                gunicorn(env, args.workers, tmp / "gunicorn.log", APP_SPEC, BASELINE_PATH) as base,
                rq_workers(
                    env,
                    args.rq_workers,
                    redis_url,
                    tmp,
                    ("--fork",) if args.fork else ("--no-fork",),
                ),
            ):
                senders = Senders(base, args.senders)
                try:
                    sent = send_everything(senders, f"/callbacks/mpesa/{callback_secret}/stk", posts, args)  # fmt: skip
                finally:
                    senders.close()
                acks = sent.callback_acks
                stored = sum(1 for ack in acks if ack.accepted)
                done_at = wait_until_processed(tag, stored, args.process_timeout)
            outcomes = count_outcomes(tag, acks)
            if done_at is None or any(not ack.accepted for ack in acks):
                show_log_tails(tmp)
            db.session.remove()
            db.engine.dispose()
        return report(label, sent, outcomes, done_at, stored)
    finally:
        Redis.from_url(redis_url).flushdb()  # the jobs, the workers' keys, and the claim


def main(argv=None) -> None:
    args = parse_args(argv)
    # Stopped from outside (SIGTERM): still stop gunicorn and the workers and free Redis.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="daystar-callbacks-bench-") as tmp:
        misses = []
        for url in database_urls(args, tmp, DEFAULT_POSTGRES):
            run_dir = Path(tmp) / ("postgres" if is_postgres(url) else "sqlite")
            run_dir.mkdir()
            misses += run_one(url, args, run_dir)
        print_summary(misses)


if __name__ == "__main__":
    main()
