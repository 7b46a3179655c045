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


def flush_api_request_log(max_batches: int = 1000) -> int:
    """Insert the API request log rows buffered in Redis, a batch per transaction, until the
    buffer is empty (or `max_batches` were written: the next run goes on); returns how many rows
    were written. The web processes flush as they go; this writes what they left behind."""
    total = 0
    for _ in range(max_batches):
        written = api_log.flush()
        total += written
        if written < api_log.FLUSH_BATCH:
            return total
    return total
