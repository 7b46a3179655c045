"""Performance: the periodic rollup job, and the worker mixin that times every job."""

import logging

from app.models import PerformanceSeries
from app.services import performance

log = logging.getLogger(__name__)


def roll_up_performance() -> dict:
    """Turn the five minutes just over into performance rollup rows (performance.roll_up): safe
    to run again at any time, since recomputed buckets are replaced and Redis samples are taken
    once. Returns the rows written per series."""
    result = performance.roll_up()
    if result.skipped:
        log.info("performance rollup skipped: %s", result.skipped)
    return result.rows


class JobTimingMixin:
    """For an RQ worker class: after each job (success or failure), its run time, function,
    queue and outcome go to Redis for the Performance page, in one round trip that never fails
    the job. Put it before the worker class: `class W(JobTimingMixin, SimpleWorker)`."""

    def perform_job(self, job, queue, execution) -> bool:
        succeeded = super().perform_job(job, queue, execution)
        try:
            if job.started_at and job.ended_at:
                duration_ms = (job.ended_at - job.started_at).total_seconds() * 1000
                performance.record(
                    PerformanceSeries.JOB_DURATION,
                    f"{queue.name}:{job.func_name}",
                    duration_ms,
                    failed=not succeeded,
                    connection=self.connection,
                )
        except Exception:
            log.debug("job %s not timed", getattr(job, "id", "?"), exc_info=True)
        return succeeded
