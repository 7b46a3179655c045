"""Periodic jobs and the single cron scheduler."""

from datetime import timedelta

from app import clock
from app.extensions import db
from app.jobs import enqueue
from app.jobs.loans import mark_overdue_loans_defaulted
from app.jobs.schedule import PERIODIC, register_periodic_jobs
from app.models import Loan, LoanInstallment, LoanStatus
from worker import CRON_LOCK, SingleCronScheduler


def test_periodic_jobs_are_declared():
    funcs = {job["func"].__name__: job for job in PERIODIC}
    assert funcs["sweep_outbox"]["interval"] == 60
    assert "cron" in funcs["mark_overdue_loans_defaulted"]


def test_only_one_cron_scheduler_may_run(redis_conn):
    first = register_periodic_jobs(SingleCronScheduler(connection=redis_conn, name="first"))
    second = register_periodic_jobs(SingleCronScheduler(connection=redis_conn, name="second"))
    assert first.acquire()
    assert not second.acquire()
    assert redis_conn.get(CRON_LOCK) == b"first"
    first.register_birth()
    first.register_death()
    assert redis_conn.get(CRON_LOCK) is None
    assert second.acquire()


def test_cron_scheduler_enqueues_due_jobs(redis_conn):
    scheduler = register_periodic_jobs(SingleCronScheduler(connection=redis_conn))
    enqueued = scheduler.enqueue_jobs()  # interval jobs fire at start
    interval_jobs = [job["func"].__name__ for job in PERIODIC if "interval" in job]
    assert "sweep_outbox" in interval_jobs and "sweep_mpesa_callbacks" in interval_jobs
    assert [job.func.__name__ for job in enqueued] == interval_jobs


def test_default_job_runs_in_the_worker(app, active_loan, run_jobs):
    app.config["LOAN_DEFAULT_AFTER_DAYS"] = 30
    db.session.query(LoanInstallment).filter_by(loan_id=active_loan.id, number=1).update(
        {"due_date": clock.today() - timedelta(days=31)}
    )
    db.session.commit()
    enqueue(mark_overdue_loans_defaulted, queue="low")
    run_jobs()
    db.session.expire_all()
    assert db.session.get(Loan, active_loan.id).status == LoanStatus.DEFAULTED
