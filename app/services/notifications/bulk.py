"""Storing many notifications at once (reminders to thousands of members): one multi-row INSERT
per batch that skips any whose dedupe key is taken, one commit per batch, and one send job per
SEND_BATCH notifications instead of one job each (a worker forks per job; the send itself is the
same `delivery.deliver`, which claims each notification, so nothing is sent twice).

Each stored row is due at once (scheduled_for = now), so that if Redis loses the send jobs the
minute sweep (`send_due_notifications`) still finds and sends them."""

import json
from dataclasses import dataclass

from sqlalchemy import String, any_, bindparam, column, func, insert, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.extensions import db
from app.models import Channel, Notification, NotificationStatus, Priority
from app.models.base import utcnow
from app.services.after_commit import enqueue_after_commit
from app.services.notifications import config
from app.services.notifications.gateway import MAX_SUBJECT, QUEUE_OF
from app.services.notifications.sms_text import shape

BATCH_JOB = "app.jobs.notifications.deliver_batch"
SEND_BATCH = 50  # notifications per send job
BATCH_TIMEOUT = 1800  # seconds: 50 sends, each a few provider calls with their own timeouts


@dataclass(frozen=True)
class Outgoing:
    """One message for one member on one channel; `dedupe_key` gains ":<channel>" as the
    gateway's keys do."""

    recipient_id: int
    channel: str
    contact: str
    message: str
    dedupe_key: str
    subject: str | None = None
    html: str | None = None

    @property
    def key(self) -> str:
        return f"{self.dedupe_key}:{self.channel}"


def taken_keys(keys: list[str]) -> set[str]:
    """Those of `keys` that a stored notification has already."""
    if not keys:
        return set()
    # The keys as one parameter (a JSON or array value): an IN list of thousands of bound
    # parameters costs more to build than the query takes to run.
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        condition = Notification.dedupe_key == any_(bindparam("keys", keys, type_=ARRAY(String)))
    elif dialect == "sqlite":
        values = select(column("value")).select_from(func.json_each(json.dumps(keys)))
        condition = Notification.dedupe_key.in_(values)
    else:
        condition = Notification.dedupe_key.in_(keys)
    return set(db.session.scalars(select(Notification.dedupe_key).where(condition)))


# The columns a bulk insert fills, with their PostgreSQL array types (see _insert_postgresql).
_ARRAY_TYPES = {
    "recipient_id": "integer[]",
    "notification_type": "varchar[]",
    "channel": "varchar[]",
    "subject": "varchar[]",
    "message": "text[]",
    "html_message": "text[]",
    "recipient_contact": "varchar[]",
    "status": "varchar[]",
    "retry_count": "integer[]",
    "max_retries": "integer[]",
    "priority": "varchar[]",
    "scheduled_for": "timestamptz[]",
    "event_type": "varchar[]",
    "template": "varchar[]",
    "dedupe_key": "varchar[]",
    "encoding": "varchar[]",
    "segments": "integer[]",
    "created_at": "timestamptz[]",
    "updated_at": "timestamptz[]",
    "broadcast_id": "integer[]",
}
_UNNEST_INSERT = text(
    f"INSERT INTO notifications ({', '.join(_ARRAY_TYPES)}) SELECT * FROM unnest("  # noqa: S608
    + ", ".join(f"CAST(:{name} AS {kind})" for name, kind in _ARRAY_TYPES.items())
    + ") ON CONFLICT DO NOTHING RETURNING id"
)


def _insert_postgresql(rows: list[dict]) -> list[int]:
    # One array per column: a short statement whatever the number of rows. A multi-row VALUES
    # list of 20 columns x 1,000 rows is a statement psycopg re-parses on every page, which
    # took most of the time.
    params = {name: [row[name] for row in rows] for name in _ARRAY_TYPES}
    return list(db.session.scalars(_UNNEST_INSERT, params))


def _insert_skipping_duplicates(rows: list[dict]) -> list[int]:
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        return _insert_postgresql(rows)
    # The table, not the mapped class: a Core multi-row INSERT, without the ORM's bulk machinery.
    table = Notification.__table__
    if dialect == "sqlite":
        statement = sqlite_insert(table).on_conflict_do_nothing()
    else:  # no portable "skip duplicates": the caller filtered with taken_keys()
        statement = insert(table)
    return list(db.session.scalars(statement.returning(table.c.id), rows))


def store(
    items: list[Outgoing],
    kind: str,
    priority: str = Priority.LOW,
    event_type: str | None = None,
    broadcast_id: int | None = None,
) -> list[int]:
    """Store `items` (those whose dedupe key is taken are skipped) as pending notifications of
    type and template `kind` (and of broadcast `broadcast_id`, if given), due now, and enqueue
    their sends after the commit in jobs of SEND_BATCH. The ids stored. Commits."""
    if not items:
        return []
    now = utcnow()
    max_retries = int(config.current().max_retries)
    rows = []
    for item in items:
        row = {
            "recipient_id": item.recipient_id,
            "notification_type": kind[:40],
            "channel": str(item.channel),
            "subject": (item.subject or "")[:MAX_SUBJECT] or None,
            "message": item.message,
            "html_message": item.html if item.channel == Channel.EMAIL else None,
            "recipient_contact": item.contact,
            "status": str(NotificationStatus.PENDING),
            "retry_count": 0,
            "max_retries": max_retries,
            "priority": str(priority),
            "scheduled_for": now,
            "event_type": event_type,
            "template": kind,
            "dedupe_key": item.key,
            "encoding": None,
            "segments": None,
            "created_at": now,
            "updated_at": now,
            "broadcast_id": broadcast_id,
        }
        if item.channel == Channel.SMS:
            sms = shape(item.message)
            row["encoding"], row["segments"] = sms.encoding, sms.segments
        rows.append(row)
    ids = sorted(_insert_skipping_duplicates(rows))
    for start in range(0, len(ids), SEND_BATCH):
        chunk = ids[start : start + SEND_BATCH]
        enqueue_after_commit(
            BATCH_JOB,
            chunk,
            queue=QUEUE_OF[priority],
            job_id=f"notify-batch-{chunk[0]}-{chunk[-1]}",
            timeout=BATCH_TIMEOUT,
        )
    db.session.commit()
    return ids
