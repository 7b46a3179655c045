"""The only worker entry point.

python worker.py [QUEUE ...]   an RQ worker (with RQ's scheduler, for retries and delayed jobs)
                               on the given queues, by default high, default, low; each job runs
                               in a forked work horse
python worker.py --no-fork ... the same, running each job in the worker process itself: a tenth
                               of the CPU per job, for busy queues (M-Pesa callbacks on `high`)
python worker.py --cron        the cron scheduler that enqueues app/jobs/schedule.py's periodic
                               jobs; exactly one may run, and a second one refuses to start
"""

import argparse
import gc
import os
import sys

from rq import SimpleWorker, Worker
from rq.cron import CronScheduler
from sqlalchemy.orm import configure_mappers

from app import create_app
from app.extensions import db
from app.jobs import QUEUES, get_queue, redis_client
from app.jobs.failures import record_job_failure
from app.jobs.performance import JobTimingMixin
from app.jobs.schedule import register_periodic_jobs

CRON_LOCK = "daystar:cron-scheduler"
CRON_LOCK_SECONDS = 150  # > the scheduler's longest sleep (60 s) plus a margin


class SingleCronScheduler(CronScheduler):
    """A CronScheduler that holds a Redis lock while it runs, so that a second one cannot start
    and enqueue every periodic job twice."""

    def acquire(self) -> bool:
        return bool(self.connection.set(CRON_LOCK, self.name, nx=True, ex=CRON_LOCK_SECONDS))

    def heartbeat(self) -> None:
        super().heartbeat()
        self.connection.set(CRON_LOCK, self.name, ex=CRON_LOCK_SECONDS)

    def register_death(self, pipeline=None) -> None:
        super().register_death(pipeline)
        if self.connection.get(CRON_LOCK) == self.name.encode():
            self.connection.delete(CRON_LOCK)


class ForkWorker(JobTimingMixin, Worker):
    """RQ's forking worker, with each job's run time recorded for the Performance page."""


class NoForkWorker(JobTimingMixin, SimpleWorker):
    """Runs each job in this process instead of a forked copy (forking the app costs more CPU
    than most of our jobs), and gives every job a fresh database session, as a fork would."""

    def execute_job(self, job, queue) -> None:
        try:
            super().execute_job(job, queue)
        finally:
            db.session.remove()


def run_cron(app) -> int:
    scheduler = register_periodic_jobs(SingleCronScheduler(connection=redis_client()))
    if not scheduler.acquire():
        holder = redis_client().get(CRON_LOCK)
        app.logger.error("another cron scheduler is running (%s); not starting a second", holder)
        return 1
    scheduler.start()
    return 0


def worker_nice(configured: str | None, database_url: str) -> int:
    """How much the worker lowers its CPU priority: jobs give way to the web processes, so that a
    callback is acknowledged at once even while the workers are busy crediting the ones before
    it. DAYSTAR_WORKER_NICE, or by default 10 on PostgreSQL and 0 on SQLite, where a worker
    holds the whole database's write lock while it credits: lowered, it is descheduled holding
    it, and every acknowledgement waits longer (bench/callbacks.py on SQLite: p99 1,023 ms at
    10, 245 ms at 0)."""
    if configured is not None:
        return int(configured)
    return 0 if database_url.startswith("sqlite") else 10


def lower_priority(nice: int) -> None:
    if nice > 0:
        os.nice(nice)


def run_worker(queue_names: list[str], burst: bool = False, fork: bool = True) -> int:
    # No pooled connection may cross the fork into a job's work horse.
    db.engine.dispose()
    if fork:
        # Done once here rather than in every work horse: the mappers' configuration, and the
        # garbage collector's walk over everything the app loaded, which in a horse copies the
        # whole inherited heap page by page (bench/notify.py: 2.5 times the jobs a second).
        configure_mappers()
        gc.freeze()
    worker_class = ForkWorker if fork else NoForkWorker
    worker = worker_class(
        [get_queue(name) for name in queue_names],
        connection=redis_client(),
        exception_handlers=[record_job_failure],
    )
    worker.work(with_scheduler=True, burst=burst)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("queues", nargs="*", metavar="QUEUE", help=f"one of {', '.join(QUEUES)}")
    parser.add_argument("--cron", action="store_true", help="run the periodic-job scheduler")
    parser.add_argument("--burst", action="store_true", help="run the queued jobs, then exit")
    parser.add_argument(
        "--no-fork", action="store_true", help="run each job in this process (no work horse)"
    )
    args = parser.parse_args(argv)
    unknown = set(args.queues) - set(QUEUES)
    if unknown:
        parser.error(
            f"unknown queue(s) {', '.join(sorted(unknown))}; choose from {', '.join(QUEUES)}"
        )
    app = create_app()  # also sets up logging (app/logging_setup.py): job ids, redaction, format
    with app.app_context():
        if args.cron:
            return run_cron(app)
        lower_priority(
            worker_nice(app.config["DAYSTAR_WORKER_NICE"], app.config["SQLALCHEMY_DATABASE_URI"])
        )
        return run_worker(args.queues or list(QUEUES), burst=args.burst, fork=not args.no_fork)


if __name__ == "__main__":
    sys.exit(main())
