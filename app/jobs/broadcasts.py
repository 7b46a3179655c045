"""Broadcast jobs: one job stores a broadcast's notifications (and enqueues their sends); a sweep
finishes broadcasts whose messages have all gone and restarts any whose job Redis lost."""

from app.jobs import try_enqueue
from app.services.notifications import broadcasts


def run_broadcast(broadcast_id: int) -> str | None:
    """Store the notifications of one broadcast, page by page; running it again stores nothing
    twice and resumes after the last page committed. Its status afterwards."""
    return broadcasts.run(broadcast_id)


def enqueue_broadcast(broadcast_id: int):
    """Queue the broadcast's job once (a unique job id: a no-op while the job exists); a Redis
    outage is logged and the sweep tries again."""
    return try_enqueue(
        run_broadcast,
        broadcast_id,
        queue=broadcasts.RUN_QUEUE,
        job_id=broadcasts.job_id(broadcast_id),
        timeout=broadcasts.RUN_TIMEOUT,
    )


def sweep_broadcasts() -> int:
    """Every minute: broadcasts whose notifications are all sent, delivered, failed or skipped
    are finished; those still storing theirs are enqueued again (a no-op while their job
    exists). How many were finished."""
    storing, sending = broadcasts.open_ids()
    for broadcast_id in storing:
        enqueue_broadcast(broadcast_id)
    return broadcasts.finish_done(sending)
