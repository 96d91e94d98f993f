"""Celery's periodic-tasks example (examples/periodic-tasks/myapp.py and the user guide's
"Entries"): `add_periodic_task` from an `on_after_configure` handler and `beat_schedule`, run by
`worker -B -s FILE` and by a separate `beat`."""

from __future__ import annotations

from pathlib import Path

from .harness import project, worker


def _fires(log: str, line: str) -> int:
    return sum(1 for text in log.splitlines() if text.rstrip().endswith(line))


def test_worker_with_embedded_beat_runs_both_kinds_of_entries(
    compat_url: str, tmp_path: Path
) -> None:
    where = project("periodic")
    schedule = tmp_path / "celerybeat-schedule"
    with worker(
        where, compat_url, "-A", "myapp", "worker", "-B", "-s", str(schedule), "-l", "INFO"
    ) as proc:
        proc.wait_for_log("hello", timeout=30)
        proc.wait_for_log("32", timeout=30)
        # "add every 1" fires each second: several prints of hello within a few seconds.
        from .harness import wait_until

        wait_until(
            lambda: _fires(proc.log(), "hello") >= 3, 20, "three fires of say('hello')", proc
        )


def test_a_separate_beat_sends_and_a_worker_runs(compat_url: str, tmp_path: Path) -> None:
    where = project("periodic")
    schedule = tmp_path / "celerybeat-schedule"
    with (
        worker(where, compat_url, "-A", "myapp", "worker", "-l", "INFO") as proc,
        worker(where, compat_url, "-A", "myapp", "beat", "-s", str(schedule), "-l", "INFO") as beat,
    ):
        proc.wait_for_log("hello", timeout=30)
        proc.wait_for_log("32", timeout=30)
        assert beat.proc.poll() is None, beat.log()
