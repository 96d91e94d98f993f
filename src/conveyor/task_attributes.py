"""Celery's task attributes (`self.max_retries`, `add.rate_limit`, …) on conveyor's Task.

Celery's tasks carry their options as class attributes, and task code reads them
(`if self.request.retries >= self.max_retries: ...`). conveyor keeps options in one frozen
`TaskOptions`; these are read-only views of the options in effect (the decorator's, a base
class's, with task_annotations applied). Set them with the decorator, a base class or
task_annotations.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .options import TaskOptions


class OptionAttributes:
    """Mixed into `conveyor.Task`, which provides `options`."""

    @property
    def options(self) -> TaskOptions:
        raise NotImplementedError  # conveyor.Task's

    @property
    def max_retries(self) -> int | None:
        return self.options.max_retries

    @property
    def default_retry_delay(self) -> float:
        return self.options.default_retry_delay

    @property
    def rate_limit(self) -> str | None:
        return self.options.rate_limit

    @property
    def time_limit(self) -> float | None:
        return self.options.time_limit

    @property
    def soft_time_limit(self) -> float | None:
        return self.options.soft_time_limit

    @property
    def ignore_result(self) -> bool | None:
        return self.options.ignore_result

    @property
    def acks_late(self) -> bool | None:
        return self.options.acks_late

    @property
    def reject_on_worker_lost(self) -> bool | None:
        return self.options.reject_on_worker_lost

    @property
    def autoretry_for(self) -> tuple[type[BaseException], ...]:
        return self.options.autoretry_for

    @property
    def dont_autoretry_for(self) -> tuple[type[BaseException], ...]:
        return self.options.dont_autoretry_for

    @property
    def retry_backoff(self) -> bool | float:
        return self.options.retry_backoff

    @property
    def retry_backoff_max(self) -> float:
        return self.options.retry_backoff_max

    @property
    def retry_jitter(self) -> bool:
        return self.options.retry_jitter

    @property
    def retry_kwargs(self) -> Mapping[str, Any]:
        return self.options.retry_kwargs

    @property
    def queue(self) -> str | None:
        return self.options.queue

    @property
    def priority(self) -> int | None:
        return self.options.priority

    @property
    def expires(self) -> float | datetime | None:
        return self.options.expires

    @property
    def serializer(self) -> str | None:
        return self.options.serializer

    @property
    def typing(self) -> bool | None:
        return self.options.typing

    @property
    def compression(self) -> str | None:
        return self.options.compression

    @property
    def track_started(self) -> bool | None:
        return self.options.track_started

    @property
    def throws(self) -> tuple[type[BaseException], ...]:
        return self.options.throws

    @property
    def store_errors_even_if_ignored(self) -> bool:
        return self.options.store_errors_even_if_ignored


_VIEWS = {
    name: value for name, value in vars(OptionAttributes).items() if isinstance(value, property)
}
_VIEWS.pop("options")
_restored: dict[type, type] = {}


def with_views(cls: type) -> type:
    """`cls`, or a subclass of it in which the attributes above are views of the options again
    where `cls` (a user's base class) shadows them with plain class attributes such as
    `max_retries = 5`. Those values are defaults the options already took (options.py), and
    a decorator's `max_retries=2` must read back as 2, as Celery's task classes do."""
    shadowed = {
        name: view
        for name, view in _VIEWS.items()
        if not isinstance(getattr(cls, name, None), property)
    }
    if not shadowed:
        return cls
    found = _restored.get(cls)
    if found is None:
        found = _restored[cls] = type(
            cls.__name__, (cls,), {**shadowed, "__module__": cls.__module__}
        )
    return found
