"""`app.add_periodic_task(schedule, sig, name=...)`: a `beat_schedule` entry from a signature.

The entry is what a `beat_schedule` setting would hold (task name, args, kwargs, options,
schedule), so it is checked and run exactly as one: `conveyor beat` or `worker -B` sends it.
As in Celery, the entry's key is `name`, or the call written out (`tasks.test('hello')`) when
no name is given; adding under a key already in use replaces that entry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .errors import ConfigurationError


def periodic_entry(
    schedule: Any,
    sig: Any,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    name: str | None = None,
    **opts: Any,
) -> tuple[str, dict[str, Any]]:
    """(key, entry) for `sig`, a signature (`test.s('hello')`) or a task (then `args` and
    `kwargs` are its arguments; with a signature they are added to its own, as Celery's
    `clone` does)."""
    task, sig_args, sig_kwargs, options = _parts(sig)
    full_args = (*sig_args, *args)
    full_kwargs = {**sig_kwargs, **(kwargs or {})}
    entry = {
        "schedule": schedule,
        "task": task,
        "args": full_args,
        "kwargs": full_kwargs,
        "options": {**options, **opts},
    }
    return name or _written_out(task, full_args, full_kwargs), entry


def _parts(sig: Any) -> tuple[str, tuple[Any, ...], dict[str, Any], dict[str, Any]]:
    """Task name, arguments and send options of a signature or a task."""
    from .canvas.signature import Signature
    from .task import Task

    if isinstance(sig, Signature):
        if getattr(sig, "countdown", None) is not None:
            raise ConfigurationError(
                f"add_periodic_task: the signature of {sig.task} has a countdown; a periodic "
                "entry fires at its schedule's times, so drop the countdown"
            )
        options = {
            key: getattr(sig, key)
            for key in ("queue", "priority")
            if getattr(sig, key, None) is not None
        }
        return sig.task, tuple(sig.args), dict(sig.kwargs), options
    if isinstance(sig, Task) or isinstance(getattr(sig, "name", None), str):
        return str(sig.name), (), {}, {}
    raise ConfigurationError(
        f"add_periodic_task needs a signature (task.s(...)) or a task, got {sig!r}"
    )


def _written_out(task: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
    """The call as Python would write it: `tasks.add(2, 2)`, `tasks.test('hi', n=1)`."""
    shown = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return f"{task}({', '.join(shown)})"
