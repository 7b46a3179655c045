"""Performance figures: timing samples recorded cheaply where they happen, and the periodic rollup
that turns each finished five minutes into one row per series and key (count, failures,
p50/p95/p99, max), so that the Performance page reads rollups and never the raw rows.

Where the samples come from:
- API latency: the API request log (ApiRequestLog.duration_ms), re-read for the last
  API_LOOKBACK_MINUTES on every run, since its rows reach the database in batches;
- callback acknowledgement and job durations: pushed to a Redis list per series and bucket by
  `record()` (one round trip, after the callback's answer has gone or after the job), taken and
  deleted by the rollup once the bucket is over;
- notification delivery: the notifications sent, delivered or failed in the last
  NOTIFY_LOOKBACK_MINUTES (found through notifications.updated_at), counted per channel/provider.
"""

import contextlib
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from time import monotonic, perf_counter

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RoutingException

from app.extensions import db
from app.models import ApiRequestLog, Notification, PerformanceSample, PerformanceSeries
from app.models.base import utcnow
from app.services import api_log
from app.services.api_log import nearest_rank

log = logging.getLogger(__name__)

PREFIX = "daystar:perf"
LOCK_KEY = f"{PREFIX}:rollup-lock"
LOCK_SECONDS = 300
REDIS_SERIES = (PerformanceSeries.CALLBACK_ACK, PerformanceSeries.JOB_DURATION)
BUCKET_MINUTES = 5  # 30 days of a key busy every minute is 8,640 rows: the page reads fast
BUCKET = timedelta(minutes=BUCKET_MINUTES)
SAMPLE_TTL_SECONDS = 3 * 3600  # samples no rollup took by then expire
REDIS_LOOKBACK_MINUTES = 120  # how far back each run looks for buckets not yet taken
SETTLE_SECONDS = 10  # a bucket is taken only this long after it ended (late answers, skew)
API_LOOKBACK_MINUTES = 15  # request log rows reach the database within a minute or two
NOTIFY_LOOKBACK_MINUTES = 20  # delivery receipts are dated by the provider, a little late
RETENTION_DAYS = 35  # rollups kept: the longest period shown (30 days) and a margin
REDIS_RETRY_SECONDS = 5.0  # after a Redis failure, recording is skipped this long
KEY_LENGTH = 200
BUCKET_FORMAT = "%Y%m%d%H%M"


# --- recording ----------------------------------------------------------------------------------


@dataclass
class _RecorderState:
    """Per process: until when Redis is taken to be down (so a dead Redis costs nothing)."""

    redis_down_until: float = 0.0


_state = _RecorderState()


def bucket_key(series: str, moment: datetime) -> str:
    """The Redis list holding `series`' samples of the bucket `moment` falls in."""
    return f"{PREFIX}:{series}:{floor_bucket(moment).strftime(BUCKET_FORMAT)}"


def record(
    series: str, key: str, duration_ms: float, failed: bool = False, connection=None
) -> bool:
    """Push one timing sample to this bucket's Redis list for `series` (one round trip). Never
    raises; while Redis is unreachable the sample is skipped (and Redis left alone for
    REDIS_RETRY_SECONDS). Returns whether it was recorded."""
    now = monotonic()
    if now < _state.redis_down_until:
        return False
    try:
        clean_key = str(key).replace("\t", " ").replace("\n", " ")[:KEY_LENGTH]
        name = bucket_key(series, datetime.now(UTC))
        pipe = (connection or _redis()).pipeline(transaction=False)
        pipe.rpush(name, f"{clean_key}\t{max(0.0, float(duration_ms)):.3f}\t{int(bool(failed))}")
        pipe.expire(name, SAMPLE_TTL_SECONDS)
        pipe.execute()
    except RedisError as exc:
        _state.redis_down_until = now + REDIS_RETRY_SECONDS
        log.debug("performance sample skipped, Redis unreachable: %s", exc)
        return False
    except Exception:
        log.debug("performance sample skipped", exc_info=True)
        return False
    return True


