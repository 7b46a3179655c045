"""Failed jobs: real jobs fail in a real RQ worker (burst SimpleWorker on the test Redis); the
page lists them per queue with their exception (secrets redacted), and an administrator retries
or deletes one or all, each audited. Other roles get 403."""

import re

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from rq.job import Job, JobStatus
from sqlalchemy import select

from app.extensions import db
from app.jobs import enqueue, get_queue, redis_client
from app.models import AuditLog, Role
from app.services import failed_jobs
from tests.blueprints.logs.conftest import HX, add_entry

URL = "/integrations/logs/failed-jobs"
FLAG = "test:failed-jobs:flag"
DONE = "test:failed-jobs:done"


def refuse_payment(reason: str) -> None:
    """A job that fails as a real one would: its exception propagates to RQ."""
    raise ValueError(reason)


def pay_when_allowed(loan_id: int) -> None:
    """Fails until the test sets FLAG; then records that it ran."""
    if not redis_client().get(FLAG):
        raise RuntimeError(f"loan {loan_id} is locked")
    redis_client().rpush(DONE, loan_id)


def fail(run_jobs, func, *args, queue="default") -> Job:
    job = enqueue(func, *args, queue=queue, retry=None)
    run_jobs()
    assert job.get_status(refresh=True) == JobStatus.FAILED
    return job


def failed_ids(queue: str = "default") -> list[str]:
    return get_queue(queue).failed_job_registry.get_job_ids()


def audit_actions() -> list[tuple[str, dict]]:
    db.session.expire_all()
    entries = select(AuditLog).where(AuditLog.target_type == "rq_job").order_by(AuditLog.id)
    return [(a.action, a.details) for a in db.session.scalars(entries)]


def test_the_list_shows_each_queues_failed_jobs(admin_client, run_jobs):
    first = fail(run_jobs, refuse_payment, "no such loan 12")
    second = fail(run_jobs, pay_when_allowed, 7, queue="high")
    page = admin_client.get(URL)
    assert page.status_code == 200 and "<html" in page.text
    html = page.text
    assert (
        'id="failed-high"' in html and 'id="failed-default"' in html and 'id="failed-low"' in html
    )
    assert f"job_id={first.id}" in html and f"job_id={second.id}" in html
    assert "test_failed_jobs.refuse_payment" in html and "&#39;no such loan 12&#39;" in html
    assert "ValueError: no such loan 12" in html
    assert "RuntimeError: loan 7 is locked" in html
    assert "High queue <small>· 1 failed" in html and "Low queue <small>· 0 failed" in html
    partial = admin_client.get(URL, headers=HX)
    assert partial.status_code == 200 and "<html" not in partial.text
    assert partial.text.lstrip().startswith('<div id="failed-jobs"')
    assert "HX-Request" in partial.headers["Vary"]


def test_a_job_shows_its_whole_traceback_redacted(admin_client, run_jobs):
    job = fail(run_jobs, refuse_payment, "password=hunter2-very-secret")
    url = f"{URL}/job?queue=default&job_id={job.id}"
    page = admin_client.get(url)
    assert page.status_code == 200 and "<html" in page.text
    assert "Traceback (most recent call last)" in page.text
    assert "refuse_payment" in page.text and "ValueError" in page.text
    assert "hunter2-very-secret" not in page.text and "[REDACTED]" in page.text
    partial = admin_client.get(url, headers=HX)
    assert partial.text.lstrip().startswith('<section id="failed-job"')
    assert "hunter2-very-secret" not in admin_client.get(URL).text


def test_retry_puts_the_job_back_and_it_runs(admin_client, run_jobs, redis_conn):
    job = fail(run_jobs, pay_when_allowed, 7)
    response = admin_client.post(f"{URL}/retry", data={"queue": "default", "job_id": job.id},
                                 headers=HX)  # fmt: skip
    assert response.status_code == 200 and response.headers["HX-Redirect"] == URL
    assert failed_ids() == [] and job.get_status(refresh=True) == JobStatus.QUEUED
    assert audit_actions() == [
        ("job.retried", {"queue": "default", "job_id": job.id,
                         "function": "tests.blueprints.logs.test_failed_jobs.pay_when_allowed"}),
    ]  # fmt: skip
    redis_conn.set(FLAG, "1")
    run_jobs()
    assert job.get_status(refresh=True) == JobStatus.FINISHED
    assert redis_conn.lrange(DONE, 0, -1) == [b"7"]
    assert f"Job {job.id}" in admin_client.get(URL).text  # the flash message


def test_a_retried_job_that_fails_again_is_back_in_the_list(admin_client, run_jobs):
    job = fail(run_jobs, pay_when_allowed, 8)
    admin_client.post(f"{URL}/retry", data={"queue": "default", "job_id": job.id})
    run_jobs()
    assert failed_ids() == [job.id]


