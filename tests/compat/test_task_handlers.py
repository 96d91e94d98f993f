"""Celery's Tasks and Calling guides, for what a task does around its run and how it is called:
handlers of a custom Task class, annotations, argument checking, autoretry with retry_kwargs,
and apply_async's retry_policy, serializer, compression, ignore_result, routing_key and shadow.
Each case asserts what Celery does."""

from __future__ import annotations

from .harness import produce, project, worker

WORKER = ("-A", "tasks", "worker", "-Q", "celery,default", "-l", "INFO")


def test_handlers_of_a_custom_task_class_run_in_the_worker(compat_url: str) -> None:
    where = project("task_handlers")
    with worker(where, compat_url, *WORKER) as proc:
        out = produce(
            where,
            compat_url,
            "from tasks import my_task\nr = my_task.delay(2, 3)\nprint(r.id, r.get(timeout=30))",
        )
        task_id, value = out.split()
        assert value == "5"
        # Celery's worker passes the decoded arguments: a list.
        proc.wait_for_log(f"Task {task_id} starting with args [2, 3]")
        proc.wait_for_log(f"Task {task_id} succeeded with result: 5")
        proc.wait_for_log(f"Task {task_id} finished with status: SUCCESS")


def test_an_annotated_on_failure_replaces_the_class_handler(compat_url: str) -> None:
    # task_annotations set attributes on the task class, so the '*' on_failure wins over the
    # class's own, as in Celery.
    where = project("task_handlers")
    with worker(where, compat_url, *WORKER) as proc:
        out = produce(
            where,
            compat_url,
            "from tasks import add\n"
            "r = add.delay(1, 2)\n"
            "try:\n"
            "    r.get(timeout=30)\n"
            "except Exception as exc:\n"
            "    print(r.state)\n",
        )
        assert out.strip() == "FAILURE"
        proc.wait_for_log("Oh no! Task failed: KeyError()")
        assert "failed: KeyError()'" not in proc.log()


def test_annotations_set_the_rate_limit_of_the_tasks_they_match(compat_url: str) -> None:
    out = produce(
        project("task_handlers"),
        compat_url,
        "from tasks import add, plus, app\nprint(add.rate_limit, plus.rate_limit)",
    )
    assert out.split() == ["10/s", "10/s"]


def test_a_call_with_missing_arguments_raises_type_error_at_the_call(compat_url: str) -> None:
    out = produce(
        project("task_handlers"),
        compat_url,
        "from tasks import plus, unchecked_add\n"
        "try:\n"
        "    plus.delay(8)\n"
        "except TypeError:\n"
        "    print('TypeError')\n"
        "print(type(unchecked_add.delay(8)).__name__)",
    )
    assert out.split() == ["TypeError", "AsyncResult"]


def test_typing_false_sends_and_the_worker_raises(compat_url: str) -> None:
    where = project("task_handlers")
    with worker(where, compat_url, *WORKER):
        out = produce(
            where,
            compat_url,
            "from tasks import unchecked_add\n"
            "r = unchecked_add.delay(8)\n"
            "try:\n"
            "    r.get(timeout=30)\n"
            "except Exception:\n"
            "    print(r.state)",
        )
    assert out.strip() == "FAILURE"


def test_autoretry_with_retry_kwargs_retries_max_retries_times(compat_url: str) -> None:
    where = project("task_handlers")
    with worker(where, compat_url, *WORKER) as proc:
        out = produce(
            where,
            compat_url,
            "from tasks import refresh_timeline\n"
            "r = refresh_timeline.delay('ask')\n"
            "try:\n"
            "    r.get(timeout=60)\n"
            "except Exception:\n"
            "    print(r.state)",
        )
        assert out.strip() == "FAILURE"
        log = proc.log()
    tries = [line for line in log.splitlines() if "refresh_timeline ask try" in line]
    assert [t.split("try ")[1] for t in tries] == ["0 of 3", "1 of 3", "2 of 3", "3 of 3"]


def test_calling_options_of_the_calling_guide(compat_url: str) -> None:
    where = project("task_handlers")
    with worker(where, compat_url, *WORKER):
        out = produce(
            where,
            compat_url,
            "from tasks import plus\n"
            "print(plus.apply_async((2, 2), retry=True, retry_policy={\n"
            "    'max_retries': 3,\n"
            "    'interval_start': 0,\n"
            "    'interval_step': 0.2,\n"
            "    'interval_max': 0.2,\n"
            "    'retry_errors': None,\n"
            "}).get(timeout=30))\n"
            "print(plus.apply_async((10, 10), serializer='json').get(timeout=30))\n"
            "print(plus.apply_async((2, 2), compression='zlib').get(timeout=30))\n"
            "print(plus.apply_async((1, 2), ignore_result=False).get(timeout=30))\n"
            "print(plus.apply_async((2, 2), retry=False).get(timeout=30))",
        )
    assert out.split() == ["4", "20", "4", "3", "4"]


def test_pickle_is_refused_with_the_reason(compat_url: str) -> None:
    out = produce(
        project("task_handlers"),
        compat_url,
        "from tasks import plus\n"
        "try:\n"
        "    plus.apply_async((2, 2), serializer='pickle')\n"
        "except Exception as exc:\n"
        "    print(exc)",
    )
    assert "JSON only" in out and "pickle would let anyone" in out


def test_routing_key_sends_to_the_queue_of_that_name(compat_url: str) -> None:
    where = project("task_handlers")
    with worker(where, compat_url, "-A", "tasks", "worker", "-Q", "hipri", "-l", "INFO"):
        out = produce(
            where,
            compat_url,
            "from tasks import plus\n"
            "print(plus.apply_async((2, 2), routing_key='hipri').get(timeout=30))",
        )
    assert out.strip() == "4"


def test_shadow_renames_the_call_in_the_worker_log(compat_url: str) -> None:
    where = project("task_handlers")
    with worker(where, compat_url, *WORKER) as proc:
        out = produce(
            where,
            compat_url,
            "from tasks import plus\n"
            "r = plus.apply_async((1, 2), shadow='plus.renamed')\n"
            "print(r.id, r.get(timeout=30))",
        )
        task_id, value = out.split()
        assert value == "3"
        proc.wait_for_log(f"plus.renamed[{task_id}]")


def test_retry_options_set_as_class_attributes_of_a_base_task(compat_url: str) -> None:
    out = produce(
        project("task_handlers"),
        compat_url,
        "from tasks import with_class_options as t\n"
        "print(t.autoretry_for, t.max_retries, t.retry_backoff, t.retry_backoff_max,"
        " t.retry_jitter)",
    )
    assert out.split() == ["(<class", "'TypeError'>,)", "5", "True", "700", "False"]