def record_when_sent(response, series: str, key: str, started: float) -> None:
    """Time from `started` (perf_counter) to now, recorded once the response has been sent, so the
    Redis call never delays the answer. A 4xx/5xx answer counts as failed. Never raises."""
    try:
        elapsed_ms = (perf_counter() - started) * 1000
        failed = response.status_code >= 400
        connection = _redis()  # taken now: the app context is gone when the response closes
        response.call_on_close(lambda: record(series, key, elapsed_ms, failed, connection))
    except Exception:
        log.debug("performance sample skipped", exc_info=True)


def _redis():
    from app.jobs import redis_client

    return redis_client()


# --- figures ------------------------------------------------------------------------------------


@dataclass
class Figures:
    """What a rollup row holds for one series, key and bucket."""

    count: int = 0
    failed: int = 0
    delivered: int = 0
    sum_ms: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None

    def columns(self) -> dict:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def summarise(durations: list[float], failed: int = 0) -> Figures:
    """Count, sum, nearest-rank p50/p95/p99 (as PostgreSQL's percentile_disc) and max of the
    durations."""
    if not durations:
        return Figures(failed=failed)
    ordered = sorted(durations)
    return Figures(
        count=len(ordered),
        failed=failed,
        sum_ms=round(sum(ordered), 3),
        p50_ms=nearest_rank(ordered, 0.50),
        p95_ms=nearest_rank(ordered, 0.95),
        p99_ms=nearest_rank(ordered, 0.99),
        max_ms=ordered[-1],
    )


def merge(old: Figures, new: Figures) -> Figures:
    """Two sets of figures of one bucket as one: counts, sum and max exact; the percentiles
    weighted by count (the samples themselves are gone)."""
    count = old.count + new.count

    def weighted(name: str) -> float | None:
        pairs = [(getattr(f, name), f.count) for f in (old, new) if getattr(f, name) is not None]
        weight = sum(n for _, n in pairs)
        return round(sum(v * n for v, n in pairs) / weight, 3) if weight else None

    def maximum(name: str) -> float | None:
        values = [getattr(f, name) for f in (old, new) if getattr(f, name) is not None]
        return max(values) if values else None

    sums = [f.sum_ms for f in (old, new) if f.sum_ms is not None]
    return Figures(
        count=count,
        failed=old.failed + new.failed,
        delivered=old.delivered + new.delivered,
        sum_ms=round(sum(sums), 3) if sums else None,
        p50_ms=weighted("p50_ms"),
        p95_ms=weighted("p95_ms"),
        p99_ms=weighted("p99_ms"),
        max_ms=maximum("max_ms"),
    )


def floor_bucket(moment: datetime) -> datetime:
    """The start (UTC) of the bucket (five minutes) `moment` falls in."""
    utc = moment.astimezone(UTC)
    return utc.replace(minute=utc.minute - utc.minute % BUCKET_MINUTES, second=0, microsecond=0)


# --- the rollup ---------------------------------------------------------------------------------

Rows = dict[tuple[str, datetime], Figures]  # (key, bucket start) -> figures


@dataclass
class RollupResult:
    """How many rows each series wrote (replaced, merged or added) in one run."""

    rows: dict[str, int] = field(default_factory=dict)
    samples_taken: int = 0
    pruned: int = 0
    skipped: str | None = None  # why nothing was done, when nothing was


def roll_up(now: datetime | None = None) -> RollupResult:
    """Turn the finished buckets' samples into rollup rows, in one transaction: the API's and
    the notifications' recent buckets are recomputed and replaced (idempotent), the Redis samples
    of buckets over for SETTLE_SECONDS are taken, deleted and added (merged into a row a late
    sample finds already written), and rows older than RETENTION_DAYS are deleted. Only one run
    at a time (a Redis lock; without Redis the database series are still rolled up). When the
    database fails, the samples taken go back to Redis and the error is raised."""
    now = now or utcnow()
    current = floor_bucket(now)
    connection = _redis()
    try:
        if not connection.set(LOCK_KEY, "1", nx=True, ex=LOCK_SECONDS):
            return RollupResult(skipped="another rollup is running")
    except RedisError as exc:
        log.warning("performance rollup without Redis (callbacks and jobs wait): %s", exc)
        connection = None
    try:
        return _roll_up(now, current, connection)
    finally:
        if connection is not None:
            with contextlib.suppress(RedisError):
                connection.delete(LOCK_KEY)


