"""Several scheduler processes at once — `conveyor beat` and `conveyor worker --beat` — with a
1-second entry, while the leader is killed with SIGKILL twice: every scheduled second is sent
exactly once or counted as skipped during a failover, nothing is sent twice, and no gap between
fires is longer than one lease plus one interval."""

from __future__ import annotations

import functools
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone

import pytest

from conveyor import Conveyor
from conveyor.scheduler.schedule import Interval, due_fires

from .helpers import HERE, Where, conveyor, dir_of, env_for, wait_until

pytestmark = pytest.mark.slow

LEASE = 2.0
INTERVAL = 1.0
RUN = 30.0
BEAT_ENV = {"SAMPLE_BEAT": str(INTERVAL), "SAMPLE_LEASE": str(LEASE)}


def start(db: Where, kind: str, n: int) -> subprocess.Popen[str]:
    args = ["beat"] if kind == "beat" else ["worker", "--beat", "-P", "threads", "-c", "1"]
    log = (dir_of(db) / f"scheduler-{kind}-{n}.log").open("w")
    return subprocess.Popen(
        [sys.executable, "-m", "conveyor", "-A", "sample_app", *args, "-l", "info"],
        cwd=HERE,
        env=env_for(db, **BEAT_ENV),
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )


def fire_times(app: Conveyor) -> list[float]:
    ids = [m.envelope.id for m in app.broker.list_messages("ticks", limit=100_000)]
    assert len(ids) == len(set(ids))
    stamps = [
        datetime.fromisoformat(i.split("@", 1)[1].replace("Z", "+00:00")).timestamp() for i in ids
    ]
    assert len(stamps) == len(set(stamps)), "two messages for one scheduled time"
    return sorted(stamps)


@pytest.mark.every_backend
def test_three_schedulers_one_leader_killed_twice(db: Where, reader: Conveyor) -> None:
    kinds = ["beat", "beat", "worker"]
    procs = {i: start(db, kind, i) for i, kind in enumerate(kinds)}
    store = reader.schedule_store
    failovers: list[float] = []
    begun = time.monotonic()

    def past(seconds: float) -> bool:
        return time.monotonic() - begun >= seconds

    def moved_from(holder: str) -> bool:
        return store.leadership().holder not in (None, holder)

    try:
        wait_until(lambda: store.leadership().holder is not None, 60, "a leader")
        begun = time.monotonic()
        for kill_at in (RUN / 3, 2 * RUN / 3):
            wait_until(functools.partial(past, kill_at), RUN, "the kill time")
            holder = store.leadership().holder
            assert holder is not None
            pid = int(holder.split(":")[1])
            (victim,) = [i for i, p in procs.items() if p.pid == pid]
            os.kill(pid, signal.SIGKILL)
            killed = time.monotonic()
            procs[victim].wait(10)
            wait_until(functools.partial(moved_from, holder), LEASE * 3, "another leader")
            failovers.append(time.monotonic() - killed)
            procs[victim] = start(db, kinds[victim], len(procs) + victim)  # as a supervisor would
        wait_until(lambda: time.monotonic() - begun >= RUN, RUN, "the end of the run")
    finally:
        for p in procs.values():
            p.send_signal(signal.SIGTERM)
        for p in procs.values():
            p.wait(30)
    assert store.leadership().holder is None  # the last leader resigned when it stopped
    fires = fire_times(reader)
    (entry,) = store.entries()
    gaps = [b - a for a, b in itertools.pairwise(fires)]
    scheduled = due_fires(Interval(INTERVAL), entry.anchor, fires[-1], timezone.utc).count
    figures = {
        "scheduled_seconds": scheduled,
        "sent": len(fires),
        "skipped_in_failovers": entry.skipped,
        "duplicates": 0,
        "longest_gap_s": round(max(gaps), 3),
        "failover_s": [round(f, 3) for f in failovers],
        "already_sent_by_another": sum(
            p.read_text().count("was already sent") for p in dir_of(db).glob("scheduler-*.log")
        ),
    }
    print("three-scheduler figures:", json.dumps(figures))
    assert len(fires) >= RUN - 2 * (LEASE + INTERVAL) - 2
    # every scheduled second up to the last fire was sent once or counted as skipped
    assert len(fires) + entry.skipped == scheduled == entry.fires + entry.skipped
    assert entry.anchor < fires[0] <= entry.anchor + INTERVAL
    assert max(gaps) <= LEASE + INTERVAL + 1e-6
    assert all(f <= LEASE + 0.5 for f in failovers)


def test_schedule_commands(db: Where) -> None:
    added = conveyor(
        db,
        "-A",
        "sample_app",
        "schedule",
        "add",
        "nightly",
        "sample.add",
        "--cron",
        "30 2 * * 1-5",
        "--args",
        "[1, 2]",
        "--queue",
        "ticks",
    )
    assert added.returncode == 0, added.stderr
    assert "nightly: sample.add at 02:30 on 1-5" in added.stdout
    listed = conveyor(db, "-A", "sample_app", "schedule", "list", **BEAT_ENV)
    assert listed.returncode == 0, listed.stderr
    assert "nightly" in listed.stdout and "no scheduler is leading" in listed.stdout
    assert "beat_schedule differs from the stored schedule for tick" in listed.stdout
    assert conveyor(db, "-A", "sample_app", "schedule", "pause", "nightly").returncode == 0
    as_json = json.loads(conveyor(db, "-A", "sample_app", "schedule", "list", "--json").stdout)
    assert as_json[0]["paused"] is True and as_json[0]["fires_per_day"] == pytest.approx(5 / 7)
    assert conveyor(db, "-A", "sample_app", "schedule", "resume", "nightly").returncode == 0
    wrong = conveyor(db, "-A", "sample_app", "schedule", "remove", "nighty")
    assert wrong.returncode == 2 and "did you mean 'nightly'" in wrong.stderr
    assert conveyor(db, "-A", "sample_app", "schedule", "remove", "nightly").returncode == 0
    unknown = conveyor(db, "-A", "sample_app", "schedule", "add", "x", "sample.ad", "--every", "5")
    assert unknown.returncode == 2 and "did you mean 'sample.add'" in unknown.stderr
