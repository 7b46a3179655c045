"""What the dashboard's integration cards show, read from the database and Redis: the accounting
API's, M-Pesa's and the notifications' last 24 hours (each an indexed range read), the job queues,
and whether the database and Redis answer. Reads only; services/ops_cards.py colours them."""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from redis.exceptions import RedisError
from sqlalchemy import case, func, or_, select

from app.extensions import db
from app.jobs import QUEUES, get_queue, redis_client
from app.models import (
    ApiKey,
    ApiRequestLog,
    EndpointStatus,
    MpesaStatus,
    MpesaTransaction,
    MpesaType,
    Notification,
    SuspenseItem,
    SuspenseStatus,
    WebhookEndpoint,
)
from app.services import health
from app.services.mpesa import config as mpesa_config
from app.services.mpesa import monitor
from app.services.notifications import stats

WINDOW = timedelta(hours=24)
CRON_LOCK = "daystar:cron-scheduler"  # worker.py's CRON_LOCK: held while the scheduler runs


def percent(part: int, whole: int) -> float | None:
    """part/whole in percent, one decimal; None when whole is 0."""
    return round(100 * part / whole, 1) if whole else None


def _as_utc(value) -> datetime | None:
    """A timestamp read from an aggregate (SQLite may return MIN() of a CASE as naive text)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


# --- Accounting API ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ApiFigures:
    requests: int = 0  # in the last 24 hours
    errors: int = 0  # answered 4xx or 5xx
    server_errors: int = 0  # answered 5xx
    p95_ms: int | None = None
    active_keys: int = 0  # usable now (not revoked, expired or past a rotation's grace)
    failing_endpoints: int = 0  # enabled webhook endpoints whose deliveries are failing
    failing_since: datetime | None = None  # the longest-failing one's first failure
    disabled_endpoints: int = 0

    @property
    def error_percent(self) -> float | None:
        return percent(self.errors, self.requests)


def api_p95(since: datetime, count: int) -> int | None:
    """The nearest-rank 95th percentile of the durations of the `count` requests since `since`
    (what PostgreSQL's percentile_disc gives): the durations read from the covering index on
    (created_at, status, duration_ms), the one at that rank returned."""
    if not count:
        return None
    rank = math.ceil(0.95 * count)  # 1-based, ascending
    return db.session.scalar(
        select(ApiRequestLog.duration_ms)
        .where(ApiRequestLog.created_at >= since)
        .order_by(ApiRequestLog.duration_ms.desc())
        .offset(count - rank)
        .limit(1)
    )


def api_figures(now: datetime | None = None) -> ApiFigures:
    """The accounting API's last 24 hours (requests, errors, p95: two range reads of one
    covering index), its usable keys and its webhook endpoints."""
    now = now or datetime.now(UTC)
    since = now - WINDOW
    requests, errors, server_errors = db.session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((ApiRequestLog.status >= 400, 1), else_=0)), 0),
            func.coalesce(func.sum(case((ApiRequestLog.status >= 500, 1), else_=0)), 0),
        ).where(ApiRequestLog.created_at >= since)
    ).one()
    active_keys = db.session.scalar(
        select(func.count(ApiKey.id)).where(
            ApiKey.revoked_at.is_(None),
            or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > now),
            or_(ApiKey.grace_until.is_(None), ApiKey.grace_until > now),
        )
    )
    enabled = WebhookEndpoint.status == EndpointStatus.ACTIVE
    failing = enabled & WebhookEndpoint.failing_since.is_not(None)
    failing_count, failing_since, disabled = db.session.execute(
        select(
            func.coalesce(func.sum(case((failing, 1), else_=0)), 0),
            func.min(case((failing, WebhookEndpoint.failing_since))),
            func.coalesce(func.sum(case((~enabled, 1), else_=0)), 0),
        )
    ).one()
    return ApiFigures(
        requests=int(requests),
        errors=int(errors),
        server_errors=int(server_errors),
        p95_ms=api_p95(since, int(requests)),
        active_keys=int(active_keys),
        failing_endpoints=int(failing_count),
        failing_since=_as_utc(failing_since),
        disabled_endpoints=int(disabled),
    )


# --- M-Pesa --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MpesaFigures:
    environment: str = "sandbox"
    missing: list[str] = field(default_factory=list)  # uses lacking settings: "Paybill (C2B)"
    last_callback_at: datetime | None = None
    stk_completed: int = 0  # STK pushes of the last 24 hours, by outcome
    stk_failed: int = 0
    stk_open: int = 0
    statuses: dict = field(default_factory=dict)  # open status -> transactions in it (any age)
    oldest_pending_at: datetime | None = None
    balance_at: datetime | None = None  # when M-Pesa reported the balances below
    balances: dict = field(default_factory=dict)  # account name -> {"currency", "available"}
    suspense_open: int = 0

    @property
    def stk_success_percent(self) -> float | None:
        return percent(self.stk_completed, self.stk_completed + self.stk_failed)

    def count(self, status: str) -> int:
        return int(self.statuses.get(status, 0))


def mpesa_figures(now: datetime | None = None) -> MpesaFigures:
    """M-Pesa's settings, last callback, the last 24 hours' payment prompts by outcome, open
    transactions by status, the last balances and the suspense queue: each an indexed read."""
    now = now or datetime.now(UTC)
    config = mpesa_config.current()
    missing = [use for use, lacking in monitor.missing_settings(config).items() if lacking]
    stk = dict(
        db.session.execute(
            select(MpesaTransaction.status, func.count())
            .where(
                MpesaTransaction.status.in_(list(MpesaStatus)),  # the index's first column
                MpesaTransaction.transaction_type == MpesaType.STK_PUSH,
                MpesaTransaction.created_at >= now - WINDOW,
            )
            .group_by(MpesaTransaction.status)
        ).all()
    )
    oldest_pending = db.session.scalar(
        select(func.min(MpesaTransaction.created_at)).where(
            MpesaTransaction.status == MpesaStatus.PENDING
        )
    )
    balance = monitor.last_balance()
    suspense = db.session.scalar(
        select(func.count(SuspenseItem.id)).where(SuspenseItem.status == SuspenseStatus.OPEN)
    )
    return MpesaFigures(
        environment=config.environment,
        missing=missing,
        last_callback_at=monitor.last_callback_at(),
        stk_completed=stk.get(MpesaStatus.COMPLETED, 0),
        stk_failed=stk.get(MpesaStatus.FAILED, 0),
        stk_open=sum(
            n for s, n in stk.items() if s not in (MpesaStatus.COMPLETED, MpesaStatus.FAILED)
        ),
        statuses=monitor.counts_by_status(),
        oldest_pending_at=_as_utc(oldest_pending),
        balance_at=(balance or {}).get("captured_at"),
        balances={
            name: {"currency": a["currency"], "available": a["available"]}
            for name, a in (balance or {}).get("accounts", {}).items()
        },
        suspense_open=int(suspense),
    )


# --- Notifications -------------------------------------------------------------------------------
@dataclass(frozen=True)
class NotificationFigures:
    channels: dict = field(default_factory=dict)  # "sms"/"email" -> stats.Counts fields (24 h)
    # Each provider: name, label, channel, position (None: not in the order), configured,
    # circuit_open (None: unknown, Redis unreachable).
    providers: list = field(default_factory=list)

    def counts(self, channel: str) -> stats.Counts:
        return stats.Counts(**self.channels.get(channel, {}))


def notification_figures(now: datetime | None = None) -> NotificationFigures:
    """The last 24 hours' messages per channel and status (a range read of the covering index
    on created_at) and each provider's place in the failover order and circuit state."""
    now = now or datetime.now(UTC)
    rows = db.session.execute(
        select(Notification.channel, Notification.status, func.count())
        .where(Notification.created_at >= now - WINDOW)
        .group_by(Notification.channel, Notification.status)
    ).all()
    channels: dict[str, stats.Counts] = {}
    for channel, status, count in rows:
        channels.setdefault(channel, stats.Counts()).add(status, count)
    redis_ok = health.check_redis().ok
    providers = [
        {
            "name": p.name,
            "label": p.label,
            "channel": p.channel,
            "position": p.position,
            "configured": p.configured,
            "circuit_open": p.circuit_open if redis_ok else None,
        }
        for p in stats.provider_states()
    ]
    return NotificationFigures(
        channels={
            name: vars(counts)
            for name, counts in sorted(channels.items(), key=lambda i: i[0] != "sms")
        },
        providers=providers,
    )


