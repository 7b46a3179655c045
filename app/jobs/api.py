"""Accounting API jobs."""

from app.services import api_log


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
