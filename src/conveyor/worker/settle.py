"""Settling: turning what happened to a delivery into result-store and broker calls.

Order matters for at-least-once delivery: the outcome is stored *before* the message is
acknowledged, so a crash between the two leaves a message that is redelivered (and may run
again), never an acknowledged message with no outcome. The writes go to a `Writer`
(writer.py), which batches them: one `put` and one `ack` per batch of settled deliveries.

Every outcome is written under its delivery's fencing token, so after a lease is lost neither
the ack nor the outcome of the stale holder lands (the store refuses an older token once the
new owner has written; the broker refuses the stale ack).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec

from ..brokers.base import Broker, Delivery, Lease, Requeue
from ..canvas.flow import after_failure, after_success
from ..clock import SYSTEM_CLOCK
from ..errors import MessageRejected, OutcomeNotStored
from ..message import NO_LINKS, Links, Message, decode_value, encode_arguments, encode_message
from ..results.base import ErrorInfo, Outcome, ResultStore, storable_text
from ..states import TaskState
from .executor import RunKind, RunResult, describe
from .policy import TaskPolicy
from .writer import Plan, Writer

if TYPE_CHECKING:
    from ..app import Conveyor

log = logging.getLogger("conveyor.worker")
#: The `state` field of a settled call's log line, by how its run ended.
_STATE_NAMES = {
    RunKind.SUCCESS: "SUCCESS",
    RunKind.FAILURE: "FAILURE",
    RunKind.RETRY: "RETRY",
    RunKind.REJECT: "REJECTED",
    RunKind.IGNORE: "IGNORED",
}

_STATES = {
    RunKind.SUCCESS: TaskState.SUCCESS,
    RunKind.FAILURE: TaskState.FAILURE,
    RunKind.RETRY: TaskState.RETRY,
}


@dataclass(frozen=True, slots=True)
class Inflight:
    """A delivery this worker holds, with its decoded message and its task's policy."""

    delivery: Delivery
    message: Message
    policy: TaskPolicy

    @property
    def lease(self) -> Lease:
        return self.delivery.lease

    def outcome(
        self,
        state: TaskState,
        worker: str,
        result: RunResult | None = None,
        reason: str | None = None,
        error: ErrorInfo | None = None,
    ) -> Outcome:
        """The outcome to store for this delivery in `state`, with `result`'s details."""
        d = self.delivery
        retries = self.message.retries
        if result is not None and result.kind is RunKind.RETRY:
            retries = result.retries
        return Outcome(
            task_id=self.message.id,
            state=state,
            task_name=self.message.shown_name,  # the shadow name, when the call has one
            queue=d.envelope.queue,
            worker=worker,
            attempt=d.attempt,
            retries=retries,
            value=result.value if result else None,
            error=result.error if result else error,
            started_at=result.started_at if result else None,
            finished_at=result.finished_at if result else None,
            reason=reason,
            token=d.lease.token,
            arguments=encode_arguments(self.message) if self.policy.extended_result else None,
        )


