"""Jobs that must start only once the caller's transaction has committed (never for work that
rolled back). If Redis is down at that moment the job is not lost: each kind of work has a sweep
that finds its rows still waiting and enqueues them again."""

from sqlalchemy import event as sa_event

from app.extensions import db

_JOBS = "daystar_after_commit_jobs"


def enqueue_after_commit(job: str, *args, **options) -> None:
    """Enqueue the job at dotted path `job` with `args` (ids) after the current transaction
    commits; `options` go to app.jobs.enqueue (queue, job_id, ...)."""
    db.session().info.setdefault(_JOBS, []).append((job, args, options))


@sa_event.listens_for(db.session, "after_commit")
def _enqueue(session) -> None:
    jobs = session.info.pop(_JOBS, [])
    if jobs:
        from app.jobs import try_enqueue

        for job, args, options in jobs:
            try_enqueue(job, *args, **options)


@sa_event.listens_for(db.session, "after_rollback")
def _forget(session) -> None:
    session.info.pop(_JOBS, None)
