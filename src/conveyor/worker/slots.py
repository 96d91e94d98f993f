"""A slot group: one pool consuming its own queues, inside a worker process.

Each group reserves only for its own free slots (times the prefetch multiplier), from its own
queues, in its own order (see slotspec.py), and in production runs its reserve → run → settle
loop on a thread of its own, so a group whose slots are all busy with 5-minute tasks never
delays another group's reservations: a slow queue can never occupy the slots of another.

What groups share lives in `WorkerParts`: the broker, the lease keeper (one batched renewal for
every lease of the process), the settler, the task policies and the per-worker rate limiter.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..app import Conveyor
from ..brokers.base import Delivery, Lease, Requeue
from ..errors import ConfigurationError, DecodeError, MessageRejected, WorkerLostError
from ..message import NO_LINKS, Links, admit_message, identify
from ..ratelimit import LocalThrottle
from ..request import Request
from ..results.base import ErrorInfo, Outcome, storable_text, storable_traceback
from ..states import TaskState
from ..task import Task
from . import hooks
from .emitter import WorkerEvents
from .executor import RunKind, error_info
from .heralds import request_of
from .jobs import Completion, Job
from .leases import LeaseKeeper
from .policy import TaskPolicy, policy_for
from .pools import Pool, SoloPool, ThreadPool
from .settle import Inflight, Settler
from .slotspec import QueueOrder, Rotation, SlotSpec

log = logging.getLogger("conveyor.worker")
_keys = itertools.count(1)  # job keys, unique across the groups of a process

#: What to do about a call the pool refused (the process pool pickles each call for its child).
_REFUSAL_HINT = (
    "pass plain, flatter arguments (what pickle cannot take, or nests hundreds of levels deep, "
    "cannot reach a process-pool child), or run this task on a threads pool (-P threads)"
)


@dataclass
class WorkerParts:
    """What every slot group of one worker shares. The broker, keeper, settler and throttle
    are thread-safe; `policies` is only ever filled with equal values, so racing writers agree."""

    app: Conveyor
    name: str
    keeper: LeaseKeeper
    settler: Settler
    lease_for: float
    prefetch_multiplier: int
    stopping: threading.Event
    events: WorkerEvents
    policies: dict[str, TaskPolicy] = field(default_factory=dict)
    local_limits: LocalThrottle = field(default_factory=LocalThrottle)

    def policy(self, task: Task) -> TaskPolicy:
        policy = self.policies.get(task.name)
        if policy is None:
            policy = self.policies[task.name] = policy_for(task, self.app.conf.settings)
        return policy


@dataclass(frozen=True, slots=True)
class RecycleLimits:
    """When a process-pool child is replaced: after `tasks` tasks, or once its peak memory
    passes `memory_kib` (checked after each task)."""

    tasks: int | None = None
    memory_kib: int | None = None


def make_pool(app: Conveyor, spec: SlotSpec, app_path: str | None, recycle: RecycleLimits) -> Pool:
    if spec.pool == "solo":
        return SoloPool(lambda name: app.tasks[name])
    if spec.pool == "threads":
        return ThreadPool(lambda name: app.tasks[name], spec.concurrency)
    if spec.pool == "process":
        from .process_pool import ProcessPool

        if not app_path:
            raise ConfigurationError(
                "the process pool needs the app's import path (-A module) so its children can "
                "import it; use the threads or solo pool for an app built in a script"
            )
        return ProcessPool(app_path, spec.concurrency, recycle.tasks, recycle.memory_kib)
    raise ConfigurationError(f"unknown pool {spec.pool!r}: use process, threads or solo")


class SlotGroup:
    """One pool and the deliveries it holds: reserved-but-waiting (`backlog`) and running."""

    def __init__(self, spec: SlotSpec, pool: Pool, parts: WorkerParts) -> None:
        self.spec = spec
        self.pool = pool
        self.parts = parts
        self.rotation = Rotation(spec)
        self.backlog: deque[Inflight] = deque()
        self.running: dict[int, Inflight] = {}
        self._terminating: set[int] = set()
        self.processed = 0
        # Runs settled, by what they came to. Every key is there from the start, so the
        # heartbeat's thread can read it while this group's thread counts (never resized).
        self.counts: Counter[RunKind] = Counter(dict.fromkeys(RunKind, 0))

    def __repr__(self) -> str:
        return f"<SlotGroup {self.spec.describe()}>"

    def holds(self, lease: Lease) -> bool:
        """True when this group holds that very grant (message id and fencing token): after a
        pause, the same message may be held again under a newer token, here or in another
        group, and a verdict on one grant never applies to the other."""
        return any(_same(i.lease, lease) for i in (*self.backlog, *self.running.values()))

    @property
    def idle(self) -> bool:
        return not self.running and not self.backlog

    # -- reserving --------------------------------------------------------------------------
    def room(self) -> int:
        return self.pool.free_slots() * self.parts.prefetch_multiplier - len(self.backlog)

    def reserve(self, wait: float) -> int:
        """Reserve for the free slots (blocking at most `wait` for the first); returns how many
        deliveries came."""
        room = self.room()
        if room <= 0 or self.parts.stopping.is_set():
            return 0
        if not self.parts.settler.writer.wait_for_room(wait):
            return 0  # what ran is not written yet: running more would only run it twice
        if self.backlog:
            # With a prefetch multiplier, refill in batches once half the prefetch is gone (one
            # round trip per batch, not per task), and never wait while work is at hand.
            if room < self.pool.free_slots() * self.parts.prefetch_multiplier // 2:
                return 0
            wait = 0.0
        broker, lease_for = self.parts.app.broker, self.parts.lease_for
        if self.spec.order is QueueOrder.STRICT:
            deliveries = broker.reserve(self.spec.queues, room, lease_for, wait)
        else:  # one at a time, each starting at the next queue of the rotation
            deliveries = []
            for n in range(room):
                got = broker.reserve(self.rotation.next(), 1, lease_for, wait if n == 0 else 0.0)
                if not got:
                    break
                deliveries += got
        self._admit(deliveries)
        return len(deliveries)

    def _admit(self, deliveries: Sequence[Delivery]) -> None:
        """Decode and vet new deliveries; what can run goes to the backlog. Each delivery is
        read on its own: one that cannot be (whatever the error) is dead-lettered with its
        reason, and its neighbours go on."""
        ended: list[tuple[Inflight, Outcome]] = []
        for delivery in deliveries:
            verdict: Outcome | None = None
            try:
                item, refusal = self._read(delivery)
                verdict = None if item is None else self._vet(item)
            except Exception as exc:  # whatever it is, it ends this one message only
                item, refusal = None, f"unreadable message: {type(exc).__name__}: {exc}"
            if item is None:
                self._reject(delivery, refusal or "unreadable message")
            elif verdict is not None:
                self.parts.events.received(item)
                self.parts.events.ended(item, verdict)
                ended.append((item, verdict))
            elif not self._throttled(item):
                self.parts.keeper.hold(delivery.lease, item)
                self.backlog.append(item)
                self.parts.events.received(item)
        if ended:
            self.parts.settler.finish([i for i, _ in ended], [o for _, o in ended])

    def _reject(self, delivery: Delivery, reason: str) -> None:
        """Dead-letter a delivery that cannot run here, storing FAILURE (`MessageRejected`,
        naming `reason`) under its envelope's id, the call's identity, so that its caller does
        not wait on PENDING for ever. When the body says it is that call's (its id is the
        envelope's), its task is recorded and the rest of its workflow fails too; a body
        carrying another id is not trusted with anything."""
        try:
            outcome, links, name = self._rejection(delivery, reason)
        except Exception as exc:  # whatever is stored, the dead letter still goes ahead
            log.error(
                "no outcome can be recorded for message %s\n%s",
                delivery.envelope.id,
                storable_traceback(exc),
            )
            outcome, links, name = None, NO_LINKS, None
        self.parts.settler.reject(delivery, reason, outcome, links, name or "a message")
        self.parts.events.rejected(delivery, name or "", reason)

    def _rejection(
        self, delivery: Delivery, reason: str
    ) -> tuple[Outcome | None, Links, str | None]:
        """The outcome to store, the workflow links and the task name (None: the body does
        not say, or says it is another call's) of a delivery dead-lettered for `reason`."""
        envelope = delivery.envelope
        found = identify(envelope.body)
        own = found if found is not None and found.id == envelope.id else None
        if own is None:
            name, links, task = None, NO_LINKS, None
        else:
            name, links, task = own.task, own.links, self.parts.app.tasks.get(own.task)
        if task is not None and self.parts.policy(task).ignore_result:
            return None, links, name
        error = ErrorInfo(MessageRejected.__name__, reason, module=MessageRejected.__module__)
        outcome = Outcome(
            task_id=envelope.id,
            state=TaskState.FAILURE,
            error=error,
            task_name=name,
            queue=envelope.queue,
            worker=self.parts.name,
            attempt=delivery.attempt,
            finished_at=self.parts.app.clock.now(),
            reason=reason,
            token=delivery.lease.token,
        )
        return outcome, links, name

    def _read(self, delivery: Delivery) -> tuple[Inflight | None, str | None]:
        """The delivery's message and policy, or None and why it cannot run here."""
        envelope = delivery.envelope
        if delivery.defect is not None:
            return None, delivery.defect
        try:
            message = admit_message(
                envelope.body, self.parts.app.conf.settings.task_message_max_size
            )
        except DecodeError as exc:
            return None, str(exc)
        if message.id != envelope.id:
            return None, (
                f"message body carries id {message.id!r}, not its envelope's {envelope.id!r}; "
                "the envelope id is the call's identity (this body would write its outcome over "
                "another call's)"
            )
        task = self.parts.app.tasks.get(message.task)
        if task is None:
            return None, f"task {message.task!r} is not registered in worker {self.parts.name}"
        policy = self.parts.policy(task)
        if message.ignore_result is not None and message.ignore_result != policy.ignore_result:
            policy = dataclasses.replace(policy, ignore_result=message.ignore_result)
        return Inflight(delivery, message, policy), None

    def _vet(self, item: Inflight) -> Outcome | None:
        """The outcome to end a delivery with instead of running it, if any."""
        m, name = item.message, self.parts.name
        if item.lease.revoked:
            log.info("task %s[%s] was revoked; not started", m.task, m.id)
            return item.outcome(TaskState.REVOKED, name, reason="revoked")
        if m.expires is not None and m.expires <= self.parts.app.clock.now():
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
            wait = self.parts.app.broker.throttle(f"task:{message.task}", policy.rate_interval)
        elif policy.local_interval is not None:
            now = self.parts.app.clock.now()
            wait = self.parts.local_limits.take(message.task, policy.local_interval, now)
        else:
            return False
        if wait <= 0:
            return False
        self.parts.settler.give_back(item, Requeue.UNSTARTED, "rate limited", delay=wait)
        return True

    # -- running ----------------------------------------------------------------------------
    def dispatch(self) -> None:
        free = self.pool.free_slots()
        batch = [self.backlog.popleft() for _ in range(min(free, len(self.backlog)))]
        batch = self._begin_at_most_once(batch)
        if not batch:
            return
        started = [i for i in batch if i.policy.track_started and not i.policy.ignore_result]
        if started:
            self.parts.settler.store(
                [item.outcome(TaskState.STARTED, self.parts.name) for item in started]
            )
        for item in batch:
            self._submit(item)

    def _submit(self, item: Inflight) -> None:
        """Hand one call to the pool. One the pool cannot take (it cannot be pickled for a
        child, whatever the error) ends as FAILURE and a dead letter with the reason; the
        pool's slot stays free for the next."""
        key = next(_keys)
        self.running[key] = item
        try:
            hard, soft = item.policy.limits(item.message)
            self.pool.submit(Job(key, item.message, self._request(item), hard, soft))
        except Exception as exc:  # whatever it is, it ends this one call only
            del self.running[key]
            self._refuse(item, exc)
        else:
            self.parts.events.started(item, lambda: self.pool.pid_of(key))

    def _refuse(self, item: Inflight, exc: Exception) -> None:
        """A call the pool cannot take ends FAILURE with the pool's error and is dead-lettered;
        the rest of its workflow fails as after a failure for good."""
        m = item.message
        reason = storable_text(
            f"could not be handed to the {self.spec.pool} pool: {type(exc).__name__}: {exc}; "
            + _REFUSAL_HINT
        )
        log.error("task %s[%s] %s", m.task, m.id, reason)
        if not self.parts.keeper.drop(item.lease):
            return  # lost meanwhile: its new holder settles it
        error, outcome = error_info(exc), None
        if not item.policy.ignore_result:
            outcome = item.outcome(
                TaskState.FAILURE, self.parts.name, reason="refused by the pool", error=error
            )
        self.parts.settler.reject(item.delivery, reason, outcome, m.links, m.task, error)
        self.parts.events.rejected(item.delivery, m.task, reason)

    def _begin_at_most_once(self, batch: list[Inflight]) -> list[Inflight]:
        """Mark at-most-once calls as started in the broker before they run; one whose lease
        was lost meanwhile is not run here."""
        once = [item for item in batch if item.policy.at_most_once]
        if not once:
            return batch
        begun = self.parts.app.broker.begin([i.lease for i in once])
        refused = [item for item, ok in zip(once, begun, strict=True) if not ok]
        for item in refused:
            if self.parts.keeper.drop(item.lease):  # else the keeper found it lost and said so
                self.parts.events.lease_lost(item)
            log.warning("at-most-once call %s not started: its lease was lost", item.message.id)
        return [item for item in batch if item not in refused]

    def _request(self, item: Inflight) -> Request:
        return request_of(item, self.parts.name)

    # -- settling ---------------------------------------------------------------------------
    def settle(self, completions: Sequence[Completion]) -> int:
        finished = []
        keeper = self.parts.keeper
        for done in completions:
            item = self.running.pop(done.key)
            terminated = done.key in self._terminating
            self._terminating.discard(done.key)
            if done.lost is not None or done.result is None:
                if keeper.drop(item.lease):
                    self._cut_off(item, done.lost or "no result", terminated)
                continue
            if not keeper.drop(item.lease):
                log.warning(
                    "task %s[%s] finished after its lease was lost; outcome not recorded",
                    item.message.task,
                    item.message.id,
                )
                continue
            if done.result.killed and done.result.error is not None:
                task = self.parts.app.tasks.get(item.message.task)
                if task is not None:  # its child was killed before any hook could run
                    hooks.killed_at_limit(task, item.message, done.result.error.message)
            finished.append((item, done.result))
            self.parts.events.ran(item, done.result)
            self.counts[done.result.kind] += 1
        if finished:
            self.parts.settler.settle(finished)
            self.processed += len(finished)
        return len(completions)

    def _cut_off(self, item: Inflight, reason: str, terminated: bool) -> None:
        """A run ended without a result (its process died, or it was terminated)."""
        m, name, settler = item.message, self.parts.name, self.parts.settler
        if terminated:
            log.warning("task %s[%s] terminated by revoke", m.task, m.id)
            outcome = item.outcome(TaskState.REVOKED, name, reason="terminated")
            settler.finish([item], [outcome])
            self.parts.events.ended(item, outcome, self.pool.terminate_signal)
        elif not item.policy.requeue_lost:
            log.error("task %s[%s] lost: %s; recorded as WorkerLostError", m.task, m.id, reason)
            error = error_info(WorkerLostError(reason))
            outcome = item.outcome(TaskState.FAILURE, name, reason="worker lost", error=error)
            settler.finish([item], [outcome])
            self.parts.events.ended(item, outcome)
        else:
            log.error(
                "task %s[%s] lost at attempt %d: %s; redelivering it",
                m.task,
                m.id,
                item.delivery.attempt,
                reason,
            )
            settler.give_back(item, Requeue.LOST, reason)

    # -- revocation -------------------------------------------------------------------------
    def apply_revocations(self) -> None:
        """Act on leases of this group the keeper found revoked: drop waiting calls, kill
        terminated runs."""
        for lease in self.parts.keeper.take_revoked(self.holds):
            self._apply_revocation(lease)

    def _apply_revocation(self, lease: Lease) -> None:
        waiting = next((i for i in self.backlog if _same(i.lease, lease)), None)
        if waiting is not None:
            self.backlog.remove(waiting)
            self.parts.keeper.drop(waiting.lease)
            outcome = waiting.outcome(TaskState.REVOKED, self.parts.name, reason="revoked")
            self.parts.settler.finish([waiting], [outcome])
            self.parts.events.ended(waiting, outcome)
            return
        key = next((k for k, i in self.running.items() if _same(i.lease, lease)), None)
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
                self.spec.pool,
            )

    # -- driving ----------------------------------------------------------------------------
    def step(self) -> int:
        """One synchronous iteration (see Worker.step)."""
        self.apply_revocations()
        reserved = self.reserve(0.0)
        self.dispatch()
        return reserved + self.settle(self.pool.completions(0.0))

    def loop(self) -> None:
        """The production loop of this group, until the worker stops."""
        while not self.parts.stopping.is_set():
            busy = bool(self.running)
            self.apply_revocations()
            self.settle(self.pool.completions(0.0 if self.room() > 0 else 0.05))
            self.reserve(0.01 if busy else 0.25)
            self.dispatch()

    def shutdown(self, deadline: float, crash: str | None = None) -> None:
        """Warm shutdown of this group: give back what has not started, let running tasks
        finish until `deadline` (monotonic), then give back what is still running.

        `crash` is set when this group's own loop failed: whatever it still holds may be what
        made it fail, so each delivery given back counts as a lost run (Requeue.LOST, toward
        `max_deliveries`): a message that crashes the worker every time ends dead-lettered
        instead of crash-looping it for ever. An ordinary stop counts nothing."""
        if crash is None:
            waiting = ("worker shutting down before the task started", Requeue.UNSTARTED)
            cut_off = ("worker shut down before the task finished", Requeue.RETRY)
        else:
            waiting = cut_off = (f"worker crashed: {crash}", Requeue.LOST)
        self._release_all(list(self.backlog), *waiting)
        self.backlog.clear()
        while self.running and time.monotonic() < deadline:
            self.settle(self.pool.completions(min(0.1, deadline - time.monotonic())))
        unfinished = self.pool.stop(max(0.0, deadline - time.monotonic()))
        self.settle(self.pool.completions(0.0))
        cut = [self.running.pop(k) for k in unfinished if k in self.running]
        self._release_all(cut, *cut_off)

    def _release_all(self, items: Sequence[Inflight], reason: str, requeue: Requeue) -> None:
        for item in items:
            if self.parts.keeper.drop(item.lease):
                self.parts.settler.give_back(item, requeue, reason)


def _same(held: Lease, other: Lease) -> bool:
    """The same grant of the same message (a renewed lease keeps its token)."""
    return held.message_id == other.message_id and held.token == other.token
