"""Execution pools for one slot group: `solo` (inline, for debugging and step-by-step tests)
and `threads`. The process pool lives in `process_pool.py`.

Contract of a pool: `submit` is called only while `free_slots() > 0`; every submitted job comes
back exactly once from `completions`, finished or lost. Pools never touch the broker.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Protocol

from ..task import Task
from .executor import execute
from .jobs import Completion, Job

TaskLookup = Callable[[str], Task]


class Pool(Protocol):
    size: int

    def start(self) -> None: ...
    def submit(self, job: Job) -> None: ...
    def free_slots(self) -> int: ...
    def completions(self, timeout: float) -> list[Completion]:
        """Finished jobs; blocks up to `timeout` seconds for the first one."""
        ...

    def stop(self, timeout: float) -> list[int]:
        """Stop within `timeout` seconds; return keys of jobs that did not finish."""
        ...


def run_job(lookup: TaskLookup, job: Job) -> Completion:
    return Completion(job.key, execute(lookup(job.message.task), job.message, job.request))


class SoloPool:
    """Runs each job inline, in the worker's own thread, when it is submitted."""

    size = 1

    def __init__(self, lookup: TaskLookup) -> None:
        self._lookup = lookup
        self._done: list[Completion] = []

    def start(self) -> None:
        return None

    def submit(self, job: Job) -> None:
        self._done.append(run_job(self._lookup, job))

    def free_slots(self) -> int:
        return 0 if self._done else 1

    def completions(self, timeout: float) -> list[Completion]:
        done, self._done = self._done, []
        return done

    def stop(self, timeout: float) -> list[int]:
        return []


class ThreadPool:
    """`size` threads sharing a job queue. A task's soft limits are cooperative here: Python
    cannot kill a thread, so a thread pool relies on tasks returning."""

    def __init__(self, lookup: TaskLookup, size: int) -> None:
        self.size = size
        self._lookup = lookup
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._done: queue.SimpleQueue[Completion] = queue.SimpleQueue()
        self._busy = 0
        self._lock = threading.Lock()
        self._running: set[int] = set()
        self._threads = [
            threading.Thread(target=self._loop, name=f"conveyor-thread-{i}", daemon=True)
            for i in range(size)
        ]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def submit(self, job: Job) -> None:
        with self._lock:
            self._busy += 1
            self._running.add(job.key)
        self._jobs.put(job)

    def free_slots(self) -> int:
        with self._lock:
            return self.size - self._busy

    def _loop(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                done = run_job(self._lookup, job)
            except BaseException as exc:
                # execute() settles task errors itself; anything escaping it must still come
                # back exactly once, or this slot would stay busy forever.
                done = Completion(job.key, lost=f"{type(exc).__name__} escaped the task: {exc}")
            with self._lock:
                self._running.discard(job.key)
            self._done.put(done)

    def completions(self, timeout: float) -> list[Completion]:
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

    def stop(self, timeout: float) -> list[int]:
        for _ in self._threads:
            self._jobs.put(None)
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            return sorted(self._running)
