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
from ..brokers.base import Delivery, Lease, Requeue, WorkerInfo
from ..errors import ConfigurationError, DecodeError, WorkerLostError
from ..message import decode_message
from ..ratelimit import LocalThrottle
from ..request import Request, request_for
from ..results.base import Outcome
from ..states import TaskState
from ..task import Task
from .executor import error_info
from .jobs import Completion, Job
from .leases import LeaseKeeper
from .policy import TaskPolicy, policy_for
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
    max_memory_per_child: int | None = None
    app_path: str | None = None
    lease_for: float = 30.0
    shutdown_timeout: float = 30.0

    def __post_init__(self) -> None:
        if not self.queues:
            raise ConfigurationError("a worker needs at least one queue")
        if self.concurrency < 1:
            raise ConfigurationError("concurrency must be at least 1")
        for flag, value in (
            ("--max-tasks-per-child", self.max_tasks_per_child),
            ("--max-memory-per-child", self.max_memory_per_child),
        ):
            if value is not None and self.pool != "process":
                raise ConfigurationError(
                    f"{flag} recycles process-pool children; it has no meaning for the "
                    f"{self.pool} pool (use -P process, or drop the option)"
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
        return ProcessPool(
            opts.app_path, opts.concurrency, opts.max_tasks_per_child, opts.max_memory_per_child
        )
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
        self._policies: dict[str, TaskPolicy] = {}
        self._local_limits = LocalThrottle()
        self._terminating: set[int] = set()
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
            retention = self.settings.dead_letter_retention
            if retention is not None and (dead := self.broker.purge_dead(None, retention)):
                log.info("purged %d dead letters older than %.0fs", dead, retention)

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

    def _policy(self, task: Task) -> TaskPolicy:
        policy = self._policies.get(task.name)
        if policy is None:
            policy = self._policies[task.name] = policy_for(task, self.settings)
        return policy

    def _admit(self, deliveries: Sequence[Delivery]) -> None:
        """Decode and vet new deliveries; what can run goes to the backlog."""
        ended: list[tuple[Inflight, Outcome]] = []
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
            item = Inflight(delivery, message, self._policy(task))
            verdict = self._vet(item)
            if verdict is not None:
                ended.append((item, verdict))
            elif not self._throttled(item):
                self.keeper.hold(delivery.lease)
                self._backlog.append(item)
        if ended:
            self.settler.finish([i for i, _ in ended], [o for _, o in ended])

    def _vet(self, item: Inflight) -> Outcome | None:
        """The outcome to end a delivery with instead of running it, if any."""
        m, name = item.message, self.options.name
        if item.lease.revoked:
            log.info("task %s[%s] was revoked; not started", m.task, m.id)
            return item.outcome(TaskState.REVOKED, name, reason="revoked")
        if m.expires is not None and m.expires <= self.app.clock.now():
            log.info("task %s[%s] expired before it started; revoked", m.task, m.id)
            return item.outcome(TaskState.REVOKED, name, reason="expired")
        if item.delivery.begun and item.policy.at_most_once:
            why = "an earlier run of this at-most-once call was cut off; it is not run again"
            log.error("task %s[%s]: %s", m.task, m.id, why)
            error = error_info(WorkerLostError(why))
            return item.outcome(TaskState.FAILURE, name, reason="worker lost", error=error)
        return None

    def _throttled(self, item: Inflight) -> bool:
        """Take a rate-limit slot; if it is not now, give the message back until then (it waits
        in the broker, not in this worker). True when it was given back."""
        policy, message = item.policy, item.message
        if message.throttled:
            return False  # it took its slot before it was given back
        if policy.rate_interval is not None:
            wait = self.broker.throttle(f"task:{message.task}", policy.rate_interval)
        elif policy.local_interval is not None:
            now = self.app.clock.now()
            wait = self._local_limits.take(message.task, policy.local_interval, now)
        else:
            return False
        if wait <= 0:
            return False
        self.settler.give_back(item, Requeue.UNSTARTED, "rate limited", delay=wait)
        return True

    def _dispatch(self) -> None:
        free = self.pool.free_slots()
        batch = [self._backlog.popleft() for _ in range(min(free, len(self._backlog)))]
        batch = self._begin_at_most_once(batch)
        if not batch:
            return
        if self.settings.task_track_started:
            self.app.results.put(
                [
                    item.outcome(TaskState.STARTED, self.options.name)
                    for item in batch
                    if not item.policy.ignore_result
                ]
            )
        for item in batch:
            key = next(self._keys)
            self._running[key] = item
            hard, soft = item.policy.limits(item.message)
            self.pool.submit(Job(key, item.message, self._request(item), hard, soft))

    def _begin_at_most_once(self, batch: list[Inflight]) -> list[Inflight]:
        """Mark at-most-once calls as started in the broker before they run; one whose lease
        was lost meanwhile is not run here."""
        once = [item for item in batch if item.policy.at_most_once]
        if not once:
            return batch
        refused = {
            item.message.id
            for item, ok in zip(once, self.broker.begin([i.lease for i in once]), strict=True)
            if not ok
        }
        for mid in refused:
            self.keeper.drop(mid)
            log.warning("at-most-once call %s not started: its lease was lost", mid)
        return [item for item in batch if item.message.id not in refused]

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
            terminated = done.key in self._terminating
            self._terminating.discard(done.key)
            if done.lost is not None or done.result is None:
                if self.keeper.drop(item.message.id):
                    self._cut_off(item, done.lost or "no result", terminated)
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

    def _cut_off(self, item: Inflight, reason: str, terminated: bool) -> None:
        """A run ended without a result (its process died, or it was terminated)."""
        m, name = item.message, self.options.name
        if terminated:
            log.warning("task %s[%s] terminated by revoke", m.task, m.id)
            outcome = item.outcome(TaskState.REVOKED, name, reason="terminated")
            self.settler.finish([item], [outcome])
        elif not item.policy.requeue_lost:
            log.error("task %s[%s] lost: %s; recorded as WorkerLostError", m.task, m.id, reason)
            error = error_info(WorkerLostError(reason))
            outcome = item.outcome(TaskState.FAILURE, name, reason="worker lost", error=error)
            self.settler.finish([item], [outcome])
        else:
            log.error(
                "task %s[%s] lost at attempt %d: %s; redelivering it",
                m.task,
                m.id,
                item.delivery.attempt,
                reason,
            )
            self.settler.give_back(item, Requeue.LOST, reason)

    def _apply_revocations(self) -> None:
        """Act on leases the keeper found revoked: drop waiting calls, kill terminated runs."""
        for lease in self.keeper.take_revoked():
            self._apply_revocation(lease)

    def _apply_revocation(self, lease: Lease) -> None:
        waiting = next((i for i in self._backlog if i.message.id == lease.message_id), None)
        if waiting is not None:
            self._backlog.remove(waiting)
            self.keeper.drop(lease.message_id)
            outcome = waiting.outcome(TaskState.REVOKED, self.options.name, reason="revoked")
            self.settler.finish([waiting], [outcome])
            return
        key = next((k for k, i in self._running.items() if i.message.id == lease.message_id), None)
        if key is None:
            return
        if not lease.terminate:
            log.info("task %s revoked while running; it runs to the end", lease.message_id)
        elif self.pool.terminate(key):
            self._terminating.add(key)
        else:
            log.warning(
                "task %s revoked with terminate, but the %s pool cannot cut it off; it runs to "
                "the end",
                lease.message_id,
                self.options.pool,
            )

    def step(self) -> int:
        """One synchronous iteration: reserve what fits, run it, settle what finished.
        Returns how many deliveries were reserved or settled (0 when idle)."""
        self._apply_revocations()
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
                self._apply_revocations()
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
        self._release_all(
            list(self._backlog), "worker shutting down before the task started", Requeue.UNSTARTED
        )
        self._backlog.clear()
        deadline = time.monotonic() + grace
        while self._running and time.monotonic() < deadline:
            self._settle(self.pool.completions(min(0.1, deadline - time.monotonic())))
        unfinished = self.pool.stop(max(0.0, deadline - time.monotonic()))
        self._settle(self.pool.completions(0.0))
        cut = [self._running.pop(k) for k in unfinished if k in self._running]
        self._release_all(cut, "worker shut down before the task finished", Requeue.RETRY)
        self.keeper.stop()
        self.broker.register_worker(self.info(stopped=True))
        log.info("worker %s stopped", self.options.name)

    def _release_all(self, items: Sequence[Inflight], reason: str, requeue: Requeue) -> None:
        for item in items:
            if self.keeper.drop(item.message.id):
                self.settler.give_back(item, requeue, reason)

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
