"""Celery's "Next Steps" tutorial with its example project (projects/next_steps/proj), run as
the tutorial runs it: `conveyor -A proj worker -l INFO -Q hipri,celery` and calls from Python."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import Running, command, produce, project, wait_until, worker


@pytest.fixture(scope="module")
def proj(module_url: str) -> Iterator[Running]:
    where = project("next_steps")
    with worker(where, module_url, "-A", "proj", "worker", "-l", "INFO", "-Q", "hipri,celery") as w:
        yield Running(where, module_url, w)


def test_delay_apply_async_and_calling_directly(proj: Running) -> None:
    out = proj.lines(
        """
        import uuid
        from proj.tasks import add
        print(add.delay(2, 2).get(timeout=10))
        res = add.apply_async((2, 2))
        print(res.get(timeout=10))
        print(add(2, 2))
        print(uuid.UUID(res.id).version)
        """
    )
    assert out == ["4", "4", "4", "4"]


def test_an_error_propagates_and_the_result_reports_the_failure(proj: Running) -> None:
    out = proj.lines(
        """
        from proj.tasks import add
        res = add.delay(2, '2')
        try:
            res.get(timeout=10)
        except TypeError as exc:
            print(repr(exc))
        print(type(res.get(propagate=False)).__name__)
        print(res.failed(), res.successful())
        print(res.state)
        print(f"{res.state}")
        """
    )
    assert out == [
        "TypeError(\"unsupported operand type(s) for +: 'int' and 'str'\")",
        "TypeError",
        "True False",
        "FAILURE",
        "FAILURE",
    ]


def test_an_unknown_task_id_is_pending(proj: Running) -> None:
    out = proj.run(
        """
        from proj.celery import app
        res = app.AsyncResult('this-id-does-not-exist')
        print(res.state)
        """
    )
    assert out.strip() == "PENDING"


def test_a_signature_prints_as_the_call_it_stands_for(proj: Running) -> None:
    out = proj.lines(
        """
        from proj.tasks import add
        print(add.signature((2, 2), countdown=10))
        print(add.s(2, 2))
        """
    )
    assert out == ["proj.tasks.add(2, 2)", "proj.tasks.add(2, 2)"]


def test_signatures_and_partials(proj: Running) -> None:
    out = proj.lines(
        """
        from proj.tasks import add
        s1 = add.s(2, 2)
        res = s1.delay()
        print(res.get(timeout=10))
        s2 = add.s(2)
        res = s2.delay(8)
        print(res.get(timeout=10))
        """
    )
    assert out == ["4", "10"]


def test_groups(proj: Running) -> None:
    out = proj.lines(
        """
        from conveyor import group
        from proj.tasks import add
        print(group(add.s(i, i) for i in range(10))().get(timeout=10))
        g = group(add.s(i) for i in range(10))
        print(g(10).get(timeout=10))
        """
    )
    assert out == [
        "[0, 2, 4, 6, 8, 10, 12, 14, 16, 18]",
        "[10, 11, 12, 13, 14, 15, 16, 17, 18, 19]",
    ]


def test_chains(proj: Running) -> None:
    out = proj.lines(
        """
        from conveyor import chain
        from proj.tasks import add, mul
        # (4 + 4) * 8
        print(chain(add.s(4, 4) | mul.s(8))().get(timeout=10))
        # (? + 4) * 8
        g = chain(add.s(4) | mul.s(8))
        print(g(4).get(timeout=10))
        print((add.s(4, 4) | mul.s(8))().get(timeout=10))
        """
    )
    assert out == ["64", "64", "64"]


def test_chords(proj: Running) -> None:
    out = proj.lines(
        """
        from conveyor import chord, group
        from proj.tasks import add, xsum
        print(chord((add.s(i, i) for i in range(10)), xsum.s())().get(timeout=10))
        print((group(add.s(i, i) for i in range(10)) | xsum.s())().get(timeout=10))
        """
    )
    assert out == ["90", "90"]


def test_routing_with_task_routes_and_the_queue_argument(proj: Running) -> None:
    """The worker consumes `-Q hipri,celery`: calls routed to hipri and unrouted calls (the
    default queue is named celery) both run."""
    out = proj.lines(
        """
        from proj.celery import app
        from proj.tasks import add, mul
        app.conf.update(
            task_routes = {
                'proj.tasks.add': {'queue': 'hipri'},
            },
        )
        print(add.delay(1, 2).get(timeout=10))
        print(mul.apply_async((2, 2), queue='hipri').get(timeout=10))
        print(mul.delay(3, 3).get(timeout=10))
        print(app.conf.task_default_queue)
        """
    )
    assert out == ["3", "4", "9", "celery"]


def test_timezone_setting(proj: Running) -> None:
    out = proj.run(
        """
        from proj.celery import app
        from proj.tasks import add
        app.conf.timezone = 'Europe/London'
        print(add.delay(1, 1).get(timeout=10))
        """
    )
    assert out.strip() == "2"


def test_result_command_prints_the_value(proj: Running) -> None:
    """`celery -A proj result ID` prints just the task's value."""
    task_id = proj.run(
        "from proj.tasks import add\nres = add.delay(20, 22)\nres.get(timeout=10)\nprint(res.id)"
    ).strip()
    done = command(proj.where, proj.url, "-A", "proj", "result", task_id)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "42"


