"""A real `conveyor worker --metrics-port` process serves Prometheus metrics whose counts match
a known workload: 10 successes, 3 failures, 2 calls retried once then successful, 1 call revoked
(expired) before it ran; counters at 0 before the first call; with `metrics_celery_names`, the
Celery exporter's names count the same."""

from __future__ import annotations

import socket
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conveyor import __version__ as conveyor_version

from .helpers import conveyor, log_of, python, start_worker, stop_worker, wait_until

pytestmark = pytest.mark.slow

WORKLOAD = """
import datetime

from metrics_app import fail, flaky, later, ok

if LATER:
    later.apply_async(countdown=2.0).get(timeout=60)  # due 2 s after it is sent

past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=5)
ok.apply_async((0,), expires=past)  # the worker revokes it instead of running it
calls = [ok.delay(i) for i in range(10)] + [fail.delay() for _ in range(3)]
calls += [flaky.delay() for _ in range(2)]
pids = set()
for call in calls:
    try:
        pids.add(call.get(timeout=60))
    except ValueError:
        pass
print(len(pids) - 1)  # processes that ran metrics.ok (flaky's values are 1s, not pids)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(port: int) -> Samples:
    """The samples of http://127.0.0.1:port/metrics, keyed by name and labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, /, **labels: str) -> float:
    """One sample's value (KeyError naming what was scraped when it is missing)."""
    key = (name, frozenset(labels.items()))
    if key not in samples:
        raise KeyError(f"{name}{labels} not in {sorted(k for k in samples if k[0] == name)}")
    return samples[key]


def counted(samples: Samples, name: str) -> float:
    """The sum of a metric's samples over all its labels."""
    return sum(v for (n, _), v in samples.items() if n == name)


@dataclass(frozen=True)
class Run:
    """What a workload's run showed: the samples before the first call and after the last, the
    worker's log, and how many processes ran metrics.ok."""

    before: Samples
    after: Samples
    log: str
    runners: int


def run_workload(tmp_path: Path, pool: str, *extra: str, later: bool = False, **env: str) -> Run:
    """Run the workload on a real worker (`later`: and first one delayed call of
    metrics.later); `env`: the worker's extra environment."""
    db = tmp_path / "m.db"
    port = free_port()
    flags = ("-P", pool, "-c", "2", "--metrics-port", str(port), *extra)
    proc = start_worker(db, *flags, app="metrics_app", **env)
    try:
        wait_until(lambda: _serving(port, proc), 60, "the worker to serve /metrics")
        before = scrape(port)
        runners = int(python(db, f"LATER = {later!r}\n{WORKLOAD}").stdout)
        succeeded = 12 + later
        wait_until(
            lambda: _settled(scrape(port), succeeded),
            30,
            "the metrics to count every outcome",
        )
        after = scrape(port)
    finally:
        stop_worker(proc)
    return Run(before, after, log_of(proc), runners)


def _settled(samples: Samples, succeeded: int) -> bool:
    done = counted(samples, "conveyor_tasks_succeeded_total")
    return done == succeeded and counted(samples, "conveyor_tasks_revoked_total") == 1


def _serving(port: int, proc: subprocess.Popen[str]) -> bool:
    assert proc.poll() is None, log_of(proc)
    try:
        scrape(port)
    except OSError:
        return False
    return True


