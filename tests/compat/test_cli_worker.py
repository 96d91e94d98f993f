"""Celery's worker command line, as its docs write it (`celery` → `conveyor`), run for real on
the "Next steps" project layout: logging at -l INFO, node names, -O fair and the --without-*
flags, worker time limits, -B -s, and `result ID` printing the value."""

from __future__ import annotations

import re
import socket

from .harness import command, produce, project, wait_until, worker

PROJ = "cli_next_steps"
STAMP = r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}: INFO/[\w-]+\]"


def test_logging_at_info_shows_task_and_module_loggers_in_celerys_format(compat_url: str) -> None:
    where = project(PROJ)
    with worker(where, compat_url, "-A", "proj", "worker", "-l", "INFO") as proc:
        out = produce(
            where,
            compat_url,
            "from proj.tasks import add\nfrom proj.reports import mul\n"
            "r = add.delay(2, 3)\nprint(r.id, r.get(timeout=30), mul.delay(6, 7).get(timeout=30))",
        )
        task_id, added, product = out.split()
        assert (added, product) == ("5", "42")
        wait_until(lambda: "Multiplying" in proc.log(), 10, "the module logger's line", proc)
        log = proc.log()
    # get_task_logger: Celery's task format; logging.getLogger(__name__): the worker format.
    assert re.search(rf"{STAMP} proj\.tasks\.add\[{task_id}\]: Adding 2 \+ 3$", log, re.M), log
    assert re.search(rf"{STAMP} Multiplying 6 by 7$", log, re.M), log
    assert f"celery@{socket.gethostname()}" in log  # Celery's default node name


def test_result_prints_the_return_value(compat_url: str) -> None:
    where = project(PROJ)
    with worker(where, compat_url, "-A", "proj", "worker", "-l", "INFO"):
        task_id = produce(
            where,
            compat_url,
            "from proj.tasks import add\nr = add.delay(4, 4)\nr.get(timeout=30)\nprint(r.id)",
        ).strip()
    shown = command(where, compat_url, "-A", "proj", "result", task_id)
    assert (shown.returncode, shown.stdout) == (0, "8\n"), shown.stderr


def test_workers_guide_options_start_a_named_worker(compat_url: str) -> None:
    where = project(PROJ)
    args = ("-A", "proj", "worker", "--loglevel=INFO", "--concurrency=2", "-n", "worker1@%h")
    flags = ("-O", "fair", "--without-gossip", "--without-mingle", "--without-heartbeat")
    with worker(where, compat_url, *args, *flags) as proc:
        out = produce(
            where, compat_url, "from proj.tasks import add; print(add.delay(1, 2).get(30))"
        )
        assert out.strip() == "3", proc.log()
        assert f"worker1@{socket.gethostname()}" in proc.log()


def test_worker_soft_time_limit_interrupts_a_task(compat_url: str) -> None:
    where = project(PROJ)
    limits = ("--soft-time-limit=1", "--time-limit=30")
    with worker(where, compat_url, "-A", "proj", "worker", "-l", "INFO", *limits) as proc:
        out = produce(
            where, compat_url, "from proj.tasks import mytask; print(mytask.delay().get(30))"
        )
        assert out.strip() == "cleaned up in a hurry", proc.log()


def test_worker_with_embedded_beat_and_a_schedule_file(compat_url: str, tmp_path: object) -> None:
    where = project(PROJ)
    schedule = f"{tmp_path}/celerybeat-schedule"
    with worker(where, compat_url, "-A", "proj", "worker", "-B", "-s", schedule, "-l", "INFO") as p:
        wait_until(lambda: "Adding 16 + 16" in p.log(), 30, "the periodic add to run", p)
