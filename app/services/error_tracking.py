"""Error tracking: the integration log's errors (and, if asked, warnings) of a period grouped by
integration and kind, with how many, when first and last seen, and the latest message. Reads
only."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from app.extensions import db
from app.models import IntegrationLogEntry, LogLevel
from app.models.base import utcnow

PERIODS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
PERIOD_LABELS = {"24h": "24 hours", "7d": "7 days", "30d": "30 days"}


@dataclass(frozen=True)
class ErrorGroup:
    integration: str
    error_kind: str | None
    level: str
    count: int
    first_seen: datetime
    last_seen: datetime
    last_message: str


def groups(period: str, include_warnings: bool = False, now: datetime | None = None):
    """The period's errors grouped by (integration, error kind, level), the most recently seen
    first: one GROUP BY over the (level, created_at) index, then one query for the latest
    message of each group."""
    since = (now or utcnow()) - PERIODS[period]
    levels = [LogLevel.ERROR, LogLevel.WARNING] if include_warnings else [LogLevel.ERROR]
    entry = IntegrationLogEntry
    rows = db.session.execute(
        select(
            entry.integration,
            entry.error_kind,
            entry.level,
            func.count(),
            func.min(entry.created_at),
            func.max(entry.created_at),
            func.max(entry.id),
        )
        .where(entry.level.in_(levels), entry.created_at >= since)
        .group_by(entry.integration, entry.error_kind, entry.level)
    ).all()
    latest_ids = [row[6] for row in rows]
    messages = dict(
        db.session.execute(select(entry.id, entry.message).where(entry.id.in_(latest_ids))).all()
        if latest_ids
        else []
    )
    found = [
        ErrorGroup(
            integration=integration,
            error_kind=kind,
            level=level,
            count=count,
            first_seen=first,
            last_seen=last,
            last_message=messages.get(latest_id, ""),
        )
        for integration, kind, level, count, first, last, latest_id in rows
    ]
    return sorted(found, key=lambda g: (g.last_seen, g.count), reverse=True)
