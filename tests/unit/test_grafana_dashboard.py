"""deploy/grafana/conveyor.json queries only what conveyor serves: every metric name in its
PromQL is a sample a worker (`--metrics-port`) or the cluster exporter really serves after a
small workload, and every label it groups or filters by is one those samples carry."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from conveyor import Conveyor
from conveyor.brokers.base import WorkerInfo
from conveyor.events.types import (
    TaskFailed,
    TaskReceived,
    TaskRejected,
    TaskRetried,
    TaskRevoked,
    TaskSent,
    TaskStarted,
    TaskSucceeded,
    encode_json,
)
from conveyor.observability.cluster import ClusterCollector
from conveyor.observability.sent import SentCounter
from conveyor.scheduler.beat import Beat, BeatOptions
from conveyor.worker.metrics import GroupSlots, WorkerMetrics

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "conveyor.json"
METRIC = re.compile(r"\b((?:conveyor|celery)_[a-z_]+)\b")
GROUPING = re.compile(r"\bby \(([^)]*)\)")
MATCHERS = re.compile(r"\{([^}]*)\}")
LABEL = re.compile(r"(\w+)\s*(?:=~|!~|!=|=)")


def served() -> dict[str, set[str]]:
    """Every sample name served by a worker and the exporter after one call of each outcome,
    with the label names it carries."""
    app = Conveyor("g", broker="memory://", backend="memory://", set_as_current=False)
    app.conf.beat_schedule = {"tick": {"task": "g.t", "schedule": 10.0}}
    app.task(name="g.t")(lambda: None)
    Beat(app, BeatOptions(lease=3.0, max_interval=5.0, grace=60.0, holder="b")).start()
    assert app.schedule_store.advance("tick", None, 100.0, 1, 0)
    app.broker.register_worker(WorkerInfo("w@h", ("default",), ("g.t",), 1, 1.0, 2.0))
    registry = CollectorRegistry()
    registry.register(ClusterCollector(app))
    counter = SentCounter(app, registry, interval=3600).start()
    app.broker.publish_events(
        [encode_json(TaskSent(hostname="p", timestamp=1.0, uuid="a", name="g.t", queue="q"))]
    )
    counter.poll()
    counter.close()
    worker = WorkerMetrics("0", lambda: [GroupSlots("default:2:threads", 2, 1)])
    base: dict[str, Any] = {"hostname": "w", "timestamp": 2.0, "uuid": "a", "name": "g.t"}
    for event in (
        TaskReceived(**base, queue="q", attempt=1),
        TaskStarted(**base, queue="q", attempt=1, pid=1, queued_at=1.0),
        TaskSucceeded(**base, queue="q", runtime=0.1),
        TaskFailed(**base, queue="q", runtime=0.1, exception="ValueError()"),
        TaskRetried(**base, queue="q", exception="ValueError()", retries=1),
        TaskRevoked(**base, queue="q"),
        TaskRejected(**base, queue="q", reason="bad"),
    ):
        worker.observe(event)
    found: dict[str, set[str]] = {}
    for reg in (registry, worker.registry):
        for family in reg.collect():
            for sample in family.samples:
                found.setdefault(sample.name, set()).update(sample.labels)
    return found


def queries(dashboard: dict[str, Any]) -> list[str]:
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    variables = [
        v["query"]["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"
    ]
    return exprs + variables


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def test_every_metric_and_label_the_dashboard_queries_is_served(dashboard: dict[str, Any]) -> None:
    names = served()
    checked = 0
    for expr in queries(dashboard):
        metrics = METRIC.findall(expr)
        assert metrics, f"no conveyor metric in {expr!r}"
        for metric in metrics:
            assert metric in names, f"{metric} (in {expr!r}) is not served"
        carried = set.union(*(names[m] for m in metrics))
        used = {label.strip() for group in GROUPING.findall(expr) for label in group.split(",")}
        used |= {label for body in MATCHERS.findall(expr) for label in LABEL.findall(body)}
        used |= set(re.findall(r"label_values\(\w+, (\w+)\)", expr))
        assert used - {"", "le"} <= carried, f"{expr!r} uses labels {used - carried}"
        checked += 1
    assert checked >= 15


def test_the_dashboard_is_well_formed(dashboard: dict[str, Any]) -> None:
    panels = dashboard["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    refs = {"${datasource}"}
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] in refs, panel["title"]
        assert panel["targets"], panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "queue", "task"} <= variables
