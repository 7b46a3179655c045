"""The webhooks' subscriber to outbox events, registered with the hook registry (app.hooks)."""

from app.hooks import hookimpl


@hookimpl
def daystar_event(event_id: int, event_type: str, sequence: int, payload: dict) -> None:
    """Fan the event out to the webhook endpoints subscribed to it (idempotent)."""
    from app.jobs.webhooks import fan_out_event

    fan_out_event(event_id, event_type, sequence, payload)
