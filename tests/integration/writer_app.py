"""The app of the batch-poisoning tests (`-A writer_app`): a call that fails naming a file with
an undecodable byte in its name, and a plain call, each writing a START line to the ledger
(SAMPLE_LEDGER, as in sample_app) so the test counts how often each ran."""

from __future__ import annotations

import os

from conveyor import Conveyor, Task

app = Conveyor("writer")


def _start(task: Task) -> None:
    line = f"START {task.request.id} {task.request.attempt} {os.getpid()} {os.getppid()} 0.0\n"
    fd = os.open(os.environ["SAMPLE_LEDGER"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())  # one small O_APPEND write: lines never interleave
    finally:
        os.close(fd)


@app.task(name="writer.parse", bind=True)
def parse(self: Task, folder: str) -> None:
    """Fails naming a file whose name holds byte 0xff (os.listdir gives it as "\\udcff")."""
    _start(self)
    for name in os.listdir(folder):
        raise ValueError(f"cannot parse {name}")


@app.task(name="writer.ok", bind=True)
def ok(self: Task) -> int:
    _start(self)
    return self.request.attempt
