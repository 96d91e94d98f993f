"""Real processes: producers, workers and a reader on one SQLite file."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from conveyor import Conveyor
from conveyor.states import TaskState

from .helpers import dir_of, python, read_logs, wait_until, worker

pytestmark = pytest.mark.slow


def test_enqueue_in_one_process_run_in_another_read_in_a_third(db: Path, reader: Conveyor) -> None:
    produced = python(db, "from sample_app import add; print(add.delay(2, 3).id)")
    task_id = produced.stdout.strip()
    with worker(db, "-P", "process", "-c", "2"):
        assert reader.AsyncResult(task_id).get(timeout=60) == 5
    outcome = reader.results.get(task_id)
    assert outcome is not None and outcome.attempt == 1 and outcome.worker


def test_many_producers_and_two_workers_run_every_call_once(db: Path, reader: Conveyor) -> None:
    code = (
        "import sys\nfrom sample_app import add\n"
        "print('\\n'.join(add.delay(i, int(sys.argv[1])).id for i in range(200)))"
    )
    import subprocess
    import sys

    from .helpers import HERE, env_for

    with (
        worker(db, "-P", "threads", "-c", "4", "-n", "a@%h"),
        worker(db, "-P", "process", "-c", "2", "-n", "b@%h"),
    ):
        wait_until(lambda: len(reader.broker.workers()) == 2, 60, "both workers ready")
        producers = [
            subprocess.Popen(
                [sys.executable, "-c", code, str(n)],
                cwd=HERE,
                env=env_for(db),
                stdout=subprocess.PIPE,
                text=True,
            )
            for n in range(3)
        ]
        ids = []
        for p in producers:
            out, _ = p.communicate(timeout=120)
            assert p.returncode == 0
            ids += out.split()
        assert len(ids) == 600 == len(set(ids))
        wait_until(lambda: len(reader.results.wait(ids, timeout=1.0)) == 600, 120, "600 outcomes")
    outcomes = reader.results.get_many(ids)
    assert {o.state for o in outcomes.values()} == {TaskState.SUCCESS}
    assert {o.attempt for o in outcomes.values()} == {1}  # nobody ran anything twice
    assert {o.worker.split("@")[0] for o in outcomes.values() if o.worker} == {"a", "b"}
    assert reader.broker.queue_stats() == []


def test_max_tasks_per_child_recycles_without_losing_or_repeating(
    db: Path, reader: Conveyor
) -> None:
    ids = python(
        db, "from sample_app import pid\nfor _ in range(7): print(pid.delay().id)"
    ).stdout.split()
    with worker(db, "-P", "process", "-c", "1", "--max-tasks-per-child", "2"):
        found = reader.results.wait(ids, timeout=90)
    assert len(found) == 7
    assert all(o.state is TaskState.SUCCESS and o.attempt == 1 for o in found.values())
    pids = [reader.AsyncResult(i).get(timeout=1) for i in ids]
    assert len(set(pids)) == 4  # children served 2, 2, 2 and 1 calls


def test_a_child_that_dies_mid_task_is_replaced_and_its_call_redelivered(
    db: Path, reader: Conveyor
) -> None:
    task_id = python(
        db, "from sample_app import die_on_first_attempt as t; print(t.delay().id)"
    ).stdout.strip()
    with worker(db, "-P", "process", "-c", "1", SAMPLE_VISIBILITY="1.5"):
        assert reader.AsyncResult(task_id).get(timeout=60) == 2
    outcome = reader.results.get(task_id)
    assert outcome is not None and outcome.attempt == 2
    assert "exited with code 13" in read_logs(db)


def test_a_task_may_run_far_longer_than_its_lease(db: Path, reader: Conveyor) -> None:
    runs = dir_of(db) / "runs.txt"
    code = f"from sample_app import log_run; print(log_run.delay({str(runs)!r}, 4.0).id)"
    task_id = python(db, code).stdout.strip()
    # Lease of 1 s; the task runs 4 s. Two workers compete: the keeper must keep the lease.
    with (
        worker(db, "-P", "threads", "-c", "1", SAMPLE_VISIBILITY="1"),
        worker(db, "-P", "threads", "-c", "1", SAMPLE_VISIBILITY="1"),
    ):
        assert reader.AsyncResult(task_id).get(timeout=60) == 1
    assert len(runs.read_text().splitlines()) == 1


def test_warm_shutdown_lets_the_running_task_finish(db: Path, reader: Conveyor) -> None:
    task_id = python(db, "from sample_app import sleep; print(sleep.delay(1.5).id)").stdout.strip()
    with worker(db, "-P", "process", "-c", "1") as proc:
        wait_until(
            lambda: reader.AsyncResult(task_id).state is TaskState.STARTED, 60, "the task to start"
        )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    assert reader.AsyncResult(task_id).get(timeout=1) == "slept"
    assert reader.broker.queue_stats() == []


def test_cold_shutdown_leaves_the_call_to_be_redelivered(db: Path, reader: Conveyor) -> None:
    code = "from sample_app import slow_on_first_attempt as t; print(t.delay(60).id)"
    task_id = python(db, code).stdout.strip()
    with worker(db, "-P", "process", "-c", "1", SAMPLE_VISIBILITY="2") as proc:
        wait_until(
            lambda: reader.AsyncResult(task_id).state is TaskState.STARTED, 60, "the task to start"
        )
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)  # two distinct signals, not one coalesced delivery
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) != 0
    # Not settled: the message stays, leased until its 2 s lease runs out (which a
    # loaded machine may already have seen by now), and nothing was recorded.
    (stats,) = reader.broker.queue_stats()
    assert (stats.ready + stats.leased, stats.dead) == (1, 0), stats
    assert reader.AsyncResult(task_id).state is TaskState.STARTED
    with worker(db, "-P", "threads", "-c", "1", SAMPLE_VISIBILITY="2"):
        assert reader.AsyncResult(task_id).get(timeout=60) == 2


def _open_fresh(path: str) -> str:
    from conveyor.brokers.sqlite import SqliteBroker
    from conveyor.results.sqlite import SqliteResultStore

    try:
        SqliteBroker(Path(path)).close()
        SqliteResultStore(Path(path)).close()
    except Exception as exc:
        return repr(exc)
    return "ok"


def test_many_processes_opening_a_fresh_database_at_once(tmp_path: Path) -> None:
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    paths = [str(tmp_path / f"fresh-{i}.db") for i in range(5) for _ in range(6)]
    with ctx.Pool(6) as pool:
        outcomes = pool.map(_open_fresh, paths, chunksize=1)
    assert outcomes == ["ok"] * len(paths)
