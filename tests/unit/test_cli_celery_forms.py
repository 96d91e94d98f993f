"""Celery's command-line forms, in process: `multi`'s node arguments, node-name file patterns,
`conveyor result ID` (the value, as Celery prints it) against `result show ID`, the worker's
Celery options that are checked before it starts, and the task log format."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner, Result

from conveyor import Conveyor, signals
from conveyor.cli import cli
from conveyor.cli.context import CliContext
from conveyor.cli.inspect_cmds import result
from conveyor.cli.multi_nodes import Node, parse_nodes
from conveyor.cli.worker import worker
from conveyor.clock import FakeClock
from conveyor.log import get_task_logger
from conveyor.logformat import formatter
from conveyor.request import Request, running
from conveyor.worker.naming import expand_node_name, node_format
from conveyor.worker.worker import Worker, default_options


# -- node names and their file patterns ---------------------------------------------------------
def test_the_default_node_name_is_celerys() -> None:
    assert expand_node_name(None, "web1") == "celery@web1"


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("%n.pid", "w1.pid"),
        ("/var/log/app/%n%I.log", "/var/log/app/w1.log"),
        ("%p-%i.log", "w1@web1.example.com-0.log"),
        ("%h/%d/%n", "web1.example.com/example.com/w1"),
        ("100%%-%n-%x", "100%-w1-%x"),
    ],
)
def test_file_patterns_expand_for_the_node(pattern: str, expected: str) -> None:
    assert node_format(pattern, "w1@web1.example.com") == expected


# -- multi's arguments --------------------------------------------------------------------------
def _nodes(*args: str, app: str | None = None) -> list[Node]:
    return parse_nodes(args, worker, app)


def test_named_nodes_get_the_host_defaults_and_the_shared_options() -> None:
    host = socket.gethostname()
    first, second = _nodes("w1", "w2", "-A", "proj", "-l", "INFO", "-P", "threads")
    assert (first.name, second.name) == (f"w1@{host}", f"w2@{host}")
    assert (first.pidfile, first.logfile) == ("w1.pid", "w1.log")
    assert first.argv == (
        "-A", "proj", "worker", "--detach", "-n", f"w1@{host}",
        "--pidfile=w1.pid", "--logfile=w1.log", "-l", "INFO", "-P", "threads",
    )  # fmt: skip


def test_a_count_names_celery1_to_n_and_selectors_pick_by_index_range_and_name() -> None:
    nodes = _nodes("3", "-c", "2", "-c:1-2", "4", "--concurrency:celery3=5", app="proj")
    assert [n.name.partition("@")[0] for n in nodes] == ["celery1", "celery2", "celery3"]
    assert [n.argv[:2] for n in nodes] == [("-A", "proj")] * 3  # the group's -A is passed on
    assert [n.argv[n.argv.index("worker") + 6 :] for n in nodes] == [
        ("-c", "4"),
        ("-c", "4"),
        ("--concurrency", "5"),
    ]


def test_host_flags_and_file_options_are_placed_by_multi() -> None:
    (node,) = _nodes("w1", "-n", "box.example.com", "--pidfile=/run/x/%n.pid", "-D", "-B")
    assert node.name == "w1@box.example.com" and node.pidfile == "/run/x/w1.pid"
    assert node.argv.count("--detach") == 1 and "-D" not in node.argv
    assert node.argv[-1] == "-B" and "--pidfile=/run/x/w1.pid" in node.argv


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("-A", "proj"), "name the nodes"),
        (("w1", "--frobnicate"), "--frobnicate is not an option of `conveyor worker`"),
        (("w1", "-c:w9", "2"), "-c:w9 selects no node"),
        (("w1", "-l"), "-l needs a value"),
        (("w1", "-B=yes"), "-B is a flag"),
        (("w1", "--", "x"), "no `--` arguments"),
    ],
)
def test_bad_multi_arguments_are_refused_with_the_reason(
    args: tuple[str, ...], message: str
) -> None:
    with pytest.raises(click.UsageError, match=message):
        _nodes(*args)


def test_multi_show_prints_each_command_without_starting_anything() -> None:
    out = CliRunner().invoke(cli, ["multi", "show", "w1", "w2", "-A", "proj"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert len(lines) == 2 and all("-m conveyor -A proj worker --detach" in x for x in lines)


# -- conveyor result ----------------------------------------------------------------------------
@pytest.fixture
def app() -> Iterator[Conveyor]:
    app = Conveyor("proj", broker="memory://", clock=FakeClock(), set_as_current=False)

    @app.task(name="proj.add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="proj.fail")
    def fail() -> None:
        raise ValueError("no luck")

    yield app
    app.close()


def _run(app: Conveyor, *names: str) -> list[str]:
    ids = [app.send_task(name, args=(2, 3) if name == "proj.add" else ()).id for name in names]
    Worker(app, default_options(app, name="w@test")).run_until_idle()
    return ids


def _result(app: Conveyor, *args: str) -> Result:
    return CliRunner().invoke(result, list(args), obj=CliContext(None, None, _app=app))


def test_result_prints_just_the_value_as_celery(app: Conveyor) -> None:
    (task_id,) = _run(app, "proj.add")
    out = _result(app, task_id)
    assert (out.exit_code, out.output) == (0, "5\n")


def test_result_show_and_verbose_print_the_stored_record(app: Conveyor) -> None:
    (task_id,) = _run(app, "proj.add")
    for args in (("show", task_id), ("-v", task_id)):
        out = _result(app, *args)
        assert out.exit_code == 0
        assert "state: SUCCESS" in out.output and "task: proj.add" in out.output


def test_a_failed_call_prints_its_error_and_exits_1(app: Conveyor) -> None:
    (task_id,) = _run(app, "proj.fail")
    out = _result(app, task_id)
    assert out.exit_code == 1
    assert f"task {task_id} failed: ValueError: no luck" in out.output
    traceback = _result(app, task_id, "--traceback")
    assert traceback.exit_code == 0 and "ValueError: no luck" in traceback.output


def test_an_unknown_task_name_is_refused_and_a_timeout_says_what_to_do(app: Conveyor) -> None:
    (task_id,) = _run(app, "proj.add")
    refused = _result(app, task_id, "-t", "proj.ad")
    assert refused.exit_code == 2 and "did you mean 'proj.add'" in refused.output
    assert _result(app, task_id, "-t", "proj.add").output == "5\n"
    waited = _result(app, "never-sent", "--timeout", "0")
    assert waited.exit_code == 1 and "give a longer --timeout" in waited.output


def test_result_takes_one_id_or_show_and_one_id(app: Conveyor) -> None:
    out = _result(app, "a", "b")
    assert out.exit_code == 2 and "give one task id" in out.output


# -- worker options checked before it starts ----------------------------------------------------
def test_worker_schedule_file_without_beat_is_refused(tmp_path: object) -> None:
    out = CliRunner().invoke(cli, ["-A", "x", "worker", "-s", "celerybeat-schedule"])
    assert out.exit_code == 2 and "add -B, or drop them" in out.output


@pytest.mark.parametrize("args", [("-O", "unfair"), ("--time-limit", "0"), ("--time-limit", "x")])
def test_worker_refuses_bad_celery_option_values(args: tuple[str, ...]) -> None:
    out = CliRunner().invoke(cli, ["-A", "x", "worker", *args])
    assert out.exit_code == 2, out.output


# -- the text log format ------------------------------------------------------------------------
def test_a_logger_under_a_task_logger_shows_the_running_task() -> None:
    parent = get_task_logger("tests.unit.cli_forms_tasks")
    child = logging.getLogger(f"{parent.name}.helpers")  # no filter of its own
    record = child.makeRecord(child.name, logging.INFO, __file__, 1, "helping", (), None)
    with running(Request(id="t-1", task="proj.add")):
        line = formatter("text").format(record)
    assert line.endswith("] proj.add[t-1]: helping")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--uid", "celery"), "--uid is not supported: conveyor never changes its user"),
        (("--umask", "022"), "systemd UMask="),
        (("--heartbeat-interval", "5"), "follows its lease"),
        (("-X", "low"), "list them with -Q"),
        (("--disable-prefetch", "--prefetch-multiplier", "4"), "drop one of them"),
    ],
)
def test_celery_worker_options_without_a_counterpart_are_refused_with_the_reason(
    args: tuple[str, ...], message: str
) -> None:
    out = CliRunner().invoke(cli, ["-A", "x", "worker", *args])
    assert out.exit_code == 2 and message in out.output, out.output


@pytest.mark.parametrize(
    ("pool", "message"),
    [("gevent", "use -P threads"), ("eventlet", "monkey-patch"), ("fork", "use one of")],
)
def test_pools_conveyor_lacks_are_refused_with_what_to_use(pool: str, message: str) -> None:
    out = CliRunner().invoke(cli, ["-A", "x", "worker", "-P", pool])
    assert out.exit_code == 2 and message in out.output, out.output


def test_the_groups_app_and_broker_reach_every_node_unless_given_again() -> None:
    (node,) = parse_nodes(("w1",), worker, "proj", "redis://h/0")
    assert node.argv[:5] == ("-A", "proj", "-b", "redis://h/0", "worker")
    (own,) = parse_nodes(("w1", "--app=other"), worker, "proj", None)
    assert own.argv[:3] == ("--app", "other", "worker")


def test_detach_called_from_python_without_a_command_line_is_refused() -> None:
    out = CliRunner().invoke(cli, ["-A", "tests.integration.cli_app", "worker", "-D"])
    assert out.exit_code == 2 and "run `conveyor ... --detach` instead" in out.output


def test_the_multi_example_of_celerys_docs_gives_each_node_its_queues() -> None:
    args = ("10", "-A", "proj", "-l", "INFO", "-Q:1-3", "images,video", "-Q:4,5", "data")
    nodes = _nodes(*args, "-Q", "default")
    queues = [n.argv[n.argv.index("-Q") + 1] for n in nodes]
    assert queues == ["images,video"] * 3 + ["data"] * 2 + ["default"] * 5
    assert all(n.argv.count("-Q") == 1 for n in nodes)


def test_a_revoked_call_says_so_and_exits_1(app: Conveyor) -> None:
    task_id = app.send_task("proj.add", args=(1, 2)).id
    app.control.revoke(task_id)
    Worker(app, default_options(app, name="w@test")).run_until_idle()
    out = _result(app, task_id)
    assert out.exit_code == 1 and f"task {task_id} was revoked" in out.output


@pytest.mark.parametrize("beats", [True, False])
def test_without_heartbeat_neither_the_stream_nor_the_signal_hears_heartbeats(
    app: Conveyor, beats: bool
) -> None:
    heard: list[object] = []

    def on_beat(sender: object, **kwargs: object) -> None:
        heard.append(sender)

    signals.heartbeat_sent.connect(on_beat)
    consumer = Worker(app, default_options(app, name="w@hb", heartbeat_events=beats))
    close = consumer._publish_events()
    try:
        consumer.heartbeat.run_once()
    finally:
        close()
        signals.heartbeat_sent.disconnect(on_beat)
    published = [e.body for e in app.broker.read_events(None, 100)]
    assert any(b"worker-heartbeat" in body for body in published) is beats
    assert heard == ([consumer] if beats else [])
    assert app.broker.workers()[0].name == "w@hb"  # the registry record is written either way
