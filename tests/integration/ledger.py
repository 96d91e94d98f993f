"""The execution ledger and its checker, for the guarantee tests.

Tasks append `START`/`END` lines (task id, attempt, pid, parent pid, time) to a file outside
the broker, so what really ran can be compared with what the queue claims. The checker counts
calls that never finished (lost) and calls that ran more than once (duplicates), and attributes
each extra run to a kill: the run that was repeated must have been in a process the test
killed, or in a pool child of a worker main it killed, and the next run must carry a higher
attempt number (recorded as a redelivery). Backend-neutral: it only reads the file.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Run:
    kind: str
    task_id: str
    attempt: int
    pid: int
    ppid: int
    at: float


def read_ledger(path: Path) -> list[Run]:
    if not path.exists():
        return []
    runs = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 6:  # a line cut short by a kill mid-write would be shorter
            kind, tid, attempt, pid, ppid, at = parts
            runs.append(Run(kind, tid, int(attempt), int(pid), int(ppid), float(at)))
    return runs


def count(path: Path, kind: str) -> int:
    return sum(1 for r in read_ledger(path) if r.kind == kind)


@dataclass
class Report:
    tasks: int
    kills: int
    lost: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    unexplained: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"tasks={self.tasks} kills={self.kills} lost={len(self.lost)} "
            f"duplicates={len(self.duplicates)} unexplained={len(self.unexplained)}"
        )


def check(
    runs: Iterable[Run], expected: Iterable[str], killed: set[int], killed_mains: set[int]
) -> Report:
    """`killed`: every pid the test killed; `killed_mains`: those that were worker mains."""
    starts: dict[str, list[Run]] = defaultdict(list)
    ended: set[str] = set()
    for run in runs:
        if run.kind == "START":
            starts[run.task_id].append(run)
        elif run.kind == "END":
            ended.add(run.task_id)
    ids = list(expected)
    report = Report(tasks=len(ids), kills=len(killed))
    report.lost = [t for t in ids if t not in ended]
    for tid in ids:
        runs_of = sorted(starts.get(tid, []), key=lambda r: r.at)
        if len(runs_of) < 2:
            continue
        report.duplicates.append(tid)
        for earlier, later in itertools.pairwise(runs_of):
            cut = earlier.pid in killed or earlier.ppid in killed_mains
            if not cut or later.attempt <= earlier.attempt:
                report.unexplained.append(tid)
                break
    return report
