"""The worker: one process, one or more slot groups, each reserve → run → settle.

Each slot group (slots.py) consumes its own queues with its own pool, reserving only as many
messages as it has free slots (times `prefetch_multiplier`), so no message waits in a busy
group while another worker is idle, and a slow group never takes another's slots. One lease
keeper renews every lease of the process in one batched call per interval, and does nothing
else: the heartbeat and the purges are services on threads of their own (services.py).

Two ways to drive it:
* `run()` — production: each group's loop on its own thread, the keeper thread, the services
  (heartbeat, purge, health file) and signal handling (first SIGTERM/SIGINT: warm shutdown;
  second: cold).
* `step()` / `run_until_idle()` — synchronous, for tests with the solo pool and a FakeClock:
  no threads, no sleeps (no services either: a test calls `heartbeat.run_once()` or
  `purge.run_once()` itself).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from .. import __version__, signals
from ..app import Conveyor
from ..brokers.base import Lease, WorkerInfo
from ..errors import BackendUnavailable, ConfigurationError
from ..events import EventType
from ..events.stream import TASK_EVENTS, WORKER_EVENTS, publish
from ..guard import Guard, guard_of
from ..observability.cluster import ClusterCollector
from ..observability.sent import SentCounter
from ..results.base import storable_text, storable_traceback
from .emitter import WorkerEvents
from .executor import RunKind
from .health import Health, HealthReporter, current
from .leases import LeaseKeeper
from .metrics import COUNTED, GroupSlots, WorkerMetrics
from .services import Heartbeat, Purge, Service
from .settle import Inflight, Settler
from .slots import RecycleLimits, SlotGroup, WorkerParts, make_pool
from .slotspec import SlotSpec, check_disjoint

log = logging.getLogger("conveyor.worker")


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """How one worker consumes. `groups` are its slot groups; without them, one group of
    `queues` × `concurrency` on `pool`. `app_path` (the `-A` value) is needed by the process
    pool, whose children import the app themselves."""

    queues: tuple[str, ...]
    name: str
    concurrency: int = 1
    pool: str = "solo"
    groups: tuple[SlotSpec, ...] = ()
    prefetch_multiplier: int = 1
    max_tasks_per_child: int | None = None
    max_memory_per_child: int | None = None
    app_path: str | None = None
    lease_for: float = 30.0
    shutdown_timeout: float = 30.0
    health_file: Path | None = None
    metrics_port: int | None = None  # serve /metrics on metrics_host:metrics_port (metrics.py)
    metrics_host: str = "127.0.0.1"
    task_events: bool = False  # also publish task-* events to the event stream (-E)
    cluster_metrics: bool = False  # also serve the cluster's metrics (observability/cluster.py)
    heartbeat_events: bool = True  # publish worker-heartbeat events (off: --without-heartbeat)

    def __post_init__(self) -> None:
        if not self.groups and not self.queues:
            raise ConfigurationError("a worker needs at least one queue")
        if self.cluster_metrics and self.metrics_port is None:
            raise ConfigurationError(
                "--cluster-metrics serves the cluster's metrics beside the worker's; give "
                "--metrics-port (or worker_metrics_port) too"
            )
        specs = self.slot_specs
        check_disjoint(specs)
        pools = {spec.pool for spec in specs}
        for flag, value in (
            ("--max-tasks-per-child", self.max_tasks_per_child),
            ("--max-memory-per-child", self.max_memory_per_child),
        ):
            if value is not None and "process" not in pools:
                raise ConfigurationError(
                    f"{flag} recycles process-pool children; it has no meaning for the "
                    f"{'/'.join(sorted(pools))} pool (use -P process, or drop the option)"
                )
        if "process" in pools and not self.app_path:
            raise ConfigurationError(
                "the process pool needs the app's import path (-A module) so its children can "
                "import it; use the threads or solo pool for an app built in a script"
            )

    @property
    def slot_specs(self) -> tuple[SlotSpec, ...]:
        return self.groups or (SlotSpec(self.queues, self.concurrency, self.pool),)

    @property
    def all_queues(self) -> tuple[str, ...]:
        return tuple(q for spec in self.slot_specs for q in spec.queues)


class Worker:
    def __init__(self, app: Conveyor, options: WorkerOptions) -> None:
        app.finalize("starting a worker")
        self.app = app
        self.options = options
        self.settings = app.conf.settings
        self.broker = app.broker
        self.events = WorkerEvents(app.events, options.name, app.clock, app.tasks, sender=self)
        self.keeper = LeaseKeeper(self.broker, options.lease_for, on_lost=self._lease_lost)
        # Heartbeats as often as renewals, as a worker's record has always been refreshed.
        self.heartbeat = Heartbeat(self.broker, self.info, self.keeper.interval, on_beat=self._beat)
        self.purge = Purge(app.results, self.broker, lambda: self.settings.dead_letter_retention)
        self.settler = Settler(
            self.broker, app.results, options.name, self.settings.task_message_max_size, app
        )
        self._stopping = threading.Event()
        parts = WorkerParts(
            app,
            options.name,
            self.keeper,
            self.settler,
            options.lease_for,
            options.prefetch_multiplier,
            self._stopping,
            self.events,
        )
        recycle = RecycleLimits(options.max_tasks_per_child, options.max_memory_per_child)
        self.groups = [
            SlotGroup(spec, make_pool(app, spec, options.app_path, recycle), parts)
            for spec in options.slot_specs
        ]
        self._started_at = app.clock.now()
        self._failure: BaseException | None = None

    @property
    def processed(self) -> int:
        """Deliveries settled by this worker since it started."""
        return sum(g.processed for g in self.groups)

    @property
    def slots(self) -> int:
        """Slots of every group."""
        return sum(spec.concurrency for spec in self.options.slot_specs)

    # -- events -----------------------------------------------------------------------------
    def _lease_lost(self, lease: Lease, item: Inflight | None) -> None:
        if item is not None:
            self.events.lease_lost(item)

    def _beat(self) -> None:
        if self.options.heartbeat_events:  # as Celery: no heartbeat_sent without heartbeats
            signals.heartbeat_sent.send(sender=self)  # a receiver's error is logged, not raised
        if not self.events.bus.wanted(EventType.WORKER_HEARTBEAT):
            return
        counts: Counter[RunKind] = Counter()
        for group in self.groups:
            counts.update(group.counts)
        active = sum(len(group.running) for group in self.groups)
        self.events.heartbeat(self.heartbeat.interval, self.slots, active, counts)

    # -- identity ---------------------------------------------------------------------------
    def info(self, stopped: bool = False) -> WorkerInfo:
        now = self.app.clock.now()
        specs = self.options.slot_specs
        return WorkerInfo(
            name=self.options.name,
            queues=self.options.all_queues,
            task_names=tuple(sorted(self.app.tasks)),
            pid=os.getpid(),
            started_at=self._started_at,
            heartbeat_at=now,
            stopped_at=now if stopped else None,
            extra={
                "pool": specs[0].pool,
                "concurrency": str(sum(s.concurrency for s in specs)),
                "groups": " ".join(s.describe() for s in specs),
            },
        )

    @property
    def guards(self) -> list[Guard]:
        """The guards of the stores this worker needs (servers, or SQLite's disk)."""
        found = (guard_of(self.broker), guard_of(self.app.results))
        return [g for g in found if g is not None]

    def health(self) -> Health:
        """Consuming, or not and why (see health.py)."""
        return current(self.options.name, self.guards, self.stopping)

    # -- synchronous driving ----------------------------------------------------------------
    def step(self) -> int:
        """One synchronous iteration of every group: reserve what fits, run it, settle what
        finished. Returns how many deliveries were reserved or settled (0 when idle)."""
        return sum(group.step() for group in self.groups)

    def run_until_idle(self, max_steps: int = 100_000) -> int:
        """Step until nothing is due and nothing is running. Returns deliveries settled."""
        before = self.processed
        for _ in range(max_steps):
            if self.step() == 0 and all(g.idle for g in self.groups):
                break
        return self.processed - before

    # -- the production loop ----------------------------------------------------------------
    def start(self) -> None:
        """Start the pools, the keeper and the services; publish this worker and its task
        names (the heartbeat's first beat)."""
        for group in self.groups:
            group.pool.start()
        self.heartbeat.start()
        # Online as soon as the record is published: before the heartbeat's first periodic
        # beat (an interval away), so worker-online is always this worker's first event.
        self.events.online(self.options.all_queues, self.slots)
        self.keeper.start()
        self.purge.start()
        log.info(
            "worker %s ready: slot groups %s",
            self.options.name,
            " ".join(g.spec.describe() for g in self.groups),
        )

    def run(self) -> None:
        """Consume until `stop()` (or a signal), then shut down warmly. Each group runs its
        loop and its shutdown on its own thread; a group that fails stops the worker, and its
        error is raised here after the others have shut down."""
        from .signals import install_shutdown_signals

        install_shutdown_signals(self)
        with contextlib.ExitStack() as stack:
            for guard in self.guards:  # wait out server outages instead of failing
                stack.enter_context(guard.patient(self._stopping))
            if self.options.health_file is not None:
                reporter = HealthReporter(self.options.health_file, self.health)
                reporter.start()
                stack.callback(reporter.stop)
            if self.options.metrics_port is not None:
                stack.callback(self._serve_metrics(self.options.metrics_port))
            stack.callback(self._publish_events())
            self._consume()
        if self._failure is not None:
            raise self._failure

    def _serve_metrics(self, port: int) -> Callable[[], None]:
        """Count this worker's task events and serve them; returns what stops both."""
        metrics = WorkerMetrics(
            __version__,
            self._group_slots,
            worker_name=self.options.name,
            tasks=sorted(self.app.tasks),  # every task is the user's: conveyor registers none
            queues=self.options.all_queues,
            celery_names=self.settings.metrics_celery_names,
        )
        cluster = self._cluster_metrics(metrics)
        subscription = self.app.events.subscribe_batches(metrics.observe_batch, types=COUNTED)
        try:
            metrics.serve(self.options.metrics_host, port)
        except BaseException:
            subscription.close(0.0)
            raise

        def stop() -> None:
            subscription.close()  # count what is buffered before the server goes
            metrics.stop()
            if cluster is not None:
                cluster()

        return stop

    def _publish_events(self) -> Callable[[], object]:
        """Publish this worker's events to the broker's event stream (`conveyor events`): the
        worker events always, task events with task_events; returns what flushes and stops."""
        types = WORKER_EVENTS | (TASK_EVENTS if self.options.task_events else frozenset())
        if not self.options.heartbeat_events:  # the registry record is refreshed all the same
            types -= {EventType.WORKER_HEARTBEAT}
        publisher = publish(self.app.events, self.broker, types)
        return publisher.close

    def _cluster_metrics(self, metrics: WorkerMetrics) -> Callable[[], None] | None:
        """With --cluster-metrics: the cluster's series, in the worker's registry; returns
        what closes their stores."""
        if not self.options.cluster_metrics:
            return None
        celery_names = self.settings.metrics_celery_names
        collector = ClusterCollector(self.app, celery_names)
        metrics.registry.register(collector)
        sent = SentCounter(self.app, metrics.registry, celery_names=celery_names).start()

        def close() -> None:
            sent.close()
            collector.close()

        return close

    def _group_slots(self) -> list[GroupSlots]:
        return [
            GroupSlots(g.spec.describe(), g.spec.concurrency, len(g.running)) for g in self.groups
        ]

    def _consume(self) -> None:
        self.start()
        self.settler.writer.start()
        threads = [
            threading.Thread(target=self._run_group, args=(g,), name=f"conveyor-slots-{i}")
            for i, g in enumerate(self.groups)
        ]
        for thread in threads:
            thread.start()
        signals.worker_ready.send(sender=self)  # consuming: every group's loop has started
        for thread in threads:
            thread.join()  # interruptible: signal handlers still run on this thread
        self.settler.writer.stop()  # everything settled is written before we say stopped
        self.keeper.stop()
        for service in (self.purge, self.heartbeat):  # the heartbeat last: it says stopped
            _stop(service)
        self.events.offline(self.processed)
        log.info("worker %s stopped", self.options.name)

    def _run_group(self, group: SlotGroup) -> None:
        crash: str | None = None  # set when this group's loop failed (see SlotGroup.shutdown)
        try:
            group.loop()
        except BaseException as exc:
            if isinstance(exc, BackendUnavailable) and self.stopping:
                log.warning("stopping during an outage: %s", exc)
            else:
                log.error(
                    "slot group %s failed; stopping the worker\n%s",
                    group.spec.describe(),
                    storable_traceback(exc),
                )
                crash = storable_text(f"{type(exc).__name__}: {exc}"[:500])  # stored as given
                self._failure = self._failure or exc
                self._stopping.set()
        grace = self.options.shutdown_timeout
        log.info(
            "warm shutdown of %s: waiting up to %.0fs for %d running task(s)",
            group.spec.describe(),
            grace,
            len(group.running),
        )
        try:
            group.shutdown(time.monotonic() + grace, crash)
        except BackendUnavailable as exc:
            log.warning(
                "could not settle %d task(s) at shutdown (%s); their leases will expire and "
                "they will be delivered again",
                len(group.running),
                exc,
            )

    def stop(self) -> None:
        """Ask for a warm shutdown: stop reserving, finish running tasks, release the rest."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def cold_stop(self) -> None:
        """Second signal: stop at once without settling; held leases simply expire."""
        log.warning(
            "cold shutdown: %d running task(s) will be redelivered when their leases expire",
            sum(len(g.running) for g in self.groups),
        )
        for group in self.groups:
            group.pool.stop(0.0)
        os._exit(1)


def _stop(service: Service) -> None:
    if not service.stop():
        log.warning(
            "service %s is still running at shutdown; it ends with the process", service.name
        )


def default_options(app: Conveyor, **overrides: object) -> WorkerOptions:
    """WorkerOptions from the app's settings, with overrides."""
    from ..config import lease_seconds
    from ..routing import default_consumed
    from .naming import expand_node_name

    s = app.conf.settings
    base = WorkerOptions(
        queues=default_consumed(s),
        name=expand_node_name(None),
        concurrency=1,
        pool="solo",
        prefetch_multiplier=s.worker_prefetch_multiplier,
        lease_for=lease_seconds(s),
        shutdown_timeout=s.worker_shutdown_timeout,
        task_events=s.worker_send_task_events,
    )
    return replace(base, **overrides)  # type: ignore[arg-type]
