"""The `task_annotations` setting: options (and hooks) for tasks given in the configuration.

As in Celery, the setting is a dict `{task name or "*": {option: value}}`, an object with an
`annotate(task)` method returning such a dict (or None) and optionally `annotate_any()`, or a
list of these. For one task, the first annotation whose `annotate(task)` gives a dict is used,
then the first `annotate_any()` (a dict's `"*"` entry) — applied in that order, so `"*"` wins
where both set the same key, exactly as in Celery.

What may be set: the task options (rate_limit, time_limit, soft_time_limit, max_retries,
default_retry_delay, acks_late, ignore_result, autoretry_for, …; not name, base or bind) and
the hooks before_start, on_success, on_failure, on_retry and after_return (functions taking
the task as their first argument, as methods). Anything else is refused when the setting is
given (for dicts) or when the task first uses it (for annotate() objects). Import paths given
as strings and Celery's "@method" wrappers are refused: give the object itself, or define the
hook in a Task subclass.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ._names import did_you_mean
from .errors import ConfigurationError
from .options import TASK_OPTION_NAMES, TaskOptions

if TYPE_CHECKING:
    from .task import Task

HOOKS = frozenset({"before_start", "on_success", "on_failure", "on_retry", "after_return"})
OPTIONS = TASK_OPTION_NAMES - {"name", "base", "bind"}
KEYS = OPTIONS | HOOKS


def prepare(value: object) -> tuple[object, ...]:
    """The setting as a tuple of annotations (dicts copied); raise ConfigurationError for
    what cannot be one, and for a dict's unknown keys or invalid option values."""
    if value is None:
        return ()
    items = value if isinstance(value, list | tuple) else (value,)
    prepared: list[object] = []
    for i, item in enumerate(items):
        where = f"task_annotations[{i}]" if isinstance(value, list | tuple) else "task_annotations"
        if isinstance(item, Mapping):
            prepared.append(_prepared_map(item, where))
        elif isinstance(item, str):
            raise ConfigurationError(
                f"{where} is the string {item!r}; conveyor does not import classes named by "
                "strings: import the annotation class and give an instance of it"
            )
        elif callable(getattr(item, "annotate", None)):
            prepared.append(item)
        else:
            raise ConfigurationError(
                f"{where} must be a dict {{task name or '*': {{option: value}}}} or an object "
                f"with an annotate(task) method, got {item!r}"
            )
    return tuple(prepared)


def _prepared_map(item: Mapping[Any, Any], where: str) -> Mapping[str, Mapping[str, Any]]:
    out: dict[str, Mapping[str, Any]] = {}
    for name, attrs in item.items():
        if not isinstance(name, str) or not isinstance(attrs, Mapping):
            raise ConfigurationError(
                f"{where}: each entry maps a task name (or '*') to a dict of options, got "
                f"{name!r}: {attrs!r}"
            )
        out[name] = checked(dict(attrs), f"{where}[{name!r}]")
    return out


def checked(attrs: Mapping[str, Any], where: str) -> Mapping[str, Any]:
    """`attrs` if every key is an option or hook conveyor applies and every option value is
    valid; else ConfigurationError saying which."""
    for key in attrs:
        if isinstance(key, str) and key.startswith("@"):
            raise ConfigurationError(
                f"{where}: {key!r} (wrapping a method) is not supported; override the method "
                "in a Task subclass (base=...) instead"
            )
        if key not in KEYS:
            raise ConfigurationError(
                f"{where}: {key!r} cannot be annotated{did_you_mean(str(key), KEYS)}; "
                f"annotations set task options ({', '.join(sorted(OPTIONS))}) and hooks "
                f"({', '.join(sorted(HOOKS))})"
            )
        if key in HOOKS and not callable(attrs[key]):
            raise ConfigurationError(f"{where}: {key} must be a function, got {attrs[key]!r}")
    options = {k: v for k, v in attrs.items() if k in OPTIONS}
    if options:
        try:
            TaskOptions(**options)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{where}: {exc}") from None
    return attrs


def found_for(annotations: tuple[object, ...], task: Task) -> list[Mapping[str, Any]]:
    """What the annotations give `task`, in the order they apply (later wins)."""
    found: list[Mapping[str, Any]] = []
    for anno in annotations:
        attrs = _annotate(anno, task)
        if attrs is not None:
            found.append(checked(attrs, f"task_annotations for {task.name}"))
            break
    for anno in annotations:
        attrs = _annotate_any(anno)
        if attrs is not None:
            found.append(checked(attrs, "task_annotations['*']"))
            break
    return found


def _annotate(anno: object, task: Task) -> Mapping[str, Any] | None:
    if isinstance(anno, Mapping):
        result: Mapping[str, Any] | None = anno.get(task.name)
        return result
    return _dict_or_none(anno.annotate(task), anno)  # type: ignore[attr-defined]


def _annotate_any(anno: object) -> Mapping[str, Any] | None:
    if isinstance(anno, Mapping):
        result: Mapping[str, Any] | None = anno.get("*")
        return result
    method = getattr(anno, "annotate_any", None)
    return _dict_or_none(method(), anno) if callable(method) else None


def _dict_or_none(value: object, anno: object) -> Mapping[str, Any] | None:
    if value is None or isinstance(value, Mapping):
        return value
    raise ConfigurationError(
        f"task_annotations: {anno!r} returned {value!r}; annotate() returns a dict or None"
    )


def annotated(
    task: Task, declared: TaskOptions, annotations: tuple[object, ...]
) -> tuple[TaskOptions, Mapping[str, Callable[..., Any]]]:
    """`task`'s options with the annotations applied over its declared ones, and the hooks
    they give it (bound to the task)."""
    options: dict[str, Any] = {}
    hooks: dict[str, Callable[..., Any]] = {}
    for attrs in found_for(annotations, task):
        for key, value in attrs.items():
            if key in HOOKS:
                hooks[key] = types.MethodType(value, task)
            else:
                options[key] = value
    if not options:
        return declared, hooks
    return dataclasses.replace(declared, **options), hooks