# --- Jobs ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class JobsFigures:
    redis_ok: bool = True
    error: str | None = None
    queues: dict = field(default_factory=dict)  # queue -> jobs waiting
    failed: dict = field(default_factory=dict)  # queue -> jobs in its failed registry
    workers: int = 0  # alive: registered and heartbeating
    scheduler_alive: bool = False  # the cron scheduler holds its lock

    @property
    def failed_total(self) -> int:
        return sum(self.failed.values())


def jobs_figures() -> JobsFigures:
    """Each queue's depth and failed jobs (one Redis round trip), the workers alive and whether
    the cron scheduler holds its lock; Redis's error instead when it cannot be reached."""
    try:
        connection = redis_client()
        connection.ping()  # fails at once when Redis is down (a pipeline retries with back-off)
        queues = [get_queue(name) for name in QUEUES]
        with connection.pipeline(transaction=False) as pipe:
            for queue in queues:
                pipe.llen(queue.key)
                pipe.zcard(queue.failed_job_registry.key)
            pipe.exists(CRON_LOCK)
            counts = pipe.execute()
        workers = len(health.alive_workers(connection))
    except RedisError as exc:
        return JobsFigures(redis_ok=False, error=health.short_error(exc))
    return JobsFigures(
        queues={q.name: int(counts[2 * n]) for n, q in enumerate(queues)},
        failed={q.name: int(counts[2 * n + 1]) for n, q in enumerate(queues)},
        workers=workers,
        scheduler_alive=bool(counts[-1]),
    )


# --- Database and Redis --------------------------------------------------------------------------
@dataclass(frozen=True)
class PingFigures:
    ok: bool
    ms: float | None = None  # the round trip
    error: str | None = None
    detail: str = ""  # which server: the database's dialect


def _timed(check: Callable[[], health.Check], detail: str = "") -> PingFigures:
    started = time.perf_counter()
    result = check()
    ms = round((time.perf_counter() - started) * 1000, 1)
    return PingFigures(
        ok=result.ok, ms=ms if result.ok else None, error=result.error, detail=detail
    )


def database_figures() -> PingFigures:
    """Whether the database answers SELECT 1, and how fast."""
    return _timed(health.check_database, {"postgresql": "PostgreSQL", "sqlite": "SQLite"}.get(
        db.engine.dialect.name, db.engine.dialect.name))  # fmt: skip


def redis_figures() -> PingFigures:
    """Whether Redis answers PING, and how fast."""
    return _timed(health.check_redis)
