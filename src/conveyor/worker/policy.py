"""What a worker must do for one task, resolved once from the task's options and the app's
settings (a task option wins over its setting; a call's time limits win over both)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from ..config import Settings
from ..message import Message
from ..ratelimit import parse_rate
from ..task import Task


@dataclass(frozen=True, slots=True)
class TaskPolicy:
    """`at_most_once`: acks_late=False. `requeue_lost`: a run cut off by a dying process runs
    again (reject_on_worker_lost, on unless set False). `rate_interval` / `local_interval`:
    seconds between starts for the global / per-worker rate limit. `extended_result`: outcomes
    carry the call's arguments (result_extended)."""

    ignore_result: bool
    at_most_once: bool
    requeue_lost: bool
    dead_letter_on_failure: bool
    rate_interval: float | None
    local_interval: float | None
    time_limit: float | None
    soft_time_limit: float | None
    extended_result: bool = False
    track_started: bool = False  # store STARTED when the run begins (task_track_started)
    store_errors: bool = False  # store FAILURE even when ignore_result
    expected_errors: frozenset[str] = frozenset()  # "module.QualName" of the task's `throws`

    def limits(self, message: Message) -> tuple[float | None, float | None]:
        """(hard, soft) time limits for one call."""
        hard = message.time_limit if message.time_limit is not None else self.time_limit
        soft = (
            message.soft_time_limit if message.soft_time_limit is not None else self.soft_time_limit
        )
        return hard, soft


T = TypeVar("T")


def _pick(option: T | None, setting: T) -> T:
    return setting if option is None else option


def policy_for(task: Task, settings: Settings) -> TaskPolicy:
    o = task.options
    at_most_once = not _pick(o.acks_late, settings.task_acks_late)
    global_rate = o.rate_limit
    if global_rate is None and o.per_worker_rate_limit is None:
        global_rate = settings.task_default_rate_limit
    return TaskPolicy(
        ignore_result=_pick(o.ignore_result, settings.task_ignore_result),
        at_most_once=at_most_once,
        requeue_lost=not at_most_once
        and _pick(o.reject_on_worker_lost, settings.task_reject_on_worker_lost) is not False,
        dead_letter_on_failure=_pick(
            o.dead_letter_on_failure, settings.task_dead_letter_on_failure
        ),
        rate_interval=parse_rate(global_rate),
        local_interval=parse_rate(o.per_worker_rate_limit),
        time_limit=_pick(o.time_limit, settings.task_time_limit),
        soft_time_limit=_pick(o.soft_time_limit, settings.task_soft_time_limit),
        extended_result=settings.result_extended,
        track_started=_pick(o.track_started, settings.task_track_started),
        store_errors=o.store_errors_even_if_ignored,
        expected_errors=frozenset(f"{t.__module__}.{t.__qualname__}" for t in o.throws),
    )
