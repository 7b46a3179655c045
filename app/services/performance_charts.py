"""The Performance page's figures, read from the five-minute rollups (performance_samples) only:
per series, a point per Nairobi hour or day for the chosen key (or all keys together), and a
summary per key over the period. Reads only.

Buckets are combined into hours, days and keys like this: counts, failures, the average and the
maximum are exact; p50/p95/p99 are the buckets' percentiles weighted by their counts (an
approximation: the samples themselves are not kept), and `worst_p95_ms` is the highest p95 of
any single five minutes."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import case, func, literal_column, select

from app.clock import NAIROBI
from app.extensions import db
from app.models import PerformanceSample, PerformanceSeries
from app.models.base import utcnow
from app.services.errors import ValidationFailed
from app.services.notifications.stats import PROVIDER_LABELS

# period -> (how long, the chart's bucket); each period starts on a bucket boundary.
PERIODS = {"24h": (timedelta(hours=24), "hour"), "7d": (timedelta(days=7), "hour"),
           "30d": (timedelta(days=30), "day")}  # fmt: skip
PERIOD_LABELS = {"24h": "24 hours", "7d": "7 days", "30d": "30 days"}
DEFAULT_PERIOD = "24h"
# series -> the query-string parameter that filters it by key
FILTERS = {
    PerformanceSeries.API_LATENCY: "endpoint",
    PerformanceSeries.CALLBACK_ACK: "callback",
    PerformanceSeries.JOB_DURATION: "job",
    PerformanceSeries.NOTIFICATION_DELIVERY: "channel",
}
TIMED = (PerformanceSeries.API_LATENCY, PerformanceSeries.CALLBACK_ACK,
         PerformanceSeries.JOB_DURATION)  # fmt: skip
KEY_LENGTH = 200
CHANNEL_LABELS = {"sms": "SMS", "email": "Email"}


@dataclass
class Figures:
    """An hour's, a day's or a key's figures over the period, combined from its rollups."""

    count: int = 0
    failed: int = 0
    delivered: int = 0
    avg_ms: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    worst_p95_ms: float | None = None

    @property
    def failure_rate(self) -> float | None:
        """Failed as a percentage of the count, one decimal; None when there was nothing."""
        return round(100 * self.failed / self.count, 1) if self.count else None

    @property
    def delivery_rate(self) -> float | None:
        """Notifications: delivered as a percentage of those with an outcome (delivered or
        failed) in the same bucket, one decimal; None when none had one."""
        done = self.delivered + self.failed
        return round(100 * self.delivered / done, 1) if done else None


@dataclass
class KeyRow:
    key: str
    label: str
    figures: Figures


@dataclass
class SeriesReport:
    series: str
    param: str  # the query-string parameter of its key filter
    key: str | None  # the key chosen, None: all keys
    keys: list[KeyRow]  # every key with figures in the period, busiest first
    total: Figures  # the period, for the key chosen or all keys
    points: list[Figures]  # one per bucket of the period, oldest first


@dataclass
class Report:
    period: str
    since: datetime
    unit: str  # "hour" or "day"
    buckets: list[datetime]  # Nairobi local time, naive, oldest first
    series: dict[str, SeriesReport]


def check_period(value) -> str:
    """The period named (24h, 7d or 30d; empty: the default); ValidationFailed otherwise."""
    text = str(value or "").strip() or DEFAULT_PERIOD
    if text not in PERIODS:
        raise ValidationFailed({"period": "Choose 24 hours, 7 days or 30 days."})
    return text


def check_keys(args) -> dict[str, str | None]:
    """series -> the key its filter names (None: all keys), from query-string values;
    ValidationFailed naming each unusable one."""
    keys, errors = {}, {}
    for series, param in FILTERS.items():
        text = str(args.get(param) or "").strip()
        if "\x00" in text or len(text) > KEY_LENGTH:
            errors[param] = f"Choose one of the listed names (at most {KEY_LENGTH} characters)."
        keys[series] = text or None
    if errors:
        raise ValidationFailed(errors)
    return keys


def period_start(period: str, now: datetime | None = None) -> datetime:
    """The UTC instant the period begins: the start of the Nairobi hour 23 (167) hours ago, or
    of the Nairobi day 29 days ago, so that every bucket is whole."""
    length, unit = PERIODS[period]
    local = (now or utcnow()).astimezone(NAIROBI)
    if unit == "hour":
        first = local.replace(minute=0, second=0, microsecond=0) - length + timedelta(hours=1)
        return first.astimezone(UTC)
    first_day = local.date() - length + timedelta(days=1)
    return datetime.combine(first_day, time.min, NAIROBI).astimezone(UTC)


def key_label(series: str, key: str) -> str:
    """How a key reads on the page: "SMS · Africa's Talking", "process_callback (high)"..."""
    if series == PerformanceSeries.NOTIFICATION_DELIVERY:
        channel, _, provider = key.partition("/")
        name = "no provider" if provider == "none" else PROVIDER_LABELS.get(provider, provider)
        return f"{CHANNEL_LABELS.get(channel, channel)} · {name}"
    if series == PerformanceSeries.JOB_DURATION:
        queue, _, function = key.partition(":")
        return f"{function} ({queue})" if function else key
    return key


