"""Celery's solar schedule snippet ("Periodic Tasks", "Solar schedules"; renames only) in a real
scheduler process: `conveyor beat` stores the entry and `conveyor schedule list` shows its next
fire, Melbourne's next sunset."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from .harness import command, project, worker

pytest.importorskip("astral")

WHERE = project("solar")


def test_beat_stores_a_solar_entry_and_lists_its_next_sunset(compat_url: str) -> None:
    from conveyor.schedules import solar

    with worker(WHERE, compat_url, "-A", "tasks", "beat", "-l", "INFO") as proc:
        proc.wait_for_log("is now the leader")
        listed = command(WHERE, compat_url, "-A", "tasks", "schedule", "list", COLUMNS="200")
    assert listed.returncode == 0, listed.stderr
    sunset = solar("sunset", -37.81753, 144.96715).next_after(
        datetime.now(timezone.utc), timezone.utc
    )
    (row,) = [line for line in listed.stdout.splitlines() if "add-at-melbourne-sunset" in line]
    assert "at sunset (latitude -37.81753, longitude 144.96715)" in row
    assert f"{sunset:%Y-%m-%d %H:%M:%S}" in row