def _roll_up(now: datetime, current: datetime, connection) -> RollupResult:
    result = RollupResult()
    api_log.flush()  # buffered request log rows first, so the bucket just over is complete
    api_start = floor_bucket(current - timedelta(minutes=API_LOOKBACK_MINUTES))
    notify_start = floor_bucket(current - timedelta(minutes=NOTIFY_LOOKBACK_MINUTES))
    replaced = {
        PerformanceSeries.API_LATENCY: (api_start, _api_rows(api_start, current)),
        PerformanceSeries.NOTIFICATION_DELIVERY: (
            notify_start,
            _notification_rows(notify_start, current),
        ),
    }
    taken = _take_redis_samples(connection, now) if connection is not None else {}
    result.samples_taken = sum(len(items) for items in taken.values())
    try:
        for series, (start, rows) in replaced.items():
            result.rows[series] = _replace(series, start, current, rows)
        for series in REDIS_SERIES:
            rows = _redis_rows(series, taken)
            result.rows[series] = _add(series, rows) if rows else 0
        result.pruned = _prune(now)
        db.session.commit()
    except IntegrityError as exc:
        # Another run (one without the lock: Redis was down) wrote the same buckets meanwhile.
        db.session.rollback()
        _put_back(connection, taken)
        log.warning("performance rollup overlapped another; the next run completes it: %s", exc)
        return RollupResult(skipped="overlapped another run")
    except Exception:
        db.session.rollback()
        _put_back(connection, taken)
        raise
    return result


def _api_rows(start: datetime, end: datetime) -> Rows:
    """Each bucket's requests by endpoint (the route that answered, method first): durations
    and 5xx answers."""
    found = db.session.execute(
        select(
            ApiRequestLog.created_at,
            ApiRequestLog.method,
            ApiRequestLog.path,
            ApiRequestLog.status,
            ApiRequestLog.duration_ms,
        ).where(ApiRequestLog.created_at >= start, ApiRequestLog.created_at < end)
    )
    durations: dict[tuple[str, datetime], list[float]] = defaultdict(list)
    failures: dict[tuple[str, datetime], int] = defaultdict(int)
    endpoint = _endpoint_namer()
    for created_at, method, path, status, duration_ms in found:
        slot = (endpoint(method, path), floor_bucket(created_at))
        durations[slot].append(float(duration_ms))
        failures[slot] += status >= 500
    return {slot: summarise(values, failures[slot]) for slot, values in durations.items()}


def _endpoint_namer():
    """method, path -> "GET /api/accounting/v1/loans/<int:loan_id>", so that every loan's path
    counts as one endpoint; "GET (no such route)" for a path nothing answers."""
    adapter = current_app.url_map.bind("localhost")
    known: dict[tuple[str, str], str] = {}

    def name(method: str, path: str) -> str:
        if (method, path) not in known:
            try:
                rule, _ = adapter.match(path, method=method, return_rule=True)
                route = rule.rule
            except (HTTPException, RoutingException):
                route = "(no such route)"
            known[(method, path)] = f"{method} {route}"[:KEY_LENGTH]
        return known[(method, path)]

    return name


def _notification_rows(start: datetime, end: datetime) -> Rows:
    """Each bucket's notifications by channel/provider: accepted by a provider (`count`),
    delivered and failed, each by when it happened."""
    found = db.session.execute(
        select(
            Notification.channel,
            Notification.provider,
            Notification.sent_at,
            Notification.delivered_at,
            Notification.failed_at,
        ).where(Notification.updated_at >= start)  # every event since `start` updated its row
    )
    rows: Rows = {}
    for channel, provider, sent_at, delivered_at, failed_at in found:
        key = f"{channel}/{provider or 'none'}"
        for moment, field_name in ((sent_at, "count"), (delivered_at, "delivered"),
                                   (failed_at, "failed")):  # fmt: skip
            if moment is not None and start <= moment < end:
                figures = rows.setdefault((key, floor_bucket(moment)), Figures())
                setattr(figures, field_name, getattr(figures, field_name) + 1)
    return rows