def test_multi_starts_and_stops_a_named_worker(compat_url: str, tmp_path: Path) -> None:
    """`celery multi start w1 -A proj -l INFO --pidfile=... --logfile=...`, then `stopwait`
    with the same pidfile and logfile arguments."""
    where = project("next_steps")
    files = [f"--pidfile={tmp_path}/%n.pid", f"--logfile={tmp_path}/%n%I.log"]
    started = command(where, compat_url, "multi", "start", "w1", "-A", "proj", "-l", "INFO", *files)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        out = produce(
            where, compat_url, "from proj.tasks import add; print(add.delay(3, 4).get(timeout=10))"
        )
        assert out.strip() == "7"
        assert (tmp_path / "w1.pid").exists()
    finally:
        stopped = command(
            where, compat_url, "multi", "stopwait", "w1", "-A", "proj", "-l", "INFO", *files
        )
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    wait_until(lambda: not (tmp_path / "w1.pid").exists(), 30, "w1's pidfile to be removed")
    assert json.dumps(sorted(p.name for p in tmp_path.glob("w1*.log")))


def test_current_app_states_and_task_ids_known_before_sending(proj: Running) -> None:
    out = proj.lines(
        """
        from conveyor import current_app, states, uuid
        from proj.celery import app
        from proj.tasks import add
        res = current_app.send_task('proj.tasks.add', args=[1, 2])
        print(res.get(timeout=10))
        print(current_app.conf.result_expires)
        print(res.state == states.SUCCESS, res.state in states.READY_STATES)
        task_id = uuid()
        res = add.apply_async((3, 4), task_id=task_id)
        print(res.get(timeout=10), res.id == task_id)
        print(app.AsyncResult(task_id).get(timeout=10))
        """
    )
    assert out == ["3", "3600", "True True", "7 True", "7"]


def test_worker_options_of_celery_are_accepted(compat_url: str) -> None:
    """`-A proj.celery:app`, `-O fair`, the time limits and the --without-* switches that
    Celery's docs and init scripts pass; the node is named celery@<hostname> by default, as in
    Celery."""
    import socket

    where = project("next_steps")
    args = (
        "-A", "proj.celery:app", "worker", "-l", "INFO", "-O", "fair", "--time-limit=60",
        "--soft-time-limit=50", "--without-heartbeat", "--without-gossip", "--without-mingle",
    )  # fmt: skip
    with worker(where, compat_url, *args) as proc:
        out = produce(
            where, compat_url, "from proj.tasks import add; print(add.delay(5, 5).get(timeout=10))"
        )
        assert out.strip() == "10", proc.log()
        assert f"celery@{socket.gethostname()}" in proc.log()


def test_worker_detach_writes_its_pidfile_and_logfile(compat_url: str, tmp_path: Path) -> None:
    import os
    import signal

    where = project("next_steps")
    pidfile, logfile = tmp_path / "w.pid", tmp_path / "w.log"
    done = command(
        where, compat_url, "-A", "proj", "worker", "--detach", f"--pidfile={pidfile}",
        f"--logfile={logfile}", "-l", "INFO",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    wait_until(pidfile.exists, 30, "the detached worker's pidfile")
    pid = int(pidfile.read_text().strip())
    try:
        out = produce(
            where, compat_url, "from proj.tasks import add; print(add.delay(6, 6).get(timeout=10))"
        )
        assert out.strip() == "12"
        assert logfile.exists() and logfile.read_text()
    finally:
        os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not pidfile.exists(), 30, "the detached worker to remove its pidfile")
