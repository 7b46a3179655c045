"""What the integration log browser reads: entries matching the filters a page at a time (by key,
newest first, as fast at any depth), one entry with the records it names and its neighbours by
request and job, and every matching entry for the CSV export. Reads only."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import and_, false, func, or_, select

from app.clock import NAIROBI
from app.extensions import db
from app.models import IntegrationLogEntry, Member, MpesaTransaction
from app.services.lookup import ID_MAX

COUNT_CAP = 10_000  # counted up to here, then "10,000+": a COUNT over millions of rows is slow
EXPORT_LIMIT = 100_000
EXPORT_BATCH = 1_000
NEIGHBOURS = 50

# What the id search looks in ("any": all of them).
REF_KINDS = {
    "request": "Request id",
    "job": "Job id",
    "mpesa": "M-Pesa transaction (id or receipt)",
    "notification": "Notification",
    "delivery": "Webhook delivery",
    "api_key": "API key",
    "member": "Member",
}
NUMERIC_REFS = {
    "mpesa": IntegrationLogEntry.mpesa_transaction_id,
    "notification": IntegrationLogEntry.notification_id,
    "delivery": IntegrationLogEntry.webhook_delivery_id,
    "api_key": IntegrationLogEntry.api_key_id,
    "member": IntegrationLogEntry.member_id,
}


@dataclass(frozen=True)
class Filters:
    """The browser's filters, already checked (None: no filter)."""

    integration: str | None = None
    level: str | None = None
    date_from: date | None = None  # Nairobi days, both ends included
    date_to: date | None = None
    text: str | None = None  # in the message or the event name, any case
    event: str | None = None  # the event name, or its start ("mpesa." finds every M-Pesa event)
    error_kind: str | None = None
    ref: str | None = None  # an id naming a request, job or record
    ref_kind: str | None = None  # one of REF_KINDS; None: any


@dataclass(frozen=True)
class Cursor:
    """A position in the newest-first order: the entry's time and id."""

    created_at: datetime
    id: int

    def __str__(self) -> str:
        return f"{self.created_at.astimezone(UTC).strftime('%Y%m%dT%H%M%S.%f')}_{self.id}"

    @classmethod
    def of(cls, row: IntegrationLogEntry) -> "Cursor":
        return cls(row.created_at, row.id)

    @classmethod
    def parse(cls, text: str) -> "Cursor":
        """ValueError unless `text` is what str() wrote."""
        stamp, _, number = text.partition("_")
        if not (number.isascii() and number.isdigit() and 1 <= int(number) <= ID_MAX):
            raise ValueError("not a page position")
        at = datetime.strptime(stamp, "%Y%m%dT%H%M%S.%f").replace(tzinfo=UTC)
        return cls(at, int(number))


@dataclass
class LogPage:
    """One page, newest first, with the positions of the pages either side (None: none)."""

    items: list
    newer: Cursor | None
    older: Cursor | None
    matching: int  # how many entries match, counted up to COUNT_CAP
    capped: bool  # more than COUNT_CAP match


def start_of(day: date) -> datetime:
    """Midnight in Nairobi at the start of `day`, in UTC."""
    return datetime.combine(day, time(0), NAIROBI).astimezone(UTC)


def _like(text: str, leading: bool = True) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{'%' if leading else ''}{escaped}%"


def _mpesa_ids(text: str) -> list[int]:
    """The M-Pesa transactions a receipt number or a Daraja request id names."""
    columns = (
        MpesaTransaction.mpesa_receipt_number,
        MpesaTransaction.checkout_request_id,
        MpesaTransaction.merchant_request_id,
        MpesaTransaction.conversation_id,
        MpesaTransaction.originator_conversation_id,
        MpesaTransaction.transaction_id,
    )
    values = {text, text.upper()}
    return list(
        db.session.scalars(
            select(MpesaTransaction.id)
            .where(or_(*(column.in_(values) for column in columns)))
            .limit(100)
        )
    )


def _ref_condition(ref: str, kind: str | None):
    """Entries that carry `ref` as the id of the kind asked for (any kind when None)."""
    kinds = [kind] if kind else list(REF_KINDS)
    number = int(ref) if ref.isascii() and ref.isdigit() and int(ref) <= ID_MAX else None
    conditions = []
    for name in kinds:
        if name == "request":
            conditions.append(IntegrationLogEntry.request_id == ref)
        elif name == "job":
            conditions.append(IntegrationLogEntry.job_id == ref)
        elif number is not None:
            conditions.append(NUMERIC_REFS[name] == number)
        elif name == "mpesa":
            ids = _mpesa_ids(ref)
            if ids:
                conditions.append(IntegrationLogEntry.mpesa_transaction_id.in_(ids))
    return or_(*conditions) if conditions else false()


