"""Failed jobs in the integration log: every exception a job raises is written there (a warning
while RQ will retry it, an error once its retries are spent), grouped by exception class."""

from app.models import Integration, LogLevel
from app.services import integration_log

# Which integration a job belongs to, by the module of its function.
INTEGRATIONS = {
    "app.jobs.mpesa": Integration.MPESA,
    "app.jobs.mpesa_reconcile": Integration.MPESA,
    "app.jobs.notifications": Integration.NOTIFICATIONS,
    "app.jobs.broadcasts": Integration.NOTIFICATIONS,
    "app.jobs.webhooks": Integration.WEBHOOKS,
    "app.jobs.api": Integration.ACCOUNTING_API,
}


def record_job_failure(job, exc_type, exc_value, traceback) -> bool:
    """An RQ exception handler: log the failure on a connection of its own (the job's transaction
    is rolled back), then let RQ's own handling go on (True)."""
    module = (job.func_name or "").rpartition(".")[0]
    retries_left = job.retries_left or 0
    integration_log.record_now(
        INTEGRATIONS.get(module, Integration.JOBS),
        "job.failed" if not retries_left else "job.retrying",
        f"{job.func_name}{tuple(job.args)!r} raised {exc_type.__name__}: {exc_value}"[:2000],
        LogLevel.ERROR if not retries_left else LogLevel.WARNING,
        context={"queue": job.origin, "retries_left": retries_left, "job": job.id},
        error_kind=exc_type.__name__,
        job_id=job.id,
    )
    return True
