"""The worker: reserve → run → settle.

One `Worker` consumes a set of queues with one pool. It reserves only as many messages as it
has free slots (times `prefetch_multiplier`), so no message waits in a busy worker while another
is idle; a lease keeper renews every held lease in one batched call per interval.

Two ways to drive it:
* `run()` — the production loop with the keeper thread, heartbeats and signal handling
  (first SIGTERM/SIGINT: warm shutdown; second: cold).
* `step()` / `run_until_idle()` — synchronous, for tests with the solo pool and a FakeClock:
  no threads, no sleeps.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace

from ..app import Conveyor
from ..brokers.base import Delivery, WorkerInfo
from ..errors import ConfigurationError, DecodeError
from ..message import decode_message
from ..request import Request, request_for
from ..states import TaskState
from .jobs import Completion, Job
from .leases import LeaseKeeper
from .pools import Pool, SoloPool, ThreadPool
from .settle import Inflight, Settler

log = logging.getLogger("conveyor.worker")

_RESULT_PURGE_EVERY = 300.0


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """How one worker consumes. `app_path` (the `-A` value) is needed by the process pool,
    whose children import the app themselves."""

    queues: tuple[str, ...]
    name: str
    concurrency: int = 1
    pool: str = "solo"
    prefetch_multiplier: int = 1
    max_tasks_per_child: int | None = None
    app_path: str | None = None
    lease_for: float = 30.0
    shutdown_timeout: float = 30.0

    def __post_init__(self) -> None:
        if not self.queues:
            raise ConfigurationError("a worker needs at least one queue")
        if self.concurrency < 1:
            raise ConfigurationError("concurrency must be at least 1")
        if self.max_tasks_per_child is not None and self.pool != "process":
            raise ConfigurationError(
                "--max-tasks-per-child recycles process-pool children; it has no meaning for "
                f"the {self.pool} pool (use -P process, or drop the option)"
            )
        if self.pool == "process" and not self.app_path:
            raise ConfigurationError(
                "the process pool needs the app's import path (-A module) so its children can "
                "import it; use the threads or solo pool for an app built in a script"
            )


def make_pool(app: Conveyor, opts: WorkerOptions) -> Pool:
    if opts.pool == "solo":
        return SoloPool(lambda name: app.tasks[name])
    if opts.pool == "threads":
        return ThreadPool(lambda name: app.tasks[name], opts.concurrency)
    if opts.pool == "process":
        from .process_pool import ProcessPool

        assert opts.app_path is not None
        return ProcessPool(opts.app_path, opts.concurrency, opts.max_tasks_per_child)
    raise ConfigurationError(f"unknown pool {opts.pool!r}: use process, threads or solo")


class Worker:
    def __init__(self, app: Conveyor, options: WorkerOptions) -> None:
        self.app = app
        self.options = options
        self.settings = app.conf.settings
        self.broker = app.broker
        self.pool = make_pool(app, options)
        self.keeper = LeaseKeeper(self.broker, options.lease_for, on_tick=self._tick)
        self.settler = Settler(
            self.broker, app.results, options.name, self.settings.task_message_max_size
        )
        self._keys = itertools.count(1)
        self._running: dict[int, Inflight] = {}
        self._backlog: deque[Inflight] = deque()
        self._stopping = threading.Event()
        self._started_at = app.clock.now()
        self._next_purge = 0.0
        self.processed = 0

    # -- identity ---------------------------------------------------------------------------
    def info(self, stopped: bool = False) -> WorkerInfo:
        now = self.app.clock.now()
        return WorkerInfo(
            name=self.options.name,
            queues=self.options.queues,
            task_names=tuple(sorted(self.app.tasks)),
            pid=os.getpid(),
            started_at=self._started_at,
            heartbeat_at=now,
            stopped_at=now if stopped else None,
            extra={"pool": self.options.pool, "concurrency": str(self.options.concurrency)},
        )

    def _tick(self) -> None:
        """Keeper-thread housekeeping: heartbeat, and purge expired results now and then."""
        self.broker.register_worker(self.info())
        now = self.app.clock.now()
        if now >= self._next_purge:
            self._next_purge = now + _RESULT_PURGE_EVERY
            purged = self.app.results.purge_expired()
            if purged:
                log.info("purged %d expired results", purged)

    # -- one iteration ----------------------------------------------------------------------
    def _room(self) -> int:
        return self.pool.free_slots() * self.options.prefetch_multiplier - len(self._backlog)

    def _reserve(self, wait: float) -> int:
        room = self._room()
        if room <= 0 or self._stopping.is_set():
            return 0
        deliveries = self.broker.reserve(self.options.queues, room, self.options.lease_for, wait)
        self._admit(deliveries)
        return len(deliveries)

    def _admit(self, deliveries: Sequence[Delivery]) -> None:
        """Decode and vet new deliveries; what can run goes to the backlog."""
        expired: list[Inflight] = []
        for delivery in deliveries:
            try:
                message = decode_message(delivery.envelope.body)
            except DecodeError as exc:
                self.settler.dead_letter(delivery, str(exc))
                continue
            task = self.app.tasks.get(message.task)
            if task is None:
                self.settler.dead_letter(
                    delivery,
                    f"task {message.task!r} is not registered in worker {self.options.name}",
                )
                continue
            ignore = task.options.ignore_result
            item = Inflight(
                delivery, message, self.settings.task_ignore_result if ignore is None else ignore
            )
            if message.expires is not None and message.expires <= self.app.clock.now():
                expired.append(item)
                continue
            self.keeper.hold(delivery.lease)
            self._backlog.append(item)
        if expired:
            self._revoke_expired(expired)

    def _revoke_expired(self, items: Sequence[Inflight]) -> None:
        for item in items:
            log.info(
                "task %s[%s] expired before it started; revoked", item.message.task, item.message.id
            )
        self.app.results.put(
            [item.outcome(TaskState.REVOKED, self.options.name, reason="expired") for item in items]
        )
        self.broker.ack([item.lease for item in items])

    def _dispatch(self) -> None:
        free = self.pool.free_slots()
        batch = [self._backlog.popleft() for _ in range(min(free, len(self._backlog)))]
        if not batch:
            return
        if self.settings.task_track_started:
            self.app.results.put(
                [
                    item.outcome(TaskState.STARTED, self.options.name)
                    for item in batch
                    if not item.ignore_result
                ]
            )
        for item in batch:
            key = next(self._keys)
            self._running[key] = item
            self.pool.submit(Job(key, item.message, self._request(item)))

    def _request(self, item: Inflight) -> Request:
        d = item.delivery
        info = {
            "queue": d.envelope.queue,
            "priority": d.envelope.priority,
            "redelivered": d.attempt > 1,
        }
        return request_for(item.message, self.options.name, d.attempt, info)

    def _settle(self, completions: Sequence[Completion]) -> int:
        finished = []
        for done in completions:
            item = self._running.pop(done.key)
            if done.lost is not None or done.result is None:
                self.keeper.drop(item.message.id)
                log.error(
                    "task %s[%s] lost: %s; its lease will expire and the broker will redeliver it",
                    item.message.task,
                    item.message.id,
                    done.lost,
                )
                continue
            if not self.keeper.drop(item.message.id):
                log.warning(
                    "task %s[%s] finished after its lease was lost; outcome not recorded",
                    item.message.task,
                    item.message.id,
                )
                continue
            finished.append((item, done.result))
        if finished:
            self.settler.settle(finished)
            self.processed += len(finished)
        return len(completions)

    def step(self) -> int:
        """One synchronous iteration: reserve what fits, run it, settle what finished.
        Returns how many deliveries were reserved or settled (0 when idle)."""
        reserved = self._reserve(0.0)
        self._dispatch()
        settled = self._settle(self.pool.completions(0.0))
        return reserved + settled

    def run_until_idle(self, max_steps: int = 100_000) -> int:
        """Step until nothing is due and nothing is running. Returns deliveries settled."""
        before = self.processed
        for _ in range(max_steps):
            if self.step() == 0 and not self._running and not self._backlog:
                break
        return self.processed - before

    # -- the production loop ----------------------------------------------------------------
    def start(self) -> None:
        """Start the pool and the keeper; publish this worker and its task names."""
        self.pool.start()
        self.broker.register_worker(self.info())
        self.keeper.start()
        log.info(
            "worker %s ready: queues=%s pool=%s concurrency=%d",
            self.options.name,
            ",".join(self.options.queues),
            self.options.pool,
            self.options.concurrency,
        )

    def run(self) -> None:
        """Consume until `stop()` (or a signal), then shut down warmly."""
        from .signals import install_shutdown_signals

        install_shutdown_signals(self)
        self.start()
        try:
            while not self._stopping.is_set():
                busy = bool(self._running)
                self._settle(self.pool.completions(0.0 if self._room() > 0 else 0.05))
                self._reserve(0.01 if busy else 0.25)
                self._dispatch()
        finally:
            self._shutdown()

    def stop(self) -> None:
        """Ask for a warm shutdown: stop reserving, finish running tasks, release the rest."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def _shutdown(self) -> None:
        grace = self.options.shutdown_timeout
        log.info(
            "warm shutdown: waiting up to %.0fs for %d running task(s)", grace, len(self._running)
        )
        self._release_all(list(self._backlog), "worker shutting down before the task started")
        self._backlog.clear()
        deadline = time.monotonic() + grace
        while self._running and time.monotonic() < deadline:
            self._settle(self.pool.completions(min(0.1, deadline - time.monotonic())))
        unfinished = self.pool.stop(max(0.0, deadline - time.monotonic()))
        self._settle(self.pool.completions(0.0))
        cut = [self._running.pop(k) for k in unfinished if k in self._running]
        self._release_all(cut, "worker shut down before the task finished")
        self.keeper.stop()
        self.broker.register_worker(self.info(stopped=True))
        log.info("worker %s stopped", self.options.name)

    def _release_all(self, items: Sequence[Inflight], reason: str) -> None:
        for item in items:
            if self.keeper.drop(item.message.id):
                self.broker.release(item.lease, 0.0, error=reason)

    def cold_stop(self) -> None:
        """Second signal: stop at once without settling; held leases simply expire."""
        log.warning(
            "cold shutdown: %d running task(s) will be redelivered when their leases expire",
            len(self._running),
        )
        self.pool.stop(0.0)
        os._exit(1)


def default_options(app: Conveyor, **overrides: object) -> WorkerOptions:
    """WorkerOptions from the app's settings, with overrides."""
    from ..config import lease_seconds
    from .naming import expand_node_name

    s = app.conf.settings
    base = WorkerOptions(
        queues=(s.task_default_queue,),
        name=expand_node_name(None),
        concurrency=1,
        pool="solo",
        prefetch_multiplier=s.worker_prefetch_multiplier,
        lease_for=lease_seconds(s),
        shutdown_timeout=s.worker_shutdown_timeout,
    )
    return replace(base, **overrides)  # type: ignore[arg-type]
