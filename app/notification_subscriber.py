"""The notifications' subscriber to outbox events, registered with the hook registry (app.hooks)."""

from app.hooks import hookimpl


@hookimpl
def daystar_event(event_id: int, event_type: str, sequence: int, payload: dict) -> None:
    """Queue the member's message for an event that has one (a job of its own, so that a
    template problem never holds up the other subscribers). Idempotent: the job id is unique and
    the messages' dedupe keys come from the event id."""
    from app.jobs import enqueue
    from app.services.notifications.events import EVENT_TEMPLATES

    if event_type in EVENT_TEMPLATES:
        enqueue(
            "app.jobs.notifications.notify_event",
            event_id,
            queue="default",
            job_id=f"notify-event-{event_id}",
        )
