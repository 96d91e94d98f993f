"""Celery's settings and routing, as its docs write them (renames only), run for real: the
default queue `celery`, routing guide configurations (automatic and manual routing with a topic
exchange), RabbitMQ-style priorities, Celery 3 settings modules, and a `db+sqlite://` result
backend. Each case asserts what Celery does."""

from __future__ import annotations

from pathlib import Path

from .harness import produce, project, wait_until, worker

_QUEUES = """
from proj.tasks import add, import_feed
a, f = add.delay(2, 3), import_feed.delay("http://cnn.com/rss")
print(a.get(timeout=60), f.get(timeout=60), a.queue, f.queue, sep="|")
"""


def test_automatic_routing_and_the_default_queue_celery(compat_url: str) -> None:
    """Routing guide, "Automatic routing": routed calls go to `feeds`, the rest to Celery's
    default queue `celery`, and a worker started with `-Q feeds,celery` runs both."""
    where = project("settings_routing")
    with worker(where, compat_url, "-A", "proj", "worker", "-Q", "feeds,celery", "-l", "INFO") as w:
        out = produce(where, compat_url, _QUEUES)
        assert out.strip() == "5|imported http://cnn.com/rss|celery|feeds", w.log()


def test_a_db_sqlite_result_backend_keeps_results_in_that_file(
    compat_url: str, tmp_path: Path
) -> None:
    """`result_backend = "db+sqlite:///results.sqlite"` (Celery's SQLAlchemy form)."""
    where = project("settings_routing")
    results = tmp_path / "results.sqlite"
    extra = {"COMPAT_RESULT_BACKEND": f"db+sqlite:///{results}"}
    with worker(
        where, compat_url, "-A", "proj", "worker", "-Q", "feeds,celery", "-l", "INFO", **extra
    ) as w:
        out = produce(
            where, compat_url, _QUEUES, COMPAT_RESULT_BACKEND=extra["COMPAT_RESULT_BACKEND"]
        )
        assert out.strip().startswith("5|imported"), w.log()
    assert results.stat().st_size > 0


def test_a_celery_3_settings_module_with_its_default_queue(compat_url: str) -> None:
    """Uppercase Celery 3 names (BROKER_HEARTBEAT, CELERY_DEFAULT_EXCHANGE,
    CELERY_CREATE_MISSING_QUEUES, CELERY_EVENT_QUEUE_EXPIRES, …) are read; the worker consumes
    CELERY_DEFAULT_QUEUE when started without -Q."""
    where = project("settings_legacy")
    code = "from proj.tasks import add; r = add.delay(4, 4); print(r.get(timeout=60), r.queue)"
    with worker(where, compat_url, "-A", "proj", "worker", "-l", "INFO") as w:
        assert produce(where, compat_url, code).split() == ["8", "default"], w.log()


def test_manual_routing_with_a_topic_exchange(compat_url: str) -> None:
    """Routing guide, "Manual routing": a topic default exchange; a route giving only an
    exchange and a routing key lands in the queue bound by a matching pattern (`feed.#`)."""
    where = project("settings_manual_routing")
    code = """
from proj.tasks import add, import_feed, refresh_feed
calls = [add.delay(1, 1), import_feed.delay("a"), refresh_feed.delay("b")]
print(*[f"{c.get(timeout=60)}@{c.queue}" for c in calls], sep="|")
"""
    with worker(
        where, compat_url, "-A", "proj", "worker", "-Q", "default,feed_tasks", "-l", "INFO"
    ) as w:
        out = produce(where, compat_url, code)
        assert out.strip() == "2@default|imported a@feed_tasks|refreshed b@feed_tasks", w.log()


def test_rabbitmq_style_priorities_run_highest_first(compat_url: str, tmp_path: Path) -> None:
    """ "RabbitMQ Message Priorities": x-max-priority 10, task_default_priority 5. Calls
    waiting together run highest priority first (10, then the default 5, then 1)."""
    where = project("settings_priority")
    run_log = tmp_path / "runs.txt"
    extra = {"COMPAT_RUN_LOG": str(run_log)}
    send = """
from proj.tasks import record
ids = [
    record.apply_async(("low",), priority=1).id,
    record.delay("default").id,
    record.apply_async(("high",), priority=10).id,
]
print(" ".join(ids))
"""
    ids = produce(where, compat_url, send, COMPAT_RUN_LOG=str(run_log)).split()
    wait = "; ".join(
        ["from proj.celery import app", *[f"app.AsyncResult({i!r}).get(timeout=60)" for i in ids]]
    )
    with worker(where, compat_url, "-A", "proj", "worker", "-c", "1", "-l", "INFO", **extra) as w:
        produce(where, compat_url, wait, COMPAT_RUN_LOG=str(run_log))
        wait_until(run_log.exists, 10, "the run log", w)
        assert run_log.read_text().split() == ["high", "default", "low"], w.log()


def test_a_worker_without_q_consumes_every_queue_of_task_queues(compat_url: str) -> None:
    """Celery's worker consumes every queue `task_queues` declares when no -Q is given."""
    where = project("settings_manual_routing")
    code = """
from proj.tasks import add, import_feed
calls = [add.delay(2, 2), import_feed.delay("c")]
print(*[f"{c.get(timeout=60)}@{c.queue}" for c in calls], sep="|")
"""
    with worker(where, compat_url, "-A", "proj", "worker", "-l", "INFO") as w:
        assert produce(where, compat_url, code).strip() == "4@default|imported c@feed_tasks", (
            w.log()
        )
