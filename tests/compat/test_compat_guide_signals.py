"""Celery's "Signals" user guide (docs/userguide/signals.rst): handlers connected in
projects/guide_signals/proj/signals.py, run in the producer (publish) and in the worker (task)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .harness import Running, project, worker


@pytest.fixture(scope="module")
def guide(module_url: str) -> Iterator[Running]:
    where = project("guide_signals")
    with worker(where, module_url, "-A", "proj", "worker", "-l", "INFO", "-c", "2") as w:
        yield Running(where, module_url, w)


def test_after_task_publish_for_one_sender_runs_in_the_producer(guide: Running) -> None:
    out = guide.lines(
        """
        import proj.signals
        from proj.tasks import add, mul
        r = add.delay(2, 2)
        mul.delay(2, 2)
        print(r.id)
        """
    )
    assert out == [f"after_task_publish for task id {out[-1]}", out[-1]]


def test_task_prerun_and_postrun_run_around_each_task_in_the_worker(guide: Running) -> None:
    task_id = guide.run(
        "from proj.tasks import add\nr = add.delay(3, 4)\nr.get(timeout=10)\nprint(r.id)"
    ).strip()
    guide.worker.wait_for_log(f"task_postrun proj.tasks.add[{task_id}] retval=7 state=SUCCESS")
    log = guide.worker.log()
    assert log.find(f"task_prerun proj.tasks.add[{task_id}] args=") < log.find(
        f"task_postrun proj.tasks.add[{task_id}]"
    )


def test_task_failure_is_sent_with_the_exception(guide: Running) -> None:
    task_id = guide.run(
        "from proj.tasks import fail\nr = fail.delay()\nr.get(timeout=10, propagate=False)\n"
        "print(r.id)"
    ).strip()
    guide.worker.wait_for_log(f"task_failure proj.tasks.fail[{task_id}]: ValueError('fail fails')")