def _local_bucket(unit: str):
    """The Nairobi hour or day of each rollup's bucket, in SQL (constants as literal SQL, so that
    PostgreSQL sees the GROUP BY expression as the selected one)."""
    column = PerformanceSample.bucket_start
    if db.engine.dialect.name == "postgresql":
        local = func.timezone(literal_column("'Africa/Nairobi'"), column)
        return func.date_trunc(literal_column(f"'{unit}'"), local)
    # SQLite keeps UTC text; Nairobi has been UTC+3 without daylight saving since 1942.
    shape = "'%Y-%m-%d %H:00'" if unit == "hour" else "'%Y-%m-%d'"
    return func.strftime(literal_column(shape), column, literal_column("'+3 hours'"))


def _combined():
    """The aggregates that turn rollups into one Figures (see the module's docstring)."""
    s = PerformanceSample
    return (
        func.sum(s.count),
        func.sum(s.failed),
        func.sum(s.delivered),
        func.sum(s.sum_ms),
        func.sum(s.p50_ms * s.count),
        func.sum(s.p95_ms * s.count),
        func.sum(s.p99_ms * s.count),
        func.sum(case((s.p95_ms.is_not(None), s.count), else_=0)),  # samples timed
        func.max(s.max_ms),
        func.max(s.p95_ms),
    )


def _figures(count, failed, delivered, sum_ms, p50w, p95w, p99w, timed, max_ms, worst) -> Figures:
    timed = int(timed or 0)

    def weighted(total):
        return round(float(total) / timed, 1) if total is not None and timed else None

    return Figures(
        count=int(count or 0),
        failed=int(failed or 0),
        delivered=int(delivered or 0),
        avg_ms=round(float(sum_ms) / timed, 1) if sum_ms is not None and timed else None,
        p50_ms=weighted(p50w),
        p95_ms=weighted(p95w),
        p99_ms=weighted(p99w),
        max_ms=round(float(max_ms), 1) if max_ms is not None else None,
        worst_p95_ms=round(float(worst), 1) if worst is not None else None,
    )


def _add_up(rows: list[tuple]) -> tuple:
    """Several rows of _combined() aggregates as one (sums added, maxima the highest)."""
    if not rows:
        return (None,) * 10
    columns = list(zip(*rows, strict=True))
    sums = [sum(v for v in column if v is not None) if any(v is not None for v in column)
            else None for column in columns[:8]]  # fmt: skip
    maxima = [max((v for v in column if v is not None), default=None) for column in columns[8:]]
    return (*sums, *maxima)


def _as_local(value) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    return datetime.fromisoformat(str(value))


def buckets_of(period: str, since: datetime) -> list[datetime]:
    length, unit = PERIODS[period]
    step = timedelta(hours=1) if unit == "hour" else timedelta(days=1)
    first = _as_local(since.astimezone(NAIROBI))
    return [first + step * n for n in range(int(length / step))]


def series_report(
    series: str, period: str, key: str | None, since: datetime, buckets: list[datetime]
) -> SeriesReport:
    """One series over the period: a summary per key, and per bucket for `key` (or all keys),
    from one GROUP BY (key, bucket) query on the rollups, added up here."""
    s = PerformanceSample
    bucket = _local_bucket(PERIODS[period][1]).label("bucket")
    grouped = db.session.execute(
        select(s.key, bucket, *_combined())
        .where(s.series == series, s.bucket_start >= since)
        .group_by(s.key, bucket)
    ).all()
    by_key: dict[str, list[tuple]] = defaultdict(list)
    by_bucket: dict[datetime, list[tuple]] = defaultdict(list)
    for row in grouped:
        by_key[row[0]].append(row[2:])
        if not key or row[0] == key:
            by_bucket[_as_local(row[1])].append(row[2:])
    keys = sorted(
        (KeyRow(name, key_label(series, name), _figures(*_add_up(rows)))
         for name, rows in by_key.items()),
        key=lambda r: (-r.figures.count - r.figures.delivered - r.figures.failed, r.key),
    )  # fmt: skip
    chosen = by_key.get(key, []) if key else [row for rows in by_key.values() for row in rows]
    return SeriesReport(
        series=series,
        param=FILTERS[series],
        key=key,
        keys=keys,
        total=_figures(*_add_up(chosen)),
        points=[_figures(*_add_up(by_bucket[b])) if b in by_bucket else Figures() for b in buckets],
    )


def report(period: str, keys: dict[str, str | None], now: datetime | None = None,
           only: str | None = None) -> Report:  # fmt: skip
    """Every series (or `only` the one named) over the period, each filtered by its key."""
    period = check_period(period)
    since = period_start(period, now)
    buckets = buckets_of(period, since)
    wanted = [only] if only else list(FILTERS)
    return Report(
        period=period,
        since=since,
        unit=PERIODS[period][1],
        buckets=buckets,
        series={
            series: series_report(series, period, keys.get(series), since, buckets)
            for series in wanted
        },
    )
