"""M-Pesa statement reconciliation in the background, with a progress the portal polls."""

from app.jobs import try_enqueue
from app.services.mpesa import reconciliation

QUEUE = "default"
TIMEOUT = 1800  # a month of a busy paybill is a few minutes; far more means something is wrong


def job_id(reconciliation_id: int) -> str:
    return f"mpesa-reconcile-{reconciliation_id}"


def enqueue_reconciliation(reconciliation_id: int):
    """Queue the run once (a unique job id: a second call while it exists is a no-op); a Redis
    outage is logged and the run stays queued, and the progress page asks again."""
    return try_enqueue(
        reconcile_statement,
        reconciliation_id,
        queue=QUEUE,
        job_id=job_id(reconciliation_id),
        timeout=TIMEOUT,
    )


def reconcile_statement(reconciliation_id: int) -> None:
    """Write the report of one uploaded statement; nothing to do if it is finished already.
    An unexpected error is raised so that RQ retries the run from its first row."""
    reconciliation.run(reconciliation_id)