def test_delete_removes_the_job_for_good(admin_client, run_jobs):
    job = fail(run_jobs, refuse_payment, "gone")
    response = admin_client.post(f"{URL}/delete", data={"queue": "default", "job_id": job.id})
    assert response.status_code == 303 and response.headers["Location"] == URL
    assert failed_ids() == []
    assert not Job.exists(job.id, connection=redis_client())
    assert audit_actions()[0][0] == "job.deleted"
    again = admin_client.post(f"{URL}/delete", data={"queue": "default", "job_id": job.id})
    assert again.status_code == 404


def test_retry_all_and_delete_all_act_on_one_queue(admin_client, run_jobs, redis_conn):
    for n in range(3):
        fail(run_jobs, pay_when_allowed, n)
    other = fail(run_jobs, refuse_payment, "stays", queue="low")
    response = admin_client.post(f"{URL}/retry-all", data={"queue": "default"}, headers=HX)
    assert response.headers["HX-Redirect"] == URL
    assert failed_ids() == [] and failed_ids("low") == [other.id]
    assert "3 failed jobs of default queued again." in admin_client.get(URL).text
    redis_conn.set(FLAG, "1")
    run_jobs()
    assert sorted(redis_conn.lrange(DONE, 0, -1)) == [b"0", b"1", b"2"]

    admin_client.post(f"{URL}/delete-all", data={"queue": "low"})
    assert failed_ids("low") == []
    assert [a for a, _ in audit_actions()] == ["job.retried_all", "job.deleted_all"]
    assert audit_actions()[1][1] == {"queue": "low", "count": 1}


def test_the_buttons_ask_first(admin_client, run_jobs):
    fail(run_jobs, refuse_payment, "x")
    html = admin_client.get(URL).text
    assert len(re.findall(r"hx-confirm=", html)) == 4  # retry, delete, retry all, delete all
    assert 'name="csrf_token"' in html


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/retry", {"queue": "default", "job_id": "no-such-job"}),
        ("/retry", {"queue": "nowhere", "job_id": "x"}),
        ("/retry", {"queue": "default", "job_id": ""}),
        ("/delete", {"queue": "default", "job_id": "x" * 500}),
        ("/retry-all", {"queue": ""}),
        ("/delete-all", {}),
    ],
)
def test_unknown_jobs_and_queues_are_404(admin_client, path, data):
    assert admin_client.post(URL + path, data=data).status_code == 404


def test_a_job_page_for_an_unknown_job_is_404(admin_client):
    for query in ({"queue": "default", "job_id": "nope"}, {"queue": "x", "job_id": "y"}, {}):
        for headers in ({}, HX):
            assert (
                admin_client.get(f"{URL}/job", query_string=query, headers=headers).status_code
                == 404
            )


@pytest.mark.parametrize("role", [Role.LOAN_OFFICER, Role.ACCOUNTANT, Role.VIEWER])
def test_only_administrators(login, run_jobs, role):
    job = fail(run_jobs, refuse_payment, "x")
    client = login(role)
    assert client.get(URL).status_code == 403
    assert client.get(f"{URL}/job?queue=default&job_id={job.id}").status_code == 403
    for path in ("/retry", "/delete", "/retry-all", "/delete-all"):
        response = client.post(URL + path, data={"queue": "default", "job_id": job.id})
        assert response.status_code == 403
    assert failed_ids() == [job.id]


def test_redis_down_is_explained_not_a_500(admin_client, monkeypatch):
    def down(*args, **kwargs):
        raise RedisConnectionError("Connection refused")

    monkeypatch.setattr(failed_jobs, "all_failures", down)
    monkeypatch.setattr(failed_jobs, "retry_all", down)
    for headers in ({}, HX):
        response = admin_client.get(URL, headers=headers)
        assert response.status_code == 503
        assert "Redis cannot be reached" in response.text
    assert admin_client.post(f"{URL}/retry-all", data={"queue": "low"}).status_code == 503


def test_a_log_entry_links_to_its_failed_job(admin_client, login, run_jobs):
    job = fail(run_jobs, refuse_payment, "x")
    row = add_entry(integration="jobs", level="error", job_id=job.id,
                    context={"queue": "default", "job": job.id})  # fmt: skip
    url = f"/integrations/logs/entry?entry_id={row.id}"
    assert f"{URL}/job?queue=default&amp;job_id={job.id}" in admin_client.get(url).text
    assert f"{URL}/job" not in login(Role.VIEWER).get(url).text
    admin_client.post(f"{URL}/delete", data={"queue": "default", "job_id": job.id})
    assert f"{URL}/job" not in admin_client.get(url).text  # no longer failed
