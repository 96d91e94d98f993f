"""A real `conveyor worker --metrics-port` process serves Prometheus metrics whose counts match
a known workload: 10 successes, 3 failures, 2 calls retried once then successful, 1 call revoked
(expired) before it ran."""

from __future__ import annotations

import socket
import subprocess
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conveyor import __version__ as conveyor_version

from .helpers import conveyor, log_of, python, start_worker, stop_worker, wait_until

pytestmark = pytest.mark.slow

WORKLOAD = """
import datetime

from metrics_app import fail, flaky, ok

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


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value (KeyError naming what was scraped when it is missing)."""
    key = (name, frozenset(labels.items()))
    if key not in samples:
        raise KeyError(f"{name}{labels} not in {sorted(k for k in samples if k[0] == name)}")
    return samples[key]


def counted(samples: Samples, name: str) -> float:
    """The sum of a metric's samples over all its labels."""
    return sum(v for (n, _), v in samples.items() if n == name)


def run_workload(tmp_path: Path, pool: str, *extra: str) -> tuple[Samples, str, int]:
    """Run the workload on a real worker; its scraped samples, log, and how many processes
    ran metrics.ok."""
    db = tmp_path / "m.db"
    port = free_port()
    flags = ("-P", pool, "-c", "2", "--metrics-port", str(port), *extra)
    proc = start_worker(db, *flags, app="metrics_app")
    try:
        wait_until(lambda: _serving(port, proc), 60, "the worker to serve /metrics")
        runners = int(python(db, WORKLOAD).stdout)
        wait_until(
            lambda: _settled(scrape(port)),
            30,
            "the metrics to count every outcome",
        )
        samples = scrape(port)
    finally:
        stop_worker(proc)
    return samples, log_of(proc), runners


def _settled(samples: Samples) -> bool:
    done = counted(samples, "conveyor_tasks_succeeded_total")
    return done == 12 and counted(samples, "conveyor_tasks_revoked_total") == 1


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
    samples, log, runners = run_workload(tmp_path, pool, *extra)
    if extra:
        assert runners == 10  # every call of metrics.ok ran in a fresh child
    q = "default"
    assert value(samples, "conveyor_tasks_succeeded_total", task="metrics.ok", queue=q) == 10, log
    assert value(samples, "conveyor_tasks_succeeded_total", task="metrics.flaky", queue=q) == 2
    fail = {"task": "metrics.fail", "queue": q, "exception": "ValueError"}
    assert value(samples, "conveyor_tasks_failed_total", **fail) == 3
    assert value(samples, "conveyor_tasks_retried_total", task="metrics.flaky", queue=q) == 2
    assert value(samples, "conveyor_tasks_revoked_total", task="metrics.ok", queue="") == 1
    assert counted(samples, "conveyor_tasks_rejected_total") == 0
    # 10 + 3 + 2 × 2 (a retried call runs twice); the revoked call never started
    assert counted(samples, "conveyor_tasks_started_total") == 17
    # Every delivery is received: those 17 runs and the expired call
    assert counted(samples, "conveyor_tasks_received_total") == 18
    # The runtime histogram observes succeeded and failed calls, not retries
    assert counted(samples, "conveyor_task_runtime_seconds_count") == 12 + 3
    ok = {"task": "metrics.ok", "queue": q}
    assert value(samples, "conveyor_task_runtime_seconds_bucket", **ok, le="+Inf") == 10
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
