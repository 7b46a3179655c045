"""Retention job."""

import logging

from app.services import retention

log = logging.getLogger(__name__)


def apply_retention() -> dict:
    """Nightly: delete integration log entries and API request log rows past their ages and blank
    old notifications' message bodies, batch by batch; what went (rerunning finds nothing)."""
    pruned = retention.apply()
    log.info("retention: %s", pruned)
    return vars(pruned)