@pytest.mark.parametrize(
    ("pool", "extra"),
    [
        ("threads", ()),
        ("process", ()),
        # each child is replaced after one call: the counts live in the main process
        ("process", ("--max-tasks-per-child", "1")),
    ],
    ids=["threads", "process", "process-recycled"],
)
def test_worker_metrics_count_a_known_workload(
    tmp_path: Path, pool: str, extra: tuple[str, ...]
) -> None:
    run = run_workload(tmp_path, pool, *extra)
    samples, log = run.after, run.log
    if extra:
        assert run.runners == 10  # every call of metrics.ok ran in a fresh child
    q = "celery"
    # Before the first call: a sample at 0 for every task and counter (failed excepted)
    for task in ("metrics.ok", "metrics.fail", "metrics.flaky", "metrics.later"):
        for word in ("received", "started", "succeeded", "retried", "revoked", "rejected"):
            assert value(run.before, f"conveyor_tasks_{word}_total", task=task, queue=q) == 0
    assert counted(run.before, "conveyor_tasks_failed_total") == 0
    assert value(samples, "conveyor_tasks_succeeded_total", task="metrics.ok", queue=q) == 10, log
    assert value(samples, "conveyor_tasks_succeeded_total", task="metrics.flaky", queue=q) == 2
    fail = {"task": "metrics.fail", "queue": q, "exception": "ValueError"}
    assert value(samples, "conveyor_tasks_failed_total", **fail) == 3
    assert value(samples, "conveyor_tasks_retried_total", task="metrics.flaky", queue=q) == 2
    assert value(samples, "conveyor_tasks_revoked_total", task="metrics.ok", queue=q) == 1
    assert counted(samples, "conveyor_tasks_rejected_total") == 0
    # 10 + 3 + 2 × 2 (a retried call runs twice); the revoked call never started
    assert counted(samples, "conveyor_tasks_started_total") == 17
    # Every delivery is received: those 17 runs and the expired call
    assert counted(samples, "conveyor_tasks_received_total") == 18
    # The runtime histogram observes succeeded and failed calls, not retries
    assert counted(samples, "conveyor_task_runtime_seconds_count") == 12 + 3
    ok = {"task": "metrics.ok", "queue": q}
    assert value(samples, "conveyor_task_runtime_seconds_bucket", **ok, le="+Inf") == 10
    # Every run started is observed once in the queue-wait histogram
    assert counted(samples, "conveyor_task_queue_wait_seconds_count") == 17
    assert value(samples, "conveyor_task_queue_wait_seconds_count", **ok) == 10
    group = f"{q}:2:{pool}"
    assert value(samples, "conveyor_worker_slots", group=group) == 2
    assert value(samples, "conveyor_worker_slots_busy", group=group) == 0
    assert value(samples, "conveyor_worker_up") == 1
    assert value(samples, "conveyor_build_info", version=conveyor_version) == 1


def test_a_metrics_port_in_use_is_a_clear_error_at_start(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = conveyor(
            tmp_path / "m.db", "-A", "metrics_app", "worker", "-P", "threads",
            "--metrics-port", str(port),
        )  # fmt: skip
    assert done.returncode != 0
    assert f"cannot serve metrics on 127.0.0.1:{port}" in done.stderr
    assert "choose a free port" in done.stderr


COUNTERS = ("received", "started", "succeeded", "failed", "retried", "revoked", "rejected")


def by_task(samples: Samples, name: str, task: str, queue: str) -> dict[tuple[str, ...], float]:
    """A counter's samples keyed by (task, queue, exception) under the given label names."""
    return {
        (labels[task], labels[queue], labels.get("exception", "-")): v
        for (n, frozen), v in samples.items()
        if n == name and (labels := dict(frozen)).get("exception") != ""
    }


def test_celery_names_count_the_same_and_a_delayed_call_waits_from_its_due_time(
    tmp_path: Path,
) -> None:
    run = run_workload(tmp_path, "threads", later=True, METRICS_CELERY_NAMES="1")
    samples, host = run.after, socket.gethostname()
    for word in COUNTERS:
        ours = by_task(samples, f"conveyor_tasks_{word}_total", "task", "queue")
        theirs = by_task(samples, f"celery_task_{word}_total", "name", "queue_name")
        assert ours == theirs, (word, run.log)
        assert sum(ours.values()) > 0 or word == "rejected"
    hosts = {dict(k[1])["hostname"] for k in samples if k[0].startswith("celery_task_")}
    assert hosts == {host}  # the host part of the worker's name, celery@<host>
    labels = {"hostname": host, "queue_name": "celery"}
    for task in ("metrics.ok", "metrics.later"):  # at 0 before the first call
        assert value(run.before, "celery_task_received_total", name=task, **labels) == 0
    failed = value(samples, "celery_task_failed_total", name="metrics.fail", **labels,
                   exception="ValueError")  # fmt: skip
    assert failed == 3
    # The exporter's runtime histogram observes successes only
    assert counted(samples, "celery_task_runtime_count") == 13
    assert value(samples, "celery_worker_up", hostname=host) == 1
    assert value(samples, "celery_worker_tasks_active", hostname=host) == 0
    # The call sent with countdown=2 waited from its due time, not from when it was sent
    later = {"task": "metrics.later", "queue": "celery"}
    assert value(samples, "conveyor_task_queue_wait_seconds_count", **later) == 1
    assert value(samples, "conveyor_task_queue_wait_seconds_sum", **later) < 2.0
    later_celery = {"name": "metrics.later", **labels}
    assert value(samples, "celery_task_queue_wait_time_count", **later_celery) == 1
    assert value(samples, "celery_task_queue_wait_time_sum", **later_celery) < 2.0
    assert counted(samples, "conveyor_task_queue_wait_seconds_count") == 18
    assert counted(samples, "celery_task_queue_wait_time_count") == 18