def entries_query(filters: Filters):
    """Entries matching `filters`, unordered."""
    entry = IntegrationLogEntry
    query = select(entry)
    for column, value in (
        (entry.integration, filters.integration),
        (entry.level, filters.level),
        (entry.error_kind, filters.error_kind),
    ):
        if value is not None:
            query = query.where(column == value)
    if filters.date_from:
        query = query.where(entry.created_at >= start_of(filters.date_from))
    if filters.date_to:
        query = query.where(entry.created_at < start_of(filters.date_to + timedelta(1)))
    if filters.event:
        query = query.where(entry.event.like(_like(filters.event, leading=False), escape="\\"))
    if filters.text:
        pattern = _like(filters.text)
        query = query.where(
            or_(entry.message.ilike(pattern, escape="\\"), entry.event.ilike(pattern, escape="\\"))
        )
    if filters.ref:
        query = query.where(_ref_condition(filters.ref, filters.ref_kind))
    return query


def _older_than(cursor: Cursor):
    entry = IntegrationLogEntry
    return or_(
        entry.created_at < cursor.created_at,
        and_(entry.created_at == cursor.created_at, entry.id < cursor.id),
    )


def _newer_than(cursor: Cursor):
    entry = IntegrationLogEntry
    return or_(
        entry.created_at > cursor.created_at,
        and_(entry.created_at == cursor.created_at, entry.id > cursor.id),
    )


NEWEST_FIRST = (IntegrationLogEntry.created_at.desc(), IntegrationLogEntry.id.desc())
OLDEST_FIRST = (IntegrationLogEntry.created_at, IntegrationLogEntry.id)


def _matching(filters: Filters) -> int:
    capped = entries_query(filters).with_only_columns(IntegrationLogEntry.id).limit(COUNT_CAP + 1)
    return db.session.scalar(select(func.count()).select_from(capped.subquery()))


def page(
    filters: Filters,
    per_page: int,
    before: Cursor | None = None,
    after: Cursor | None = None,
) -> LogPage:
    """The `per_page` newest entries older than `before`, or the `per_page` oldest newer than
    `after` (shown newest first), or the newest of all: by key, never by OFFSET."""
    if after is not None:
        rows = list(
            db.session.scalars(
                entries_query(filters)
                .where(_newer_than(after))
                .order_by(*OLDEST_FIRST)
                .limit(per_page + 1)
            )
        )
        more_newer = len(rows) > per_page
        items = list(reversed(rows[:per_page]))
        more_older = True
    else:
        rows = page_rows(filters, per_page + 1, before)
        items = rows[:per_page]
        more_older = len(rows) > per_page
        more_newer = before is not None
    if after is not None and len(rows) < per_page:
        # The newest entries are reached: show the newest page rather than a short one.
        return page(filters, per_page)
    matching = _matching(filters)
    return LogPage(
        items=items,
        newer=Cursor.of(items[0]) if items and more_newer else None,
        older=Cursor.of(items[-1]) if items and more_older else None,
        matching=min(matching, COUNT_CAP),
        capped=matching > COUNT_CAP,
    )


def get_entry(entry_id: int) -> IntegrationLogEntry | None:
    return db.session.get(IntegrationLogEntry, entry_id)


def neighbours(row: IntegrationLogEntry, field: str) -> list[IntegrationLogEntry]:
    """Other entries sharing `row`'s request_id or job_id (`field`), in time order, at most
    NEIGHBOURS of them."""
    value = getattr(row, field)
    if not value:
        return []
    column = getattr(IntegrationLogEntry, field)
    return list(
        db.session.scalars(
            select(IntegrationLogEntry)
            .where(column == value, IntegrationLogEntry.id != row.id)
            .order_by(*OLDEST_FIRST)
            .limit(NEIGHBOURS)
        )
    )


@dataclass(frozen=True)
class Related:
    """What the entry's ids name, where the record still exists (for the links' labels)."""

    member: Member | None = None
    transaction: MpesaTransaction | None = None


def related(row: IntegrationLogEntry) -> Related:
    return Related(
        member=db.session.get(Member, row.member_id) if row.member_id else None,
        transaction=(
            db.session.get(MpesaTransaction, row.mpesa_transaction_id)
            if row.mpesa_transaction_id
            else None
        ),
    )


def export_rows(filters: Filters, limit: int | None = None) -> Iterator[IntegrationLogEntry]:
    """Every entry matching `filters`, newest first, at most `limit` (EXPORT_LIMIT), read
    EXPORT_BATCH at a time by key (never all in memory)."""
    position = None
    left = EXPORT_LIMIT if limit is None else limit
    while left > 0:
        rows = page_rows(filters, min(EXPORT_BATCH, left), position)
        yield from rows
        if len(rows) < min(EXPORT_BATCH, left):
            return
        left -= len(rows)
        position = Cursor.of(rows[-1])
        for row in rows:  # written out: let the session forget them
            db.session.expunge(row)


def page_rows(filters: Filters, size: int, before: Cursor | None) -> list[IntegrationLogEntry]:
    """The `size` newest entries matching `filters` older than `before`."""
    query = entries_query(filters)
    if before is not None:
        query = query.where(_older_than(before))
    return list(db.session.scalars(query.order_by(*NEWEST_FIRST).limit(size)))
