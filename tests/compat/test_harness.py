"""The harness itself: a worker started in a project directory runs what a producer sends."""

from __future__ import annotations

from .harness import produce, project, worker


def test_a_worker_in_the_project_runs_what_a_producer_sends(compat_url: str) -> None:
    where = project("hello")
    with worker(
        where, compat_url, "-A", "tasks", "worker", "-Q", "celery,default", "-l", "INFO"
    ) as proc:
        out = produce(
            where, compat_url, "from tasks import add; print(add.delay(2, 3).get(timeout=30))"
        )
        assert out.strip() == "5", proc.log()
