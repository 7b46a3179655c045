"""The API request log: one row per API request, with no secret in it, buffered after the
response has gone and written in batches; searched and summarised for the portal; pruned after
the retention period."""

import json
import logging
import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from time import monotonic
from urllib.parse import parse_qsl, quote, urlencode

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import (
    Date,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError

from app.clock import NAIROBI
from app.clock import today as nairobi_today
from app.extensions import db
from app.models import ApiKey, ApiRequestLog
from app.models.base import utcnow
from app.services.errors import ValidationFailed
from app.services.pagination import Page, paginate

log = logging.getLogger(__name__)

MASK = "***"
# Query parameters whose values are credentials, wherever an integrator put them.
SECRET_PARAMS = re.compile(
    r"(^|_|-)(key|apikey|token|secret|password|passwd|pwd|signature|sig|auth|authorization|"
    r"credentials?|session)$",
    re.IGNORECASE,
)
# An API key pasted anywhere in the query string.
KEY_PATTERN = re.compile(r"dsk_[a-z]+_[A-Za-z0-9_\-]+")

LIMITS = {"method": 8, "path": 300, "query": 1000, "ip": 45, "user_agent": 300}
LAST_USED_EVERY = timedelta(seconds=60)
MAX_PER_PAGE = 200
MAX_USAGE_DAYS = 366
P95_SAMPLE_CAP = 50_000  # durations read for p95 where the database has no percentile function
PRUNE_BATCH = 5_000


def mask_query(query: str) -> str:
    """The query string with the value of every credential-like parameter replaced by ***, and
    any API key anywhere masked too; parameter order is kept."""
    if not query:
        return ""
    try:
        pairs = parse_qsl(query, keep_blank_values=True)
    except ValueError:
        return KEY_PATTERN.sub(MASK, query)
    masked = [
        (name, MASK if SECRET_PARAMS.search(name) and value else KEY_PATTERN.sub(MASK, value))
        for name, value in pairs
    ]
    if masked == pairs and not KEY_PATTERN.search(query):
        return query  # nothing secret: keep it exactly as sent
    return urlencode(masked, safe="*,:/", quote_via=quote)


def _clip(value: str | None, field: str) -> str | None:
    return value[: LIMITS[field]] if value is not None else None


@dataclass
class RequestRecord:
    """What is kept of one API request: never a header, never a body."""

    method: str
    path: str
    query: str
    status: int
    duration_ms: int
    ip: str | None
    user_agent: str
    response_size: int
    api_key_id: int | None
    created_at: datetime

    def row(self) -> dict:
        return {
            "api_key_id": self.api_key_id,
            "method": _clip(self.method.upper(), "method"),
            "path": _clip(KEY_PATTERN.sub(MASK, self.path), "path"),
            "query": _clip(mask_query(self.query), "query"),
            "status": int(self.status),
            "duration_ms": max(0, int(self.duration_ms)),
            "ip": _clip(self.ip, "ip"),
            "user_agent": _clip(self.user_agent or "", "user_agent"),
            "response_size": max(0, int(self.response_size or 0)),
            "created_at": self.created_at,
        }


def record(entry: RequestRecord) -> bool:
    """Write one log row at once (and the key's last use), on a connection of its own. Never
    raises: a failure is logged as a warning and False returned, because logging must not fail
    the API."""
    try:
        _insert([entry.row()])
    except Exception as exc:
        log.warning("could not write the API request log for %s: %s", entry.path[:100], exc)
        return False
    return True


# --- the buffer ---------------------------------------------------------------------------------
# A row written in a transaction of its own costs a journal sync per request (1.8 ms on SQLite,
# more than the request itself). So each request's row is pushed to a Redis list (one call), and
# rows are inserted in batches: by the web process once the list holds FLUSH_ROWS or FLUSH_SECONDS
# have passed since its last flush, and every minute by the periodic job for the rest. While
# Redis is unreachable, rows are written one by one as before: a row is never dropped silently.

BUFFER_KEY = "daystar:api-request-log"
FLUSH_ROWS = 100
FLUSH_SECONDS = 1.0
FLUSH_BATCH = 500
REDIS_RETRY_SECONDS = 5.0  # after a Redis failure, write directly for this long before retrying


@dataclass
class _BufferState:
    """Per process: when it last flushed, and until when Redis is taken to be down."""

    last_flush: float = 0.0
    redis_down_until: float = 0.0


_state = _BufferState()


def _redis():
    from app.jobs import redis_client

    return redis_client()


def _to_json(row: dict) -> str:
    return json.dumps({**row, "created_at": row["created_at"].isoformat()})


def _from_json(text: bytes | str) -> dict:
    row = json.loads(text)
    row["created_at"] = datetime.fromisoformat(row["created_at"])
    return row


def log_request(entry: RequestRecord) -> None:
    """The request's row (masked) is buffered in Redis and inserted with others in a batch, by
    this process when the batch is due or by the periodic job; while Redis is unreachable it is
    inserted at once. Never raises."""
    try:
        row = entry.row()
        now = monotonic()
        if now >= _state.redis_down_until:
            try:
                pending = _redis().rpush(BUFFER_KEY, _to_json(row))
            except RedisError as exc:
                _state.redis_down_until = now + REDIS_RETRY_SECONDS
                log.warning("API request log: Redis unreachable, writing rows directly: %s", exc)
            else:
                if pending >= FLUSH_ROWS or now - _state.last_flush >= FLUSH_SECONDS:
                    flush()
                return
        _write([row])
    except Exception:
        log.warning("could not log the API request to %s", entry.path[:100], exc_info=True)


def flush(batch_size: int | None = None) -> int:
    """Insert up to `batch_size` (FLUSH_BATCH) buffered rows in one transaction, with each key's
    last use updated once; returns how many were written. Rows are taken from Redis atomically, so
    concurrent flushes never write a row twice. A row the database refuses (its key deleted
    meanwhile) is logged as a warning and dropped; rows that could not be written because the
    database failed go back to the buffer. Never raises."""
    now = _state.last_flush = monotonic()
    if now < _state.redis_down_until:
        return 0  # rows are being written directly meanwhile
    batch_size = batch_size or FLUSH_BATCH
    try:
        with _redis().pipeline() as pipe:  # MULTI/EXEC: read and removed as one
            pipe.lrange(BUFFER_KEY, 0, batch_size - 1)
            pipe.ltrim(BUFFER_KEY, batch_size, -1)
            texts, _ = pipe.execute()
    except RedisError as exc:
        _state.redis_down_until = now + REDIS_RETRY_SECONDS
        log.warning("API request log: could not read the buffer: %s", exc)
        return 0
    rows = []
    for text in texts:
        try:
            rows.append(_from_json(text))
        except (ValueError, TypeError, KeyError):
            log.warning("API request log: dropped an unreadable buffered row: %.300r", text)
    return _write(rows)


def buffered() -> int:
    """How many rows wait in the buffer (0 when Redis is unreachable)."""
    try:
        return int(_redis().llen(BUFFER_KEY))
    except RedisError:
        return 0


def _write(rows: list[dict]) -> int:
    """Insert `rows` in one transaction; when the database refuses one of them (its key deleted
    meanwhile), the others one by one. Rows the database could not take because it failed go
    back to the buffer. Returns how many were written."""
    if not rows:
        return 0
    try:
        _insert(rows)
        return len(rows)
    except SQLAlchemyError as exc:
        if _database_failed(exc):
            _put_back(rows, exc)
            return 0
    written = 0
    for n, row in enumerate(rows):
        try:
            _insert([row])
            written += 1
        except SQLAlchemyError as exc:
            if _database_failed(exc):
                _put_back(rows[n:], exc)
                break
            _warn_refused(row, exc)
    return written


def _database_failed(exc: SQLAlchemyError) -> bool:
    """True when the database, not the row, is the problem (unreachable, locked...)."""
    return not isinstance(exc, IntegrityError | DataError)


def _warn_refused(row: dict, exc: Exception) -> None:
    log.warning(
        "could not write the API request log for %s %s (%s at %s): %s",
        row.get("method"),
        str(row.get("path"))[:100],
        row.get("status"),
        row.get("created_at"),
        exc,
    )


def _put_back(rows: list[dict], exc: Exception) -> None:
    try:
        _redis().rpush(BUFFER_KEY, *(_to_json(row) for row in rows))
        log.warning("API request log: database failed, %d rows kept for later: %s", len(rows), exc)
    except RedisError as redis_exc:
        log.warning(
            "could not write the API request log: %d rows lost (database: %s; Redis: %s)",
            len(rows),
            exc,
            redis_exc,
        )


def _insert(rows: list[dict]) -> None:
    """Insert the rows and each key's latest use in one short transaction on a connection of
    its own, so a request's session is never involved."""
    latest: dict[int, dict] = {}
    for row in rows:
        key_id = row["api_key_id"]
        if key_id is not None and (
            key_id not in latest or row["created_at"] >= latest[key_id]["created_at"]
        ):
            latest[key_id] = row
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # An access log may lose its last rows in a crash; not waiting for the WAL flush
            # makes the commit ~0.1 ms instead of a disk sync.
            conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
        conn.execute(insert(ApiRequestLog), rows)
        for key_id, row in latest.items():
            conn.execute(_touch_key(key_id, row["created_at"], row["ip"]))


def _touch_key(key_id: int, used_at: datetime, ip: str | None):
    """The key's last use and address, written at most once a minute per address."""
    ip = _clip(ip, "ip")
    return (
        update(ApiKey)
        .where(
            ApiKey.id == key_id,
            or_(
                ApiKey.last_used_at.is_(None),
                ApiKey.last_used_at < used_at - LAST_USED_EVERY,
                ApiKey.last_used_ip.is_(None),
                ApiKey.last_used_ip != (ip or ""),
            ),
        )
        .values(last_used_at=used_at, last_used_ip=ip)
    )


def _parse_date(value, field: str, errors: dict) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.astimezone(NAIROBI).date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        errors[field] = "Write the date as YYYY-MM-DD."
        return None


def _day_start(day: date) -> datetime:
    """The UTC instant a Nairobi calendar day begins."""
    return datetime.combine(day, time.min, NAIROBI).astimezone(UTC)


def _status_filter(value, errors: dict):
    if value is None or value == "":
        return None
    text = str(value).strip().lower()
    if re.fullmatch(r"[1-5]xx", text):
        low = int(text[0]) * 100
        return ApiRequestLog.status.between(low, low + 99)
    if text == "error":
        return ApiRequestLog.status >= 400
    if text.isdigit() and 100 <= int(text) <= 599:
        return ApiRequestLog.status == int(text)
    errors["status"] = "Give an HTTP status (404), a class (4xx) or 'error'."
    return None


def _int(value, field: str, default: int, low: int, high: int, errors: dict) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(str(value).strip())
    except ValueError:
        number = None
    if number is None or not low <= number <= high:
        errors[field] = f"Give a whole number from {low} to {high}."
        return default
    return number


def search(
    key_id=None,
    status=None,
    path=None,
    date_from=None,
    date_to=None,
    page=1,
    per_page=50,
) -> Page:
    """Log rows, newest first, filtered by key id, status (404, 4xx, 'error'), a fragment of the
    path, and Nairobi dates (inclusive); ValidationFailed naming each bad filter. Arguments may
    be query-string text. Buffered rows are written first, so a request made a moment ago shows."""
    flush()
    errors: dict[str, str] = {}
    query = select(ApiRequestLog)
    if key_id not in (None, ""):
        key = _int(key_id, "key_id", 0, 1, 2**31 - 1, errors)
        query = query.where(ApiRequestLog.api_key_id == key)
    status_clause = _status_filter(status, errors)
    if status_clause is not None:
        query = query.where(status_clause)
    if path and str(path).strip():
        fragment = str(path).strip()[: LIMITS["path"]]
        escaped = fragment.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(ApiRequestLog.path.like(f"%{escaped}%", escape="\\"))
    start = _parse_date(date_from, "date_from", errors)
    end = _parse_date(date_to, "date_to", errors)
    if start and end and start > end:
        errors["date_to"] = "The end date is before the start date."
    page = _int(page, "page", 1, 1, 1_000_000, errors)
    per_page = _int(per_page, "per_page", 50, 1, MAX_PER_PAGE, errors)
    if errors:
        raise ValidationFailed(errors)
    if start:
        query = query.where(ApiRequestLog.created_at >= _day_start(start))
    if end:
        query = query.where(ApiRequestLog.created_at < _day_start(end + timedelta(days=1)))
    return paginate(query.order_by(ApiRequestLog.id.desc()), page, per_page)


@dataclass(frozen=True)
class DayUsage:
    day: date
    requests: int
    errors: int


@dataclass(frozen=True)
class KeyUsage:
    """A key's use over `days` Nairobi days ending today: one entry per day (zeros included),
    the share of responses that were errors (status >= 400) and the 95th-percentile duration."""

    key_id: int
    days: list[DayUsage]
    requests: int
    errors: int
    server_errors: int
    error_rate: float  # 0..1
    p95_ms: int | None

    @property
    def error_percent(self) -> float:
        return round(self.error_rate * 100, 1)


def _nairobi_day(column):
    """The Nairobi calendar date of a UTC timestamp column, in SQL."""
    # Literal SQL, not bound parameters: PostgreSQL must see the GROUP BY expression as the
    # selected one.
    if db.engine.dialect.name == "postgresql":
        return cast(func.timezone(literal_column("'Africa/Nairobi'"), column), Date)
    # SQLite keeps UTC text; Nairobi has been UTC+3 without daylight saving since 1942.
    return func.date(column, literal_column("'+3 hours'"))


def key_usage(key_id: int, days: int = 30) -> KeyUsage:
    """Requests per day, errors, error rate and p95 latency of one key over the last `days` days:
    counts by one SQL aggregation; p95 by SQL on PostgreSQL, elsewhere from at most
    P95_SAMPLE_CAP recent durations. Buffered rows are written first."""
    flush()
    errors: dict[str, str] = {}
    days = _int(days, "days", 30, 1, MAX_USAGE_DAYS, errors)
    if errors:
        raise ValidationFailed(errors)
    first_day = nairobi_today() - timedelta(days=days - 1)
    since = _day_start(first_day)
    in_period = (ApiRequestLog.api_key_id == key_id, ApiRequestLog.created_at >= since)
    day = _nairobi_day(ApiRequestLog.created_at).label("day")
    per_day = db.session.execute(
        select(
            day,
            func.count(),
            func.sum(case((ApiRequestLog.status >= 400, 1), else_=0)),
            func.sum(case((ApiRequestLog.status >= 500, 1), else_=0)),
        )
        .where(*in_period)
        .group_by(day)
    ).all()
    counted = {_as_date(d): (int(n), int(e or 0), int(s or 0)) for d, n, e, s in per_day}
    series = [
        DayUsage(d, *counted.get(d, (0, 0, 0))[:2])
        for d in (first_day + timedelta(days=i) for i in range(days))
    ]
    total = sum(n for n, _, _ in counted.values())
    errs = sum(e for _, e, _ in counted.values())
    server = sum(s for _, _, s in counted.values())
    return KeyUsage(
        key_id=key_id,
        days=series,
        requests=int(total),
        errors=int(errs),
        server_errors=int(server),
        error_rate=(int(errs) / int(total)) if total else 0.0,
        p95_ms=_p95(in_period) if total else None,
    )


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _p95(in_period) -> int | None:
    if db.engine.dialect.name == "postgresql":
        value = db.session.scalar(
            select(
                func.percentile_disc(literal(0.95)).within_group(ApiRequestLog.duration_ms)
            ).where(*in_period)
        )
        return int(value) if value is not None else None
    durations = sorted(
        db.session.scalars(
            select(ApiRequestLog.duration_ms)
            .where(*in_period)
            .order_by(ApiRequestLog.id.desc())
            .limit(P95_SAMPLE_CAP)
        )
    )
    return nearest_rank(durations, 0.95)


def nearest_rank(sorted_values: list[int], fraction: float) -> int | None:
    """The nearest-rank percentile (what PostgreSQL's percentile_disc returns)."""
    if not sorted_values:
        return None
    return sorted_values[max(0, math.ceil(fraction * len(sorted_values)) - 1)]


def retention_cutoff(now: datetime | None = None) -> datetime:
    return (now or utcnow()) - timedelta(days=current_app.config["DAYSTAR_API_LOG_RETENTION_DAYS"])


def prune_batch(cutoff: datetime, batch_size: int = PRUNE_BATCH) -> int:
    """Delete up to `batch_size` of the oldest rows written before `cutoff`; how many went."""
    ids = list(
        db.session.scalars(
            select(ApiRequestLog.id)
            .where(ApiRequestLog.created_at < cutoff)
            .order_by(ApiRequestLog.id)
            .limit(batch_size)
        )
    )
    if not ids:
        return 0
    db.session.execute(
        delete(ApiRequestLog)
        .where(ApiRequestLog.id.in_(ids))
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return len(ids)
