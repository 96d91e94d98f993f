"""Time limits shared by every pool: when each limit of a running job falls due, and the
outcomes a pool reports when it enforces one.

* **Soft limit** — `SoftTimeLimitExceeded` is raised inside the task, which may catch it to
  clean up. Process pool: a SIGUSR1 in the child (it interrupts blocking calls such as sleep).
  Thread and solo pools: an asynchronous exception in the task's thread, which Python delivers
  between bytecodes — a thread blocked inside one C call (a long `sleep`, a socket read)
  receives it when that call returns.
* **Hard limit** — the call ends as FAILURE with `TimeLimitExceeded`. Process pool: the child
  is killed and replaced. Thread pool: Python cannot kill a thread, so the thread is abandoned
  (it gets `TimeLimitExceeded` asynchronously and its eventual result is discarded), the call
  fails at once, and a new thread takes the slot. Solo pool: the asynchronous exception only.
"""

from __future__ import annotations

import ctypes
import time
from dataclasses import dataclass

from ..errors import SoftTimeLimitExceeded, TimeLimitExceeded
from .executor import RunKind, RunResult, error_info
from .jobs import Job

LimitSignal = (SoftTimeLimitExceeded, TimeLimitExceeded)


@dataclass(slots=True)
class Deadlines:
    """Monotonic due times of one running job's limits."""

    soft: float | None
    hard: float | None
    started: float
    soft_sent: bool = False

    @classmethod
    def for_job(cls, job: Job) -> Deadlines:
        now = time.monotonic()
        return cls(
            now + job.soft_time_limit if job.soft_time_limit else None,
            now + job.time_limit if job.time_limit else None,
            now,
        )

    def soft_due(self, now: float) -> bool:
        return self.soft is not None and not self.soft_sent and now >= self.soft

    def hard_due(self, now: float) -> bool:
        return self.hard is not None and now >= self.hard

    def next_due(self) -> float | None:
        times = [t for t in (None if self.soft_sent else self.soft, self.hard) if t is not None]
        return min(times) if times else None


def time_limit_result(job: Job, started_wall: float, killed: bool = False) -> RunResult:
    """The FAILURE a pool reports for a job it stopped at its hard limit; `killed` when the
    process running it was killed (its hooks are then run by the worker, see hooks.py)."""
    exc = TimeLimitExceeded(f"task {job.message.task} exceeded its time limit of {job.time_limit}s")
    return RunResult(
        RunKind.FAILURE, started_wall, time.time(), error=error_info(exc), killed=killed
    )


def raise_in_thread(thread_id: int, exc_type: type[BaseException]) -> None:
    """Ask Python to raise `exc_type` in the thread `thread_id` at its next bytecode."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc_type)
    )
