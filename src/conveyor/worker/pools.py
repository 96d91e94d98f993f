"""Execution pools for one slot group: `solo` (inline, for debugging and step-by-step tests)
and `threads`. The process pool lives in `process_pool.py`; time limits in `limits.py`.

Contract of a pool: `submit` is called only while `free_slots() > 0`; every submitted job comes
back exactly once from `completions`, finished or lost — unless `submit` raises, which means the
job was not taken (the process pool cannot pickle it for a child) and its slot is still free;
the slot group then fails that one call (slots.py). The solo and thread pools take any job.
`terminate(key)` cuts a running job off; it then comes back lost. Pools never touch the broker.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ..errors import SoftTimeLimitExceeded, TaskRevokedError, TimeLimitExceeded
from ..task import Task
from .executor import RunKind, RunResult, error_info, execute
from .jobs import Completion, Job
from .limits import Deadlines, LimitSignal, raise_in_thread, time_limit_result

TaskLookup = Callable[[str], Task]
TERMINATED = "terminated by revoke"


class Pool(Protocol):
    size: int

    def start(self) -> None: ...
    def submit(self, job: Job) -> None: ...
    def free_slots(self) -> int: ...
    def completions(self, timeout: float) -> list[Completion]:
        """Finished jobs; blocks up to `timeout` seconds for the first one. Enforces time
        limits as it goes."""
        ...

    def terminate(self, key: int) -> bool:
        """Cut the running job `key` off; it comes back lost. False if it is not running."""
        ...

    def pid_of(self, key: int) -> int:
        """The process running job `key` (this one, but for the process pool's children)."""
        ...

    #: The signal `terminate` sends, when it sends one (None: no signal).
    terminate_signal: int | None

    def stop(self, timeout: float) -> list[int]:
        """Stop within `timeout` seconds; return keys of jobs that did not finish."""
        ...


def run_job(lookup: TaskLookup, job: Job) -> Completion:
    """Run one job; anything escaping the executor still yields exactly one completion."""
    started = time.time()
    try:
        return Completion(job.key, execute(lookup(job.message.task), job.message, job.request))
    except LimitSignal as exc:  # arrived after the task returned, while its result was built
        return Completion(
            job.key, RunResult(RunKind.FAILURE, started, time.time(), error=error_info(exc))
        )
    except BaseException as exc:
        return Completion(job.key, lost=f"{type(exc).__name__} escaped the task: {exc}")


class SoloPool:
    """Runs each job inline, in the worker's own thread, when it is submitted. Time limits and
    terminate arrive as asynchronous exceptions from a timer thread (see limits.py)."""

    size = 1

    def __init__(self, lookup: TaskLookup) -> None:
        self._lookup = lookup
        self._done: list[Completion] = []
        self._lock = threading.Lock()
        self._running: tuple[int, int] | None = None  # (job key, thread running it)

    def start(self) -> None:
        return None

    def submit(self, job: Job) -> None:
        timers = [
            threading.Timer(limit, self._interrupt, (job.key, exc))
            for limit, exc in (
                (job.soft_time_limit, SoftTimeLimitExceeded),
                (job.time_limit, TimeLimitExceeded),
            )
            if limit
        ]
        with self._lock:
            self._running = (job.key, threading.get_ident())
        for timer in timers:
            timer.daemon = True
            timer.start()
        try:
            done = run_job(self._lookup, job)
        finally:
            with self._lock:
                self._running = None
            for timer in timers:
                timer.cancel()
        self._done.append(done)

    def _interrupt(self, key: int, exc: type[BaseException]) -> None:
        with self._lock:
            if self._running is not None and self._running[0] == key:
                raise_in_thread(self._running[1], exc)

    def free_slots(self) -> int:
        return 0 if self._done else 1

    def completions(self, timeout: float) -> list[Completion]:
        done, self._done = self._done, []
        return done

    terminate_signal: int | None = None

    def pid_of(self, key: int) -> int:
        return os.getpid()

    def terminate(self, key: int) -> bool:
        return False  # a solo job runs inside submit(): nothing is running between calls

    def stop(self, timeout: float) -> list[int]:
        return []


@dataclass(eq=False)
class _Slot:
    """One thread of the pool and the job it runs. `abandoned`: the pool gave up on the thread
    (hard limit or terminate); it exits after its job and its result is discarded."""

    thread: threading.Thread | None = None
    job: Job | None = None
    limits: Deadlines | None = None
    started_wall: float = 0.0
    abandoned: bool = False
    ident: int = 0


class ThreadPool:
    """`size` threads sharing a job queue; see limits.py for what time limits mean here."""

    def __init__(self, lookup: TaskLookup, size: int) -> None:
        self.size = size
        self._lookup = lookup
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._done: queue.SimpleQueue[Completion] = queue.SimpleQueue()
        self._busy = 0
        self._lock = threading.Lock()
        self._slots: list[_Slot] = []

    def start(self) -> None:
        for _ in range(self.size):
            self._add_slot()

    def _add_slot(self) -> _Slot:
        slot = _Slot()
        slot.thread = threading.Thread(
            target=self._loop, args=(slot,), name=f"conveyor-thread-{len(self._slots)}", daemon=True
        )
        self._slots.append(slot)
        slot.thread.start()
        return slot

    def submit(self, job: Job) -> None:
        with self._lock:
            self._busy += 1
        self._jobs.put(job)

    def free_slots(self) -> int:
        with self._lock:
            return self.size - self._busy

    def _loop(self, slot: _Slot) -> None:
        slot.ident = threading.get_ident()
        while not slot.abandoned and (job := self._jobs.get()) is not None:
            with self._lock:
                slot.job, slot.limits, slot.started_wall = job, Deadlines.for_job(job), time.time()
            done = run_job(self._lookup, job)
            while True:
                try:
                    with self._lock:
                        keep = not slot.abandoned
                        slot.job = slot.limits = None
                    break
                except LimitSignal:
                    continue  # a late signal: the task has already returned
            if keep:
                self._done.put(done)

    def _enforce_limits(self) -> float | None:
        """Send due soft limits, abandon threads past hard limits; returns the next due time."""
        now = time.monotonic()
        soonest: float | None = None
        with self._lock:
            for slot in list(self._slots):
                job, limits = slot.job, slot.limits
                if job is None or limits is None or slot.abandoned:
                    continue
                if limits.hard_due(now):
                    self._abandon(slot, TimeLimitExceeded)
                    self._done.put(Completion(job.key, time_limit_result(job, slot.started_wall)))
                    continue
                if limits.soft_due(now):
                    limits.soft_sent = True
                    raise_in_thread(slot.ident, SoftTimeLimitExceeded)
                due = limits.next_due()
                if due is not None and (soonest is None or due < soonest):
                    soonest = due
        return soonest

    def _abandon(self, slot: _Slot, exc: type[BaseException]) -> None:
        """Give up on `slot`'s thread (called under the lock) and start a replacement."""
        slot.abandoned = True
        raise_in_thread(slot.ident, exc)
        self._slots.remove(slot)
        self._add_slot()

    def completions(self, timeout: float) -> list[Completion]:
        soonest = self._enforce_limits()
        if soonest is not None:
            timeout = min(timeout, max(0.0, soonest - time.monotonic()))
        out: list[Completion] = []
        try:
            out.append(self._done.get(timeout=timeout) if timeout > 0 else self._done.get_nowait())
            while True:
                out.append(self._done.get_nowait())
        except queue.Empty:
            pass
        with self._lock:
            self._busy -= len(out)
        return out

    terminate_signal: int | None = None

    def pid_of(self, key: int) -> int:
        return os.getpid()

    def terminate(self, key: int) -> bool:
        with self._lock:
            slot = next((s for s in self._slots if s.job is not None and s.job.key == key), None)
            if slot is None:
                return False
            self._abandon(slot, TaskRevokedError)
            self._done.put(Completion(key, lost=TERMINATED))
            return True

    def stop(self, timeout: float) -> list[int]:
        for _ in self._slots:
            self._jobs.put(None)
        deadline = time.monotonic() + timeout
        for slot in list(self._slots):
            if slot.thread is not None:
                slot.thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            return sorted(s.job.key for s in self._slots if s.job is not None)