def _take_redis_samples(connection, now: datetime) -> dict[tuple[str, datetime], list[bytes]]:
    """The samples of every bucket over for SETTLE_SECONDS within REDIS_LOOKBACK_MINUTES, read
    and deleted atomically (a sample pushed meanwhile waits for the next run)."""
    last = floor_bucket(now - timedelta(seconds=SETTLE_SECONDS)) - BUCKET
    buckets = [last - BUCKET * n for n in range(REDIS_LOOKBACK_MINUTES // BUCKET_MINUTES)]
    slots = [(series, start) for series in REDIS_SERIES for start in buckets]
    try:
        with connection.pipeline() as pipe:  # MULTI/EXEC
            for series, start in slots:
                pipe.lrange(bucket_key(series, start), 0, -1)
                pipe.delete(bucket_key(series, start))
            replies = pipe.execute()
    except RedisError as exc:
        log.warning("performance rollup: could not read the samples from Redis: %s", exc)
        return {}
    return {slot: items for slot, items in zip(slots, replies[::2], strict=True) if items}


def _redis_rows(series: str, taken: dict[tuple[str, datetime], list[bytes]]) -> Rows:
    durations: dict[tuple[str, datetime], list[float]] = defaultdict(list)
    failures: dict[tuple[str, datetime], int] = defaultdict(int)
    for (sample_series, start), items in taken.items():
        if sample_series != series:
            continue
        for item in items:
            try:
                key, duration, failed = item.decode().split("\t")
                durations[(key, start)].append(float(duration))
                failures[(key, start)] += failed == "1"
            except (ValueError, UnicodeDecodeError):
                log.warning("performance rollup: dropped an unreadable sample %.200r", item)
    return {slot: summarise(values, failures[slot]) for slot, values in durations.items()}


def _put_back(connection, taken: dict[tuple[str, datetime], list[bytes]]) -> None:
    if connection is None or not taken:
        return
    try:
        with connection.pipeline(transaction=False) as pipe:
            for (series, start), items in taken.items():
                pipe.rpush(bucket_key(series, start), *items)
                pipe.expire(bucket_key(series, start), SAMPLE_TTL_SECONDS)
            pipe.execute()
    except RedisError as exc:
        count = sum(len(items) for items in taken.values())
        log.warning("performance rollup: %d samples lost (Redis: %s)", count, exc)


def _row(series: str, key: str, start: datetime, figures: Figures) -> dict:
    return {"series": str(series), "key": key, "bucket_start": start, **figures.columns()}


def _replace(series: str, start: datetime, end: datetime, rows: Rows) -> int:
    """The series' rows of [start, end) become exactly `rows`."""
    db.session.execute(
        delete(PerformanceSample).where(
            PerformanceSample.series == series,
            PerformanceSample.bucket_start >= start,
            PerformanceSample.bucket_start < end,
        )
    )
    if rows:
        db.session.execute(
            insert(PerformanceSample),
            [_row(series, key, start, figures) for (key, start), figures in rows.items()],
        )
    return len(rows)


def _add(series: str, rows: Rows) -> int:
    """`rows` inserted, or merged into the row already written for the same bucket (a sample
    that came after its bucket was rolled up)."""
    candidates = db.session.scalars(
        select(PerformanceSample).where(
            PerformanceSample.series == series,
            PerformanceSample.key.in_({key for key, _ in rows}),
            PerformanceSample.bucket_start.in_({start for _, start in rows}),
        )
    )
    existing = {(row.key, row.bucket_start): row for row in candidates}
    fresh = []
    for (key, start), figures in rows.items():
        row = existing.get((key, start))
        if row is None:
            fresh.append(_row(series, key, start, figures))
            continue
        old = Figures(**{name: getattr(row, name) for name in Figures.__dataclass_fields__})
        for name, value in merge(old, figures).columns().items():
            setattr(row, name, value)
    if fresh:
        db.session.execute(insert(PerformanceSample), fresh)
    return len(rows)


def _prune(now: datetime) -> int:
    cutoff = floor_bucket(now) - timedelta(days=RETENTION_DAYS)
    pruned = 0
    for series in PerformanceSeries:
        pruned += db.session.execute(
            delete(PerformanceSample).where(
                PerformanceSample.series == series, PerformanceSample.bucket_start < cutoff
            )
        ).rowcount
    return pruned
