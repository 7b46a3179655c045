"""The only worker entry point.

python worker.py [QUEUE ...]   an RQ worker (with RQ's scheduler, for retries and delayed jobs)
                               on the given queues, by default high, default, low; a job from
                               `high` or `default` (callbacks, sends, webhooks: many and short)
                               runs in the worker process itself, a tenth of the CPU of a fork; a
                               job from `low` (reminders, nightly jobs: long and large) in a forked
                               work horse, whose memory goes with it
python worker.py --no-fork ... the same, running every job in the worker process
python worker.py --fork ...    the same, running every job in a forked work horse
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


IN_PROCESS_QUEUES = frozenset({"high", "default"})


class DaystarWorker(JobTimingMixin, Worker):
    """RQ's worker, with each job's run time recorded for the Performance page. A job from one
    of `in_process_queues` runs in this process with a fresh database session, as a fork would
    give it (forking the app costs more CPU than most of our jobs); any other job runs in a
    forked work horse, which opens database connections of its own."""

    in_process_queues = IN_PROCESS_QUEUES
    _in_process = False  # while a job runs in this process

    def execute_job(self, job, queue) -> None:
        if queue.name not in self.in_process_queues:
            super().execute_job(job, queue)
            return
        self._in_process = True
        try:
            SimpleWorker.execute_job(self, job, queue)
        finally:
            self._in_process = False
            db.session.remove()

    def get_heartbeat_ttl(self, job, working_time: float = 0.0) -> int:
        # No horse monitor renews the heartbeat while a job runs in this process: it must last
        # the job's whole timeout, or the job would be taken for abandoned.
        if self._in_process:
            return SimpleWorker.get_heartbeat_ttl(self, job, working_time)
        return super().get_heartbeat_ttl(job, working_time)

    def main_work_horse(self, job, queue) -> None:
        # Connections the worker's own jobs opened stay the worker's: the horse opens its own.
        db.engine.dispose(close=False)
        super().main_work_horse(job, queue)

    def kill_horse(self, *args, **kwargs) -> None:
        if self.horse_pid:  # never the worker's own process group, when no horse is running
            super().kill_horse(*args, **kwargs)


class NoForkWorker(DaystarWorker):
    """Every job in this process (`worker.py --no-fork`)."""

    in_process_queues = frozenset(QUEUES)


class ForkWorker(DaystarWorker):
    """Every job in a forked work horse (`worker.py --fork`)."""

    in_process_queues = frozenset()


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


WORKER_CLASSES = {None: DaystarWorker, False: NoForkWorker, True: ForkWorker}


def run_worker(queue_names: list[str], burst: bool = False, fork: bool | None = None) -> int:
    """`fork`: True forks a work horse for every job, False for none, None for `low`'s only."""
    db.engine.dispose()
    # Done once here rather than in every work horse: the mappers' configuration, and the
    # garbage collector's walk over everything the app loaded, which in a horse copies the
    # whole inherited heap page by page (bench/notify.py: 2.5 times the jobs a second).
    configure_mappers()
    gc.freeze()
    worker = WORKER_CLASSES[fork](
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
    forking = parser.add_mutually_exclusive_group()
    forking.add_argument(
        "--no-fork",
        dest="fork",
        action="store_false",
        default=None,
        help="run every job in this process (no work horse)",
    )
    forking.add_argument(
        "--fork", dest="fork", action="store_true", help="run every job in a forked work horse"
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
        return run_worker(args.queues or list(QUEUES), burst=args.burst, fork=args.fork)


if __name__ == "__main__":
    sys.exit(main())
