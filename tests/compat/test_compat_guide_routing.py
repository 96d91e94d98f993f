"""Celery's "Routing Tasks" user guide (docs/userguide/routing.rst) renamed: task_routes as a
list of (pattern, destination) pairs, globs and a compiled regular expression, and a worker
started as the guide starts one, on the routed queues only (`-Q feeds,web,media`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .harness import Running, project, worker


@pytest.fixture(scope="module")
def guide(module_url: str) -> Iterator[Running]:
    where = project("guide_routing")
    args = ("-A", "proj", "worker", "-Q", "feeds,web,media", "-l", "INFO")
    with worker(where, module_url, *args) as w:
        yield Running(where, module_url, w)


def test_glob_and_regex_routes_send_each_task_to_its_queue(guide: Running) -> None:
    out = guide.lines(
        """
        from feed.tasks import import_feed
        from image.tasks import compress
        from video.tasks import transcode
        from web.tasks import render_page
        for task in (import_feed, render_page, transcode, compress):
            print(task.delay('x').get(timeout=10))
        """
    )
    assert out == ["import_feed x", "render_page x", "transcode x", "compress x"]


def test_an_unrouted_task_waits_in_the_default_queue_celery(guide: Running) -> None:
    """No worker consumes `celery` here: the unrouted call waits (PENDING) while a call of the
    same task sent to a consumed queue runs."""
    out = guide.lines(
        """
        import time
        from proj.tasks import add
        waiting = add.delay(1, 1)
        print(add.apply_async((2, 2), queue='feeds').get(timeout=10))
        time.sleep(1)
        print(waiting.state)
        waiting.revoke()
        """
    )
    assert out == ["4", "PENDING"]


def test_priorities_under_task_queue_max_priority(guide: Running) -> None:
    out = guide.lines(
        """
        from proj.celery import app
        from web.tasks import render_page
        print(app.conf.task_queue_max_priority, app.conf.task_default_priority)
        print(render_page.apply_async(('hi',), priority=9).get(timeout=10))
        print(render_page.apply_async(('lo',), priority=0).get(timeout=10))
        """
    )
    assert out == ["10 5", "render_page hi", "render_page lo"]
