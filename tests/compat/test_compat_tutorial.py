"""Celery's "First steps with Celery" tutorial (projects/tutorial, projects/tutorial_config),
run as the tutorial runs it: `conveyor -A tasks worker --loglevel=INFO` and calls from Python."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .harness import Running, program, project, worker


@pytest.fixture(scope="module")
def tutorial(module_url: str) -> Iterator[Running]:
    where = project("tutorial")
    with worker(where, module_url, "-A", "tasks", "worker", "--loglevel=INFO") as proc:
        yield Running(where, module_url, proc)


def test_calling_the_task_returns_a_result_that_gets_the_value(tutorial: Running) -> None:
    out = tutorial.lines(
        """
        from tasks import add
        result = add.delay(4, 4)
        print(type(result).__name__)
        print(result.get(timeout=10))
        print(result.ready())
        """
    )
    assert out == ["AsyncResult", "8", "True"], tutorial.worker.log()


def test_a_failed_call_reraises_and_propagate_false_returns_the_exception(
    tutorial: Running,
) -> None:
    out = tutorial.lines(
        """
        from tasks import add
        result = add.delay(4, "4")
        try:
            result.get(timeout=10)
        except TypeError as exc:
            print("raised", type(exc).__name__)
        value = result.get(propagate=False)
        print("returned", type(value).__name__)
        print("traceback", "Traceback" in result.traceback)
        """
    )
    assert out == ["raised TypeError", "returned TypeError", "traceback True"]


def test_settings_set_on_app_conf_and_with_update(tutorial: Running) -> None:
    out = tutorial.lines(
        """
        from tasks import add, app
        app.conf.task_serializer = 'json'
        app.conf.update(
            task_serializer='json',
            accept_content=['json'],  # Ignore other content
            result_serializer='json',
            timezone='Europe/Oslo',
            enable_utc=True,
        )
        print(app.conf.timezone)
        print(add.delay(2, 3).get(timeout=10))
        """
    )
    assert out == ["Europe/Oslo", "5"]


def test_the_tutorial_module_starts_its_own_worker_with_app_start(compat_url: str) -> None:
    """`python tasks.py worker` (the module ends with `app.start()`); a URL of its own, so
    that no other worker can take the call."""
    where = project("tutorial")
    with program(where, compat_url, "tasks.py", "worker", "--loglevel=INFO") as proc:
        running = Running(where, compat_url, proc)
        out = running.run("from tasks import add; print(add.delay(1, 1).get(timeout=10))")
    assert out.strip() == "2", proc.log()


@pytest.fixture(scope="module")
def configured(module_url: str) -> Iterator[Running]:
    where = project("tutorial_config")
    with worker(
        where, module_url, "-A", "tasks", "worker", "-Q", "low-priority", "--loglevel=INFO"
    ) as proc:
        yield Running(where, module_url, proc)


def test_a_configuration_module_routes_the_task_to_its_queue(configured: Running) -> None:
    """celeryconfig.py routes tasks.add to 'low-priority': a worker on that queue runs it."""
    out = configured.lines(
        """
        from tasks import add, app
        print(app.conf.broker_url.split(':')[0])
        print(add.delay(4, 4).get(timeout=10))
        """
    )
    assert out[1] == "8", configured.worker.log()


def test_task_annotations_set_the_rate_limit_of_the_task(configured: Running) -> None:
    """`task_annotations = {'tasks.add': {'rate_limit': '10/m'}}`: the task's rate_limit is
    '10/m', and a second call waits for its token (6 s at 10 a minute)."""
    out = configured.lines(
        """
        import time
        from tasks import add
        print(add.rate_limit)
        first, second = add.delay(1, 1), add.delay(2, 2)
        start = time.monotonic()
        first.get(timeout=60)
        one = time.monotonic() - start
        second.get(timeout=60)
        two = time.monotonic() - start
        print(round(two - one))
        """
    )
    assert out[0] == "10/m"
    assert int(out[1]) >= 4, f"the second call ran {out[1]} s after the first, not ~6 s"
