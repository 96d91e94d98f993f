"""The process pool (Celery's `prefork`): one child per slot, forked from a fork server, each
running one job at a time over a pipe.

* A child that dies while running a job yields a `lost` completion and is replaced; the job is
  not settled, so its lease runs out and the broker redelivers it (counting toward
  `max_deliveries`, which stops a task that kills its process every time).
* With `max_tasks_per_child`, a child is retired after that many jobs — only between jobs, so
  recycling never loses or repeats a task — and a fresh one is started in its place.
* With `max_memory_per_child` (KiB), a child whose peak resident memory passed it after a job
  is retired the same way, between jobs.
* Time limits (see limits.py): the soft one is a SIGUSR1 that raises SoftTimeLimitExceeded in
  the child; at the hard one the child is killed, the job fails with TimeLimitExceeded, and a
  new child takes the slot. `terminate` kills the child the same way; the job comes back lost.
* Children start asynchronously: a replacement reports `ready` through its pipe, and its slot
  is free from then on, so the worker keeps serving the other slots meanwhile.

All methods are called from the worker's loop thread.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import time
from dataclasses import dataclass, field
from enum import Enum
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from multiprocessing.reduction import ForkingPickler
from typing import Any

from ..errors import ConfigurationError
from .child import child_main
from .jobs import Completion, Job
from .limits import Deadlines, time_limit_result
from .pools import TERMINATED

# Children come from a fork server that has already imported conveyor and the app: starting
# one costs a fork, not an interpreter start and an import (recycling with
# --max-tasks-per-child=1 stays cheap). The server is forked from nothing but a fresh
# interpreter, so children never inherit the worker's threads or open database connections.
_CTX = multiprocessing.get_context("forkserver")
_START_TIMEOUT = 120.0


class _ChildState(Enum):
    STARTING = "starting"
    IDLE = "idle"
    BUSY = "busy"


@dataclass(eq=False)
class _Child:
    process: BaseProcess
    conn: Connection
    state: _ChildState = _ChildState.STARTING
    job: int | None = None
    running: Job | None = None
    limits: Deadlines | None = None
    started_wall: float = 0.0
    done: int = 0
    started: float = field(default_factory=time.monotonic)


class ProcessPool:
    """`size` children running the app imported from `app_path`."""

    def __init__(
        self,
        app_path: str,
        size: int,
        max_tasks_per_child: int | None = None,
        max_memory_per_child: int | None = None,
    ) -> None:
        self.size = size
        self._app_path = app_path
        self._max_tasks = max_tasks_per_child
        self._max_memory = max_memory_per_child
        _CTX.set_forkserver_preload(["conveyor.worker.child", app_path.split(":", maxsplit=1)[0]])
        self._children: list[_Child] = []
        self._pending: list[Completion] = []

    def _spawn(self) -> _Child:
        parent_conn, child_conn = _CTX.Pipe()
        process = _CTX.Process(
            target=child_main,
            args=(self._app_path, child_conn),
            name="conveyor-child",
            daemon=True,
        )
        process.start()
        child_conn.close()
        return _Child(process, parent_conn)

    def start(self) -> None:
        """Start every child and wait until all have imported the app. A child that cannot
        import it fails the start with the child's traceback."""
        self._children = [self._spawn() for _ in range(self.size)]
        deadline = time.monotonic() + _START_TIMEOUT
        while any(c.state is _ChildState.STARTING for c in self._children):
            if time.monotonic() > deadline:
                raise ConfigurationError("process-pool children did not start within 120 s")
            self._poll(0.1)
            self._pending.clear()  # nothing can complete before the first submit

    def free_slots(self) -> int:
        return sum(c.state is _ChildState.IDLE for c in self._children)

    def submit(self, job: Job) -> None:
        """Send `job` to an idle child. A job that cannot be pickled (RecursionError, an
        unpicklable value: anything) raises here before a byte is written, so the child stays
        idle and usable and the job was never taken."""
        data = ForkingPickler.dumps(job)  # what Connection.send(job) would write
        child = next(c for c in self._children if c.state is _ChildState.IDLE)
        child.state, child.job, child.running = _ChildState.BUSY, job.key, job
        child.limits, child.started_wall = Deadlines.for_job(job), time.time()
        try:
            child.conn.send_bytes(data)
        except OSError:  # it died while idle, before its exit was noticed
            self._replace(child)

    def completions(self, timeout: float) -> list[Completion]:
        if not self._pending:
            self._poll(timeout)
        done, self._pending = self._pending, []
        return done

    def _poll(self, timeout: float) -> None:
        soonest = self._enforce_limits()
        if soonest is not None:
            timeout = min(timeout, max(0.0, soonest - time.monotonic()))
        waitables: dict[Any, _Child] = {}
        for child in self._children:
            waitables[child.conn] = child
            waitables[child.process.sentinel] = child
        for ready in wait(list(waitables), timeout):
            child = waitables[ready]
            if child in self._children:  # may have been replaced earlier in this loop
                self._service(child, is_sentinel=ready is child.process.sentinel)
        self._enforce_limits()

    def _enforce_limits(self) -> float | None:
        """Signal children past a soft limit, kill those past a hard one; returns the next
        due time."""
        now = time.monotonic()
        soonest: float | None = None
        for child in list(self._children):
            limits, job = child.limits, child.running
            if limits is None or job is None:
                continue
            if limits.hard_due(now):
                result = time_limit_result(job, child.started_wall, killed=True)
                self._kill(child, Completion(job.key, result))
                continue
            if limits.soft_due(now):
                limits.soft_sent = True
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.process.pid or 0, signal.SIGUSR1)
            due = limits.next_due()
            if due is not None and (soonest is None or due < soonest):
                soonest = due
        return soonest

    def _kill(self, child: _Child, completion: Completion) -> None:
        """Kill a busy child, report `completion` for its job, and start a replacement."""
        child.process.kill()
        child.process.join(5.0)
        self._pending.append(completion)
        self._swap(child)

    terminate_signal: int | None = signal.SIGKILL

    def pid_of(self, key: int) -> int:
        child = next((c for c in self._children if c.job == key), None)
        return child.process.pid or os.getpid() if child is not None else os.getpid()

    def terminate(self, key: int) -> bool:
        child = next((c for c in self._children if c.job == key), None)
        if child is None:
            return False
        self._kill(child, Completion(key, lost=TERMINATED))
        return True

    def _service(self, child: _Child, is_sentinel: bool) -> None:
        if not is_sentinel or child.conn.poll():
            try:
                self._receive(child, child.conn.recv())
                return
            except (EOFError, OSError):
                pass
        self._replace(child)

    def _receive(self, child: _Child, msg: tuple[Any, ...]) -> None:
        kind = msg[0]
        if kind == "ready":
            child.state = _ChildState.IDLE
        elif kind == "error":
            raise ConfigurationError(f"a pool child could not load the app:\n{msg[1]}")
        else:  # "done" or "lost"; a lost job without a key is one the child could not unpickle
            key: int | None = msg[1] if msg[1] is not None else child.job
            if key is not None:
                done = kind == "done"
                self._pending.append(
                    Completion(key, msg[2] if done else None, None if done else msg[2])
                )
            child.state, child.job, child.running, child.limits = _ChildState.IDLE, None, None, None
            child.done += 1
            too_many = self._max_tasks is not None and child.done >= self._max_tasks
            too_big = self._max_memory is not None and msg[3] > self._max_memory
            if too_many or too_big:
                self._retire(child)

    def _retire(self, child: _Child) -> None:
        """Stop an idle child between jobs and start its replacement."""
        with contextlib.suppress(OSError):
            child.conn.send(None)
        child.process.join(5.0)
        if child.process.is_alive():
            child.process.kill()
        self._swap(child)

    def _replace(self, child: _Child) -> None:
        """A child died: report its job lost and start a replacement."""
        child.process.join(5.0)  # reap it first, so the exit code is known
        if child.job is not None:
            reason = f"pool child pid {child.process.pid} exited with code {child.process.exitcode}"
            self._pending.append(Completion(child.job, lost=reason))
        self._swap(child)

    def _swap(self, child: _Child) -> None:
        child.conn.close()
        index = self._children.index(child)
        self._children[index] = self._spawn()

    def busy_keys(self) -> list[int]:
        return [c.job for c in self._children if c.job is not None]

    def stop(self, timeout: float) -> list[int]:
        """Let busy children finish within `timeout`, then kill what is still running."""
        deadline = time.monotonic() + timeout
        while self.busy_keys() and time.monotonic() < deadline:
            self._poll(min(0.1, max(0.0, deadline - time.monotonic())))
        unfinished = self.busy_keys()
        for child in self._children:
            if child.job is None and child.state is _ChildState.IDLE:
                with contextlib.suppress(OSError):
                    child.conn.send(None)
        for child in self._children:
            child.process.join(0.5 if child.job is None else 0)
            if child.process.is_alive():
                child.process.kill()
                child.process.join(1.0)
            child.conn.close()
        self._children = []
        return unfinished
