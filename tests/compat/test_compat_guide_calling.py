"""Celery's "Calling Tasks" user guide (docs/userguide/calling.rst), with the snippets' tasks in
projects/guide_calling/proj/calling.py; the worker consumes `-Q celery,priority.high` as the guide's
routing section starts it."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from .harness import Running, project, worker


@pytest.fixture(scope="module")
def guide(module_url: str) -> Iterator[Running]:
    where = project("guide_calling")
    args = ("-A", "proj", "worker", "-l", "INFO", "-c", "2", "-Q", "celery,priority.high")
    with worker(where, module_url, *args) as w:
        yield Running(where, module_url, w)


def test_delay_and_apply_async_with_args_and_kwargs(guide: Running) -> None:
    out = guide.lines(
        """
        from proj.tasks import add
        print(add.delay(2, y=3).get(timeout=10))
        print(add.apply_async(args=[2], kwargs={'y': 4}).get(timeout=10))
        print(add.s(2, y=5).apply_async().get(timeout=10))
        """
    )
    assert out == ["5", "6", "7"]


def test_link_calls_the_callback_with_the_result(guide: Running) -> None:
    out = guide.lines(
        """
        from proj.tasks import add
        res = add.apply_async((2, 2), link=add.s(16))
        print(res.get(timeout=10))
        print(res.children[0].get(timeout=10))
        """
    )
    assert out == ["4", "20"]


def test_link_error_calls_the_errback_with_request_exc_and_traceback(guide: Running) -> None:
    out = guide.lines(
        """
        from proj.calling import broken, error_handler
        res = broken.apply_async((2, 2), link_error=error_handler.s())
        try:
            res.get(timeout=10)
        except ValueError as exc:
            print(repr(exc))
        print(res.id)
        """
    )
    assert out[0] == "ValueError('cannot add 2 and 2')"
    guide.worker.wait_for_log(
        f"Task {out[1]} raised exception: ValueError('cannot add 2 and 2')", timeout=10
    )


def test_a_list_of_callbacks_are_all_called(guide: Running) -> None:
    out = guide.run(
        """
        from proj.calling import other_task
        from proj.tasks import add
        res = add.apply_async((2, 2), link=[add.s(16), other_task.s()])
        print(res.get(timeout=10))
        """
    )
    assert out.strip() == "4"
    guide.worker.wait_for_log("other_task got 4", timeout=10)


def test_get_on_message_sees_each_progress_update(guide: Running) -> None:
    out = guide.lines(
        """
        import json
        from proj.calling import hello
        bodies = []
        def on_raw_message(body):
            bodies.append(body)
        a, b = 1, 1
        r = hello.apply_async(args=(a, b))
        print(r.get(on_message=on_raw_message, propagate=False, timeout=20))
        print(json.dumps([[m['status'], m['result']] for m in bodies]))
        print(all(m['task_id'] == r.id for m in bodies))
        """
    )
    assert out[0] == "hello world: 2"
    seen = json.loads(out[1])
    assert ["PROGRESS", {"progress": 50}] in seen
    assert ["PROGRESS", {"progress": 90}] in seen
    assert seen[-1] == ["SUCCESS", "hello world: 2"]
    assert out[2] == "True"


def test_countdown_delays_the_run(guide: Running) -> None:
    out = guide.lines(
        """
        import time
        from proj.tasks import add
        start = time.monotonic()
        result = add.apply_async((2, 2), countdown=3)
        print(result.get(timeout=15))
        print(time.monotonic() - start >= 3)
        """
    )
    assert out == ["4", "True"]


def test_eta_and_expires(guide: Running) -> None:
    out = guide.lines(
        """
        from datetime import datetime, timedelta, timezone
        from proj.tasks import add
        tomorrow = datetime.now(timezone.utc) + timedelta(days=1)
        later = add.apply_async((2, 2), eta=tomorrow)
        print(add.apply_async((10, 10), expires=60).get(timeout=10))
        kwargs = {}
        res = add.apply_async((10, 10), kwargs,
                              expires=datetime.now(timezone.utc) + timedelta(days=1))
        print(res.get(timeout=10))
        print(later.state)
        """
    )
    assert out == ["20", "20", "PENDING"]


def test_retry_options_serializer_and_compression(guide: Running) -> None:
    out = guide.lines(
        """
        from proj.tasks import add
        print(add.apply_async((2, 2), retry=False).get(timeout=10))
        print(add.apply_async((2, 2), retry=True, retry_policy={
            'max_retries': 3,
            'interval_start': 0,
            'interval_step': 0.2,
            'interval_max': 0.2,
            'retry_errors': None,
        }).get(timeout=10))
        print(add.apply_async((10, 10), serializer='json').get(timeout=10))
        print(add.apply_async((2, 2), compression='zlib').get(timeout=10))
        """
    )
    assert out == ["4", "4", "20", "4"]


def test_a_group_sends_many_calls_at_once(guide: Running) -> None:
    out = guide.run(
        """
        from conveyor import group
        from proj.tasks import add
        numbers = [(2, 2), (4, 4), (8, 8), (16, 16)]
        res = group(add.s(i, j) for i, j in numbers).apply_async()
        print(res.get(timeout=10))
        """
    )
    assert out.strip() == "[4, 8, 16, 32]"


def test_the_queue_option_routes_to_a_queue_the_worker_consumes(guide: Running) -> None:
    out = guide.run(
        "from proj.tasks import add\n"
        "print(add.apply_async((1, 1), queue='priority.high').get(timeout=10))"
    )
    assert out.strip() == "2"


def test_difference_a_non_json_serializer_is_refused_at_the_call(guide: Running) -> None:
    """A deliberate difference (docs/migrating.md): Celery would send with pickle; conveyor
    refuses at the call, saying why, rather than sending something a worker cannot trust."""
    out = guide.run(
        """
        from proj.tasks import add
        try:
            add.apply_async((2, 2), serializer='pickle')
        except Exception as exc:
            print(type(exc).__name__, 'json' in str(exc).lower())
        """
    )
    assert out.strip().endswith("True"), out


def test_shadow_renames_the_call_in_the_worker_log(guide: Running) -> None:
    task_id = guide.run(
        """
        from proj.tasks import add
        r = add.apply_async((1, 1), shadow='add-shadowed')
        r.get(timeout=10)
        print(r.id)
        """
    ).strip()
    guide.worker.wait_for_log(f"add-shadowed[{task_id}]", timeout=10)