class Settler:
    """Turns finished deliveries into plans of writes for its `Writer` (see writer.py)."""

    def __init__(
        self,
        broker: Broker,
        results: ResultStore,
        worker: str,
        max_size: int,
        app: Conveyor | None = None,
    ) -> None:
        self._broker = broker
        self._worker = worker
        self._max_size = max_size
        self._app = app  # moves workflows on (chains); None: messages carry none
        self._clock = app.clock if app is not None else SYSTEM_CLOCK
        self._results = results
        self.writer = Writer(broker, results)

    def settle(self, finished: Sequence[tuple[Inflight, RunResult]]) -> None:
        plans = []
        for item, result in finished:
            self._log(item, result)
            plans.append(self._plan(item, result))
        if plans:
            self.writer.submit(Plan.merged(plans))

    def _plan(self, item: Inflight, result: RunResult) -> Plan:
        """The writes settling one finished delivery, with its fallback."""
        plan = Plan(fallback=functools.partial(self._unsettled, item))
        outcome = self._outcome(item, result)
        policy = item.policy
        if outcome is not None and (
            not policy.ignore_result or (policy.store_errors and result.kind is RunKind.FAILURE)
        ):
            plan.puts.append(outcome)
        failed_for_good = result.kind is RunKind.FAILURE and item.policy.dead_letter_on_failure
        if result.kind in (RunKind.SUCCESS, RunKind.FAILURE, RunKind.IGNORE) and not (
            failed_for_good
        ):
            plan.acks.append(item.lease)
        else:
            plan.after.append(functools.partial(self._release_or_dead_letter, item, result))
        if result.kind is RunKind.IGNORE and not self._task_wrote_state(item):
            plan.forgets.append(item.message.id)  # no outcome at all: drop the STARTED record
        followup = self._followup(item, result)
        if followup is not None:
            plan.followups.append((item.lease, followup))
        return plan

    def _task_wrote_state(self, item: Inflight) -> bool:
        """Whether the ignored call stored a state of its own (`update_state`, e.g. FAILURE
        before `raise Ignore()`): that one stays, as in Celery. One read, on this rare path."""
        found = self._results.get(item.message.id)
        return found is not None and (
            found.custom_state is not None
            or found.state is not TaskState.STARTED
            or found.value is not None
            or found.error is not None
        )

    def _unsettled(self, item: Inflight, exc: Exception) -> Plan:
        """What to write for a delivery whose settling the store or broker refused for good:
        FAILURE naming the reason (the rest of its workflow fails with it), then an ack — or a
        dead letter, when its task dead-letters failures or ignores results. If that too is
        refused, the message is dead-lettered with the reason."""
        why = (
            f"the outcome could not be stored: {type(exc).__name__}: {exc}; the call ran and is "
            "not run again: fix what the result store refused (most often what the task "
            "returned or raised: make it smaller, plain data) and send the call again"
        )
        m, lease = item.message, item.lease
        error = ErrorInfo(OutcomeNotStored.__name__, why, module=OutcomeNotStored.__module__)

        def bury() -> None:
            if not self._broker.dead_letter(lease, storable_text(why)):
                log.warning("dead-lettering %s refused: lease lost", lease.message_id)

        plan = Plan(fallback=lambda _: Plan(after=[bury]))
        if not item.policy.ignore_result:
            outcome = item.outcome(
                TaskState.FAILURE, self._worker, reason="outcome not stored", error=error
            )
            plan.puts.append(dataclasses.replace(outcome, arguments=None))
        if item.policy.dead_letter_on_failure or item.policy.ignore_result:
            plan.after.append(bury)
        else:
            plan.acks.append(lease)
        if m.links and self._app is not None:
            failed = functools.partial(after_failure, self._app, m.links, m.task, m.id, error)
            plan.followups.append((lease, failed))
        return plan

    def _followup(self, item: Inflight, result: RunResult) -> Callable[[], None] | None:
        """What moves the item's workflow on: the next chain step after a success, failing
        the rest of the chain after a failure for good."""
        m, app = item.message, self._app
        links = m.links
        if not links or app is None:
            return None
        if result.kind is RunKind.SUCCESS:
            limit = app.conf.settings.result_max_size
            value = decode_value(result.value, limit) if result.value is not None else None
            return functools.partial(after_success, app, links, m.id, value, m.task)
        if result.kind in (RunKind.FAILURE, RunKind.REJECT) and result.error is not None:
            if result.kind is RunKind.REJECT and result.requeue:
                return None
            return functools.partial(after_failure, app, links, m.task, m.id, result.error)
        return None

    def store(self, outcomes: Sequence[Outcome]) -> None:
        """Write outcomes (STARTED at dispatch); ordered before anything submitted later. One
        the store refuses for good is dropped (logged): the call's final outcome follows."""
        if outcomes:
            self.writer.submit(Plan.merged([Plan(puts=[o]) for o in outcomes]))

    def finish(self, items: Sequence[Inflight], outcomes: Sequence[Outcome]) -> None:
        """Settle deliveries the worker ended itself (expired, revoked, cut off): store their
        outcomes, then ack."""
        plans = [
            Plan(puts=[o], acks=[item.lease], fallback=functools.partial(self._unsettled, item))
            for item, o in zip(items, outcomes, strict=True)
        ]
        if plans:
            self.writer.submit(Plan.merged(plans))

    def _outcome(self, item: Inflight, result: RunResult) -> Outcome | None:
        state = _STATES.get(result.kind)
        if result.kind is RunKind.REJECT:
            return (
                None
                if result.requeue
                else item.outcome(TaskState.FAILURE, self._worker, result, reason="rejected")
            )
        return item.outcome(state, self._worker, result) if state is not None else None

    def _release_or_dead_letter(self, item: Inflight, result: RunResult) -> None:
        lease = item.lease
        error = _text(result.error)
        if result.kind is RunKind.RETRY:
            now = self._clock.now()  # the retry is sent now, due `countdown` later (as Celery)
            retried = msgspec.structs.replace(
                item.message,
                retries=result.retries,
                throttled=False,
                sent_at=now,
                eta=now + result.countdown if result.countdown > 0 else None,
            )
            body = encode_message(retried, self._max_size)
            ok = self._broker.release(lease, result.countdown, body=body, error=error)
        elif result.kind is RunKind.FAILURE:
            ok = self._broker.dead_letter(lease, f"failed: {error}")
        elif result.requeue:
            ok = self._broker.release(lease, 0.0, error=error)
        else:
            ok = self._broker.dead_letter(lease, f"rejected by the task: {error}")
        if not ok:
            log.warning("settling %s refused: lease lost", lease.message_id)

    def give_back(self, item: Inflight, requeue: Requeue, reason: str, delay: float = 0.0) -> None:
        """Return a held delivery to the broker (see Requeue for what is counted), with
        `reason` as its last error (escaped to storable text: it may quote anything)."""
        reason = storable_text(reason)
        body = None
        if requeue is Requeue.UNSTARTED and delay > 0:  # it holds a rate-limit slot
            body = encode_message(
                msgspec.structs.replace(item.message, throttled=True), self._max_size
            )

        def release() -> None:
            if not self._broker.release(
                item.lease, delay, body=body, error=reason, requeue=requeue
            ):
                log.warning("giving back %s refused: lease lost", item.lease.message_id)

        self.writer.submit(Plan(after=[release]))

    def reject(
        self,
        delivery: Delivery,
        reason: str,
        outcome: Outcome | None,
        links: Links = NO_LINKS,
        task: str = "a call",
        error: ErrorInfo | None = None,
    ) -> None:
        """Dead-letter a delivery the worker will not run, with `reason`, after storing its
        `outcome` (FAILURE, under the delivery's token) and failing the rest of its workflow
        (`links`) as a failure for good does, with `error` (default: the outcome's, else
        MessageRejected naming `reason`), so that nobody waits on PENDING for ever. If the
        store refuses the outcome, the message is still dead-lettered and its workflow failed."""
        reason = storable_text(reason)
        lease = delivery.lease
        log.error("dead-lettering message %s: %s", delivery.envelope.id, reason)

        def bury() -> None:
            if not self._broker.dead_letter(lease, reason):
                log.warning("dead-lettering %s refused: lease lost", delivery.envelope.id)

        followups: list[tuple[Lease, Callable[[], None]]] = []
        if links and self._app is not None:
            error = error or (outcome.error if outcome is not None else None)
            error = error or ErrorInfo(MessageRejected.__name__, reason, module="conveyor.errors")
            failed = functools.partial(
                after_failure, self._app, links, task, lease.message_id, error
            )
            followups.append((lease, failed))
        plan = Plan(
            puts=[outcome] if outcome is not None else [],
            after=[bury],
            followups=followups,
            fallback=lambda _: Plan(after=[bury], followups=list(followups)),
        )
        self.writer.submit(plan)

    def _log(self, item: Inflight, result: RunResult) -> None:
        level = logging.INFO if result.kind is not RunKind.FAILURE else logging.ERROR
        if level == logging.ERROR and _expected(item, result):  # the task's `throws`
            level = logging.INFO
        if log.isEnabledFor(level):  # checked first: no per-task work when logging is off
            info = describe(result)
            fields = {  # for structured formats (logformat.py); the text line is unchanged
                "task_id": item.message.id,
                "task_name": item.message.shown_name,
                "queue": item.delivery.envelope.queue,
                "attempt": item.delivery.attempt,
                "retries": item.message.retries,
                "state": _STATE_NAMES[result.kind],
                "runtime": info["runtime"],
                "worker": self._worker,
            }
            log.log(
                level,
                "task %s[%s] %s attempt=%d %s",
                item.message.shown_name,
                item.message.id,
                info.pop("outcome"),
                item.delivery.attempt,
                " ".join(f"{k}={v}" for k, v in info.items()),
                extra=fields,
            )


def _expected(item: Inflight, result: RunResult) -> bool:
    """Whether a failure's error is one its task declares it `throws` (Celery logs those at
    INFO, as an expected outcome rather than an error)."""
    error, expected = result.error, item.policy.expected_errors
    return bool(expected) and error is not None and f"{error.module}.{error.type}" in expected


def _text(error: ErrorInfo | None) -> str | None:
    return f"{error.type}: {error.message}" if error is not None else None
