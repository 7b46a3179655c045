"""Outbox jobs: dispatch one event to its subscribers, and sweep for events never dispatched."""

from flask import current_app

from app.hooks import plugin_manager
from app.jobs import enqueue, try_enqueue
from app.services import events as outbox


def enqueue_dispatch(event_id: int):
    """Queue the dispatch of one event; a Redis outage leaves it to the sweep."""
    return try_enqueue(dispatch_event, event_id, queue="high", job_id=f"dispatch-event-{event_id}")


def dispatch_event(event_id: int) -> None:
    """Call every subscriber of the event once, then mark it dispatched. Safe to run twice."""
    event = outbox.claim_for_dispatch(event_id)
    if event is None:
        return
    plugin_manager().hook.daystar_event(
        event_id=event.id,
        event_type=event.event_type,
        sequence=event.sequence,
        payload=event.payload,
    )
    outbox.mark_dispatched(event)


def sweep_outbox() -> int:
    """Enqueue every event still undispatched after the configured delay; returns how many."""
    ids = outbox.undispatched_ids(current_app.config["OUTBOX_SWEEP_AFTER_SECONDS"])
    for event_id in ids:
        enqueue(dispatch_event, event_id, queue="high", job_id=f"dispatch-event-{event_id}")
    return len(ids)
