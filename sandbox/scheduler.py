"""Delayed jobs for every simulated provider: background threads (one by default) run each job
when it is due, and `flush()` runs every pending job at once so tests need not wait. With more
threads, jobs due together run at once, as a provider's many servers post callbacks; one
message's receipts still go in order, each scheduled by the job that posted the one before."""

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

# A job returns the deliveries it made (a list, possibly empty) so that flush() can report them.
Job = Callable[[], list | None]

_HELD = float("inf")  # due time of a job that waits for flush()


class Scheduler:
    def __init__(self, threads: int = 1):
        if threads < 1:
            raise ValueError("the scheduler needs at least one thread")
        self._cond = threading.Condition()
        self._queue: list[tuple[float, int, Job]] = []
        self._seq = itertools.count()
        self._running = 0
        self._size = threads
        self._threads: list[threading.Thread] = []

    def schedule(self, job: Job, delay: float | None) -> None:
        """Runs `job` after `delay` seconds in the background, or only on flush() if delay is None."""
        due = _HELD if delay is None else time.monotonic() + delay
        with self._cond:
            heapq.heappush(self._queue, (due, next(self._seq), job))
            if not self._threads:
                for n in range(self._size):
                    thread = threading.Thread(
                        target=self._loop, name=f"sandbox-scheduler-{n}", daemon=True
                    )
                    thread.start()
                    self._threads.append(thread)
            self._cond.notify_all()

    def pending(self) -> int:
        """How many jobs wait to run."""
        with self._cond:
            return len(self._queue)

    def clear(self) -> None:
        """Forgets every pending job (a job already running finishes)."""
        with self._cond:
            self._queue.clear()
            self._cond.notify_all()

    def flush(self, max_rounds: int = 50) -> list:
        """Runs every pending job now, in this thread, including jobs those jobs schedule, after
        waiting for any job a background thread is running; returns their deliveries."""
        delivered: list = []
        for _ in range(max_rounds):
            with self._cond:
                while self._running:
                    self._cond.wait(0.05)
                jobs = [job for _, _, job in sorted(self._queue)]
                self._queue.clear()
            if not jobs:
                return delivered
            for job in jobs:
                delivered.extend(self._run(job))
        log.warning("flush stopped after %s rounds: jobs keep scheduling jobs", max_rounds)
        return delivered

    def _run(self, job: Job) -> list:
        try:
            return job() or []
        except Exception:  # a broken job must not stop the others
            log.exception("sandbox job failed")
            return []

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue or self._queue[0][0] > time.monotonic():
                    timeout = None
                    if self._queue and self._queue[0][0] != _HELD:
                        timeout = max(0.0, self._queue[0][0] - time.monotonic())
                    self._cond.wait(timeout)
                _, _, job = heapq.heappop(self._queue)
                self._running += 1
            try:
                self._run(job)
            finally:
                with self._cond:
                    self._running -= 1
                    self._cond.notify_all()
