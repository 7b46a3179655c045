"""Failed jobs (administrators only): RQ's failed-job registry of each queue, one job's whole
traceback, and Retry / Delete for one job or for all of a queue's, each audited."""

from functools import wraps

from flask import flash, make_response, render_template, request, url_for
from redis.exceptions import RedisError

from app.auth import current_actor, requires
from app.blueprints.logs import bp
from app.htmx import hx_redirect, is_htmx, render_view
from app.jobs import QUEUES
from app.services import failed_jobs
from app.services.errors import NotFound

UNREACHABLE = "Redis cannot be reached, so the failed jobs cannot be read now. Try again shortly."


def _queue(values) -> str:
    name = (values.get("queue") or "").strip()
    if name not in QUEUES:
        raise NotFound(f"There is no queue {name[:20]}." if name else "Say which queue.")
    return name


def _job_id(values) -> str:
    return (values.get("job_id") or "").strip()


def _unreachable():
    """503 with a plain explanation, in the page or the partial."""
    template = "logs/_failed_jobs.html" if is_htmx() else "logs/failed_jobs.html"
    response = make_response(render_template(template, queues=None, error=UNREACHABLE), 503)
    response.vary.add("HX-Request")
    return response


def redis_guard(view):
    """The view, answering 503 with an explanation instead of a 500 while Redis is down."""

    @wraps(view)
    def guarded(*args, **kwargs):
        try:
            return view(*args, **kwargs)
        except RedisError:
            return _unreachable()

    return guarded


@bp.get("/failed-jobs", endpoint="failed_jobs")
@requires("manage_settings")
@redis_guard
def failed_jobs_index():
    """Each queue's failed jobs, newest first: id, function, arguments, when and why it failed,
    with Retry and Delete, and Retry all / Delete all per queue."""
    return render_view(
        "logs/failed_jobs.html",
        "logs/_failed_jobs.html",
        queues=failed_jobs.all_failures(),
        error=None,
    )


@bp.get("/failed-jobs/job")
@requires("manage_settings")
@redis_guard
def failed_job():
    """One failed job: its call, when it failed and its whole traceback (secrets redacted), with
    Retry and Delete."""
    job = failed_jobs.get(_queue(request.args), _job_id(request.args))
    return render_view("logs/failed_job.html", "logs/_failed_job.html", job=job)


def _done(message: str):
    flash(message, "success")
    return hx_redirect(url_for("logs.failed_jobs"))


@bp.post("/failed-jobs/retry")
@requires("manage_settings")
@redis_guard
def retry_job():
    """Put one failed job back on its queue, as it was (audited)."""
    job = failed_jobs.retry(_queue(request.form), _job_id(request.form), current_actor())
    return _done(f"Job {job.id} ({job.function}) is queued again on {job.queue}.")


@bp.post("/failed-jobs/delete")
@requires("manage_settings")
@redis_guard
def delete_job():
    """Delete one failed job and its data for good (audited)."""
    job = failed_jobs.delete(_queue(request.form), _job_id(request.form), current_actor())
    return _done(f"Job {job.id} deleted.")


@bp.post("/failed-jobs/retry-all")
@requires("manage_settings")
@redis_guard
def retry_all_jobs():
    """Put every failed job of one queue back on it (audited)."""
    queue = _queue(request.form)
    count = failed_jobs.retry_all(queue, current_actor())
    return _done(f"{count} failed job{'s' if count != 1 else ''} of {queue} queued again.")


@bp.post("/failed-jobs/delete-all")
@requires("manage_settings")
@redis_guard
def delete_all_jobs():
    """Delete every failed job of one queue for good (audited)."""
    queue = _queue(request.form)
    count = failed_jobs.delete_all(queue, current_actor())
    return _done(f"{count} failed job{'s' if count != 1 else ''} of {queue} deleted.")
