"""Accounting API jobs."""

from app.services import api_log


def prune_api_request_log(batch_size: int = api_log.PRUNE_BATCH) -> int:
    """Delete API request log rows older than DAYSTAR_API_LOG_RETENTION_DAYS, in batches of
    `batch_size` (one short transaction each, so the table is never locked for long); returns
    how many went. Safe to rerun: it only ever deletes rows past the cutoff."""
    cutoff = api_log.retention_cutoff()
    total = 0
    while True:
        deleted = api_log.prune_batch(cutoff, batch_size)
        total += deleted
        if deleted < batch_size:
            return total
