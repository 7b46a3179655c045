"""The outbox: events are written inside the caller's transaction and dispatched after it commits.

After a commit, each new event's `dispatch_event` job is enqueued. If Redis is down at that moment
the event stays undispatched in the database and the periodic sweep enqueues it later.
"""

import logging
from datetime import timedelta

from sqlalchemy import event as sa_event
from sqlalchemy import func, select, text, update

from app.extensions import db
from app.models import Event
from app.models.base import utcnow

log = logging.getLogger(__name__)

EVENT_TYPES = (
    "member.created",
    "loan.created",
    "loan.approved",
    "loan.declined",
    "loan.disbursed",
    "loan.completed",
    "loan.defaulted",
    "repayment.received",
    "contribution.received",
)
# Any fixed number: the PostgreSQL advisory lock that serialises sequence allocation.
_SEQUENCE_LOCK = 7_351_001
_PENDING = "daystar_outbox_pending"


def record_event(event_type: str, subject_type: str, subject_id: int, payload: dict) -> Event:
    """Add an event to the current transaction, numbered after every event committed before it."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    session = db.session()
    if session.get_bind().dialect.name == "postgresql":
        # Held until commit: sequence numbers are then allocated in commit order.
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SEQUENCE_LOCK})
    last = session.scalar(select(func.coalesce(func.max(Event.sequence), 0)))
    event = Event(
        sequence=last + 1,
        event_type=event_type,
        subject_type=subject_type,
        subject_id=subject_id,
        payload=payload,
    )
    session.add(event)
    session.flush()
    session.info.setdefault(_PENDING, []).append(event.id)
    return event


@sa_event.listens_for(db.session, "after_commit")
def _enqueue_committed(session) -> None:
    event_ids = session.info.pop(_PENDING, [])
    if event_ids:
        from app.jobs import events as event_jobs

        for event_id in event_ids:
            event_jobs.enqueue_dispatch(event_id)


@sa_event.listens_for(db.session, "after_rollback")
def _forget_rolled_back(session) -> None:
    session.info.pop(_PENDING, None)


def claim_for_dispatch(event_id: int) -> Event | None:
    """The event if it still needs dispatching (its attempt is counted and committed), else None."""
    claimed = db.session.execute(
        update(Event)
        .where(Event.id == event_id, Event.dispatched_at.is_(None))
        .values(dispatch_attempts=Event.dispatch_attempts + 1)
    ).rowcount
    db.session.commit()
    return db.session.get(Event, event_id) if claimed else None


def mark_dispatched(event: Event) -> None:
    """Record that every subscriber has been called for this event."""
    event.dispatched_at = utcnow()
    db.session.commit()


def undispatched_ids(older_than_seconds: int, limit: int = 1000) -> list[int]:
    """Ids of events committed more than `older_than_seconds` ago and still not dispatched."""
    cutoff = utcnow() - timedelta(seconds=older_than_seconds)
    return list(
        db.session.scalars(
            select(Event.id)
            .where(Event.dispatched_at.is_(None), Event.created_at < cutoff)
            .order_by(Event.id)
            .limit(limit)
        )
    )
