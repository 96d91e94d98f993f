"""Celery's "Tasks" user guide (docs/userguide/tasks.rst): its snippets live in
projects/guide_tasks/proj/tasks.py and names.py; each case asserts what Celery does with them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from .harness import Running, project, worker

# Celery's worker log formats: `[%(asctime)s: %(levelname)s/%(processName)s] %(message)s`, and
# for task loggers `... %(task_name)s[%(task_id)s]: %(message)s`.
STAMP = r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}: (?P<level>[A-Z]+)/[^\]]+\] "


@pytest.fixture(scope="module")
def guide(module_url: str) -> Iterator[Running]:
    where = project("guide_tasks")
    with worker(where, module_url, "-A", "proj", "worker", "-l", "INFO", "-c", "2") as w:
        yield Running(where, module_url, w)


def test_task_names_are_module_and_function_or_the_name_given(guide: Running) -> None:
    out = guide.lines(
        """
        from proj import names, tasks
        print(tasks.add.name)
        print(names.add.name)
        print(names.add.delay(1, 2).get(timeout=10))
        """
    )
    assert out == ["proj.tasks.add", "sum-of-two-numbers", "3"]


def test_get_task_logger_lines_carry_the_task_name_and_id(guide: Running) -> None:
    task_id = guide.run(
        "from proj.tasks import add\nr = add.delay(4, 4)\nr.get(timeout=10)\nprint(r.id)"
    ).strip()
    line = STAMP + re.escape(f"proj.tasks.add[{task_id}]: Adding 4 + 4")
    guide.worker.wait_for_log("Adding 4 + 4", timeout=10)
    assert re.search(line, guide.worker.log()), guide.worker.log()


def test_a_bound_task_logs_its_request_id(guide: Running) -> None:
    task_id = guide.run(
        "from proj.tasks import bound_add\nr = bound_add.delay(1, 2)\nr.get(timeout=10)\n"
        "print(r.id)"
    ).strip()
    guide.worker.wait_for_log(f"proj.tasks.bound_add[{task_id}]: {task_id}", timeout=10)


def test_a_module_logger_inside_a_task_shows_at_info(guide: Running) -> None:
    guide.run("from proj.tasks import log_with_std_logger as t; t.delay('hi').get(timeout=10)")
    guide.worker.wait_for_log("std logger says hi", timeout=10)
    assert re.search(STAMP + ".*std logger says hi", guide.worker.log())


def test_print_inside_a_task_reaches_the_worker_log(guide: Running) -> None:
    task_id = guide.run(
        "from proj.tasks import dump_context\nr = dump_context.delay(2, 3)\nr.get(timeout=10)\n"
        "print(r.id)"
    ).strip()
    guide.worker.wait_for_log(f"Executing task id {task_id}, args: ", timeout=10)
    assert re.search(
        re.escape(f"Executing task id {task_id}, args: ") + r"[\[(]2, 3[\])] kwargs: \{\}",
        guide.worker.log(),
    )


def test_on_failure_of_a_base_class_is_called_with_the_task_id_and_exception(
    guide: Running,
) -> None:
    out = guide.lines(
        """
        from proj.tasks import add_fails
        r = add_fails.delay(1, 2)
        try:
            r.get(timeout=10)
        except KeyError as exc:
            print('KeyError')
        print(r.id)
        """
    )
    assert out[0] == "KeyError"
    guide.worker.wait_for_log(f"{out[1]!r} failed: KeyError()", timeout=10)


def test_handlers_run_in_order_before_start_on_success_after_return(guide: Running) -> None:
    task_id = guide.run(
        "from proj.tasks import my_task\nr = my_task.delay(2, 3)\nprint(r.get(timeout=10))\n"
        "print(r.id)"
    ).split()[-1]
    guide.worker.wait_for_log(f"Task {task_id} finished with status: SUCCESS", timeout=10)
    log = guide.worker.log()
    starting = re.search(re.escape(f"Task {task_id} starting with args ") + r"[\[(]2, 3", log)
    success = log.find(f"Task {task_id} succeeded with result: 5")
    after = log.find(f"Task {task_id} finished with status: SUCCESS")
    assert starting is not None and 0 <= starting.start() < success < after, log


def test_calling_with_missing_arguments_raises_typeerror_at_the_call(guide: Running) -> None:
    """Celery checks the arguments against the function's signature when sending; with
    typing=False the call is sent and fails on the worker."""
    out = guide.lines(
        """
        from proj.tasks import add, add_untyped
        try:
            add.delay(8)
        except TypeError:
            print('refused at the call')
        r = add_untyped.delay(8)
        try:
            r.get(timeout=10)
        except TypeError:
            print('failed on the worker')
        """
    )
    assert out == ["refused at the call", "failed on the worker"]


def test_self_retry_with_a_countdown_runs_again_until_it_succeeds(guide: Running) -> None:
    out = guide.run(
        """
        from proj.tasks import send_twitter_status
        print(send_twitter_status.delay('oauth', 'hello').get(timeout=20))
        """
    )
    assert out.strip() == "hello (after 2 retries)"


def test_autoretry_for_with_retry_kwargs_gives_up_after_max_retries(guide: Running) -> None:
    out = guide.lines(
        """
        from proj.tasks import FailWhaleError, refresh_timeline
        r = refresh_timeline.delay('bob')
        try:
            r.get(timeout=20)
        except FailWhaleError as exc:
            print(exc)
        print(r.state)
        """
    )
    assert out == ["bob: attempt 2", "FAILURE"]


def test_custom_progress_state_is_readable_while_the_task_runs(guide: Running) -> None:
    out = guide.lines(
        """
        import json, time
        from proj.tasks import upload_files
        print(upload_files(['called', 'directly']))
        r = upload_files.delay(['a', 'b', 'c', 'd', 'e', 'f'])
        seen = set()
        deadline = time.monotonic() + 10
        while not r.ready() and time.monotonic() < deadline:
            if r.state == 'PROGRESS':
                seen.add(json.dumps(r.info, sort_keys=True))
            time.sleep(0.05)
        print(r.get(timeout=10))
        print(json.dumps(sorted(seen)))
        """
    )
    assert out[:2] == ["2", "6"]
    seen = [json.loads(s) for s in json.loads(out[2])]
    assert seen, "no PROGRESS state was seen while the task ran"
    assert all(s["total"] == 6 and 0 <= s["current"] < 6 for s in seen), seen


def test_the_apps_own_exception_is_raised_by_get(guide: Running) -> None:
    """An exception class that passes its arguments to Exception.__init__ (the guide's
    "pickleable exceptions") comes back as itself, with its attributes."""
    out = guide.run(
        """
        from proj.tasks import HttpError, fetch
        try:
            fetch.delay('/missing').get(timeout=10)
        except HttpError as exc:
            print(exc.status_code, exc.headers, exc.body)
        """
    )
    assert out.strip() == "404 {'Content-Type': 'text/plain'} /missing was not found"


def test_ignore_after_setting_the_state_keeps_that_state(guide: Running) -> None:
    out = guide.lines(
        """
        from proj.tasks import get_tweets
        r = get_tweets.delay('bob')
        print(r.get(timeout=10))
        print(r.state)
        """
    )
    assert out == ["['bob: first', 'bob: second']", "SUCCESS"]


def test_a_class_based_task_registered_with_register_task(guide: Running) -> None:
    out = guide.lines(
        """
        from proj.tasks import naive_authenticate
        print(naive_authenticate.name)
        print(naive_authenticate.delay('george', 'password').get(timeout=10))
        print(naive_authenticate.delay('george', 'guess').get(timeout=10))
        """
    )
    assert out == ["proj.tasks.NaiveAuthenticateServer", "True", "False"]


def test_a_task_instance_is_reused_by_its_process(guide: Running) -> None:
    """A base class caching a connection on the task: one connection per worker process."""
    out = guide.run(
        """
        import json
        from proj.tasks import process_rows
        print(json.dumps([process_rows.delay().get(timeout=10) for _ in range(6)]))
        """
    )
    by_pid: dict[int, set[str]] = {}
    for pid, db in json.loads(out):
        by_pid.setdefault(pid, set()).add(db)
    assert all(len(ids) == 1 for ids in by_pid.values()), by_pid


def test_ignore_result_makes_get_return_none(guide: Running) -> None:
    """Celery's get() returns None at once for a call sent with ignore_result (the timeout is
    only there so that a wrong answer fails rather than hangs)."""
    out = guide.lines(
        """
        from proj.tasks import mytask, mytask_ignored
        result = mytask.apply_async((1, 2), ignore_result=True)
        print(result.get(timeout=10))
        result = mytask.apply_async((1, 2), ignore_result=False)
        print(result.get(timeout=10))
        print(mytask_ignored.delay().get(timeout=10))
        """
    )
    assert out == ["None", "3", "None"]


def test_waiting_for_a_subtask_inside_a_task_raises_runtimeerror(guide: Running) -> None:
    out = guide.lines(
        """
        from proj.tasks import update_page_info, update_page_info_allowed
        try:
            update_page_info.delay('example.com').get(timeout=10)
        except RuntimeError:
            print('RuntimeError')
        print(update_page_info_allowed.delay('example.com').get(timeout=20))
        """
    )
    assert out == ["RuntimeError", str(len("<html>example.com</html>"))]


def test_shared_task_binds_to_the_app(guide: Running) -> None:
    out = guide.run(
        "from proj.tasks import shared_add\nprint(shared_add.delay(2, 2).get(timeout=10))"
    )
    assert out.strip() == "4"


def test_a_task_with_its_own_serializer_option(guide: Running) -> None:
    out = guide.run(
        "from proj.tasks import create_user\n"
        "print(create_user.delay('george', 'secret').get(timeout=10))"
    )
    assert out.strip() == "george"


def test_current_task_is_the_task_being_run(guide: Running) -> None:
    out = guide.run(
        """
        import json
        from proj.tasks import who_am_i
        r = who_am_i.delay()
        print(json.dumps([r.get(timeout=10), r.id]))
        """
    )
    (name, seen_id), task_id = json.loads(out)
    assert (name, seen_id) == ("proj.tasks.who_am_i", task_id)


def test_apply_runs_here_and_returns_an_eager_result(guide: Running) -> None:
    out = guide.lines(
        """
        from proj.tasks import add
        res = add.apply((2, 2))
        print(type(res).__name__, res.get(), res.state, res.successful())
        """
    )
    assert out == ["EagerResult 4 SUCCESS True"]


def test_revoke_with_terminate_stops_a_running_task(guide: Running) -> None:
    """The workers guide: `app.control.revoke(id, terminate=True)` kills the running task; its
    state is REVOKED and get() raises TaskRevokedError."""
    out = guide.lines(
        """
        import time
        from conveyor.exceptions import TaskRevokedError
        from proj.celery import app
        from proj.tasks import long_running
        r = long_running.delay(60)
        time.sleep(2)
        app.control.revoke(r.id, terminate=True)
        try:
            r.get(timeout=30)
        except TaskRevokedError:
            print('TaskRevokedError')
        print(r.state)
        """
    )
    assert out == ["TaskRevokedError", "REVOKED"]


def test_reject_with_requeue_delivers_the_message_again(guide: Running) -> None:
    out = guide.run("from proj.tasks import requeues\nprint(requeues.delay().get(timeout=20))")
    assert out.strip() == "received two times"
    guide.worker.wait_for_log("received two times", timeout=10)


def test_retry_through_the_task_object_in_an_unbound_task(guide: Running) -> None:
    out = guide.lines(
        """
        from proj.tasks import FailWhaleError, refresh_timeline_unbound
        r = refresh_timeline_unbound.delay('ann')
        try:
            r.get(timeout=20)
        except FailWhaleError as exc:
            print(exc)
        print(r.state)
        """
    )
    assert out == ["ann", "FAILURE"]


def test_the_time_helpers_task_modules_import(guide: Running) -> None:
    out = guide.lines(
        """
        from datetime import timedelta
        from conveyor.utils.time import humanize_seconds, maybe_timedelta, rate
        print(maybe_timedelta(30) == timedelta(seconds=30))
        print(rate('10/m') == 10 / 60)
        print(humanize_seconds(90))
        """
    )
    assert out == ["True", "True", "1.50 minutes"]
