"""The app the integration tests run in real worker processes (imported as `sample_app`)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Sequence
from pathlib import Path

from conveyor import Conveyor, SoftTimeLimitExceeded, Task
from conveyor.results.base import Outcome

app = Conveyor("sample")
app.conf.update(
    visibility_timeout=float(os.environ.get("SAMPLE_VISIBILITY", "30")),
    worker_shutdown_timeout=float(os.environ.get("SAMPLE_GRACE", "30")),
    result_extended=os.environ.get("SAMPLE_EXTENDED") == "1",
    task_track_started=True,  # the tests watch for STARTED (Celery's default is off)
)


@app.task(name="sample.add")
def add(x: int, y: int) -> int:
    return x + y


@app.task(name="sample.mul")
def mul(x: int, y: int) -> int:
    return x * y


@app.task(name="sample.fail")
def fail(x: object) -> None:
    raise ValueError(f"cannot handle {x!r}")


@app.task(name="sample.total")
def total(values: list[int]) -> int:
    return sum(values)


@app.task(name="sample.pid")
def pid() -> int:
    return os.getpid()


@app.task(name="sample.sleep")
def sleep(seconds: float) -> str:
    time.sleep(seconds)  # the workload itself: a slow task
    return "slept"


@app.task(name="sample.die_on_first_attempt", bind=True)
def die_on_first_attempt(self: Task) -> int:
    """Kills its own process on the first delivery, as a segfault or OOM kill would."""
    if self.request.attempt == 1:
        os._exit(13)
    return self.request.attempt


@app.task(name="sample.slow_on_first_attempt", bind=True)
def slow_on_first_attempt(self: Task, seconds: float) -> int:
    if self.request.attempt == 1:
        time.sleep(seconds)
    return self.request.attempt


@app.task(name="sample.log_run", bind=True)
def log_run(self: Task, path: str, seconds: float) -> int:
    """Appends one line per execution, so a test can count how often a call ran."""
    with Path(path).open("a") as f:
        f.write(f"{self.request.id} {os.getpid()}\n")
    time.sleep(seconds)
    return self.request.attempt


# -- tasks for the guarantee tests: every run writes START and END lines to a ledger kept
# -- outside the broker (SAMPLE_LEDGER), so a checker can count lost and repeated runs.


@app.task(name="sample.progress", bind=True)
def progress(self: Task, steps: int, seconds: float) -> str:
    """Reports each step with update_state (results area), then returns its worker's name."""
    for i in range(steps):
        self.update_state(state="PROGRESS", meta={"step": i, "worker": self.request.hostname})
        time.sleep(seconds)
    return self.request.hostname or ""


def _ledger(kind: str, task: Task) -> None:
    path = os.environ.get("SAMPLE_LEDGER")
    if not path:
        return
    r = task.request
    line = f"{kind} {r.id} {r.attempt} {os.getpid()} {os.getppid()} {time.time():.6f}\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())  # one small O_APPEND write: lines never interleave
    finally:
        os.close(fd)


@app.task(name="sample.ledgered", bind=True)
def ledgered(self: Task, seconds: float) -> int:
    _ledger("START", self)
    time.sleep(seconds)  # the workload itself
    _ledger("END", self)
    return self.request.attempt


@app.task(name="sample.chord_body", bind=True)
def chord_body(self: Task, values: list[int]) -> int:
    """A chord body that writes a ledger line, so a test can count how often it ran."""
    _ledger("BODY", self)
    return len(values)


@app.task(name="sample.limited", bind=True, rate_limit="30/s")
def limited(self: Task) -> None:
    _ledger("START", self)


@app.task(name="sample.kill_self")
def kill_self() -> None:
    """A poison task: kills its own process on every delivery."""
    os.kill(os.getpid(), signal.SIGKILL)


@app.task(name="sample.soft_limited", soft_time_limit=0.5)
def soft_limited() -> str:
    try:
        time.sleep(5)  # the workload; the 0.5 s soft limit interrupts it
    except SoftTimeLimitExceeded:
        return "cleaned up"
    return "not interrupted"


@app.task(name="sample.hard_limited", time_limit=0.5)
def hard_limited() -> str:
    time.sleep(5)  # the workload; the 0.5 s hard limit kills it
    return "not killed"


@app.task(name="sample.hog")
def hog(mib: int) -> int:
    """Touches `mib` MiB, then returns its process id."""
    block = bytearray(mib * 1024 * 1024)
    for i in range(0, len(block), 4096):
        block[i] = 1
    return os.getpid()


@app.task(name="sample.die_at_most_once", bind=True, acks_late=False)
def die_at_most_once(self: Task) -> None:
    """At most once: its process dies mid-run, so it must end as WorkerLostError, run once."""
    _ledger("START", self)
    os._exit(9)


def _record_puts(path: str) -> None:
    """Append every outcome this process's result store accepts to `path` (task id, state,
    token; one O_APPEND write per batch), so a test sees each write, not only the last."""
    store = app.results
    put = store.put

    def recording(outcomes: Sequence[Outcome]) -> list[bool]:
        stored = put(outcomes)
        accepted = [o for o, ok in zip(outcomes, stored, strict=True) if ok]
        lines = [f"{o.task_id} {o.state.value} {o.token}\n" for o in accepted]
        if lines:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, "".join(lines).encode())
            finally:
                os.close(fd)
        return stored

    store.put = recording  # type: ignore[method-assign]


if os.environ.get("SAMPLE_PUTS"):
    _record_puts(os.environ["SAMPLE_PUTS"])


# -- the scheduler tests: a 1-second entry sending to a queue no worker consumes, so the test
# -- can read every fire from the broker.
if os.environ.get("SAMPLE_BEAT"):
    app.conf.update(
        beat_schedule={
            "tick": {
                "task": "sample.add",
                "schedule": float(os.environ["SAMPLE_BEAT"]),
                "args": [1, 1],
                "options": {"queue": "ticks"},
            }
        },
        beat_lease_seconds=float(os.environ.get("SAMPLE_LEASE", "10")),
    )
