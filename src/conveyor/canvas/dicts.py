"""Signatures as plain data: Celery's dict form, so a signature can be a task's argument.

Celery's signature is a dict, so `process.delay(data, callback=notify.s())` sends it as JSON
and the task rebuilds it: `signature(callback).delay(result)`. conveyor's messages carry only
plain JSON data, so a `Signature` given as an argument of a call (or inside a list, tuple or
dict that is one) is sent in Celery's dict form — `{"task", "args", "kwargs", "options",
"subtask_type", "immutable"}` — and the task receives that dict, exactly as a Celery task does.
`signature(a_dict)` / `maybe_signature(a_dict)` turn it back into a Signature. Only plain
signatures travel this way: a chain, group or chord given as an argument is refused, like any
other object JSON cannot carry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from ..message import MAX_NESTING

if TYPE_CHECKING:
    from ..app import Conveyor
    from .signature import Signature

#: The options a signature's dict form may carry (what `Signature.options` gives).
OPTIONS = frozenset({"queue", "priority", "countdown", "headers", "link", "link_error", "task_id"})
_KEYS = frozenset({"task", "args", "kwargs", "options", "subtask_type", "immutable", "chord_size"})
_SCALARS = frozenset({str, int, float, bool, type(None)})


def as_dict(sig: Signature) -> dict[str, Any]:
    """Celery's dict form of `sig` (its callbacks and errbacks too, when they are plain
    signatures)."""
    options = dict(sig.options)
    for name in ("link", "link_error"):
        if name in options:
            options[name] = [as_dict(_plain(s, name)) for s in options[name]]
    if "headers" in options:
        options["headers"] = dict(options["headers"])
    return {
        "task": sig.task,
        "args": list(_to_plain(list(sig.args))),
        "kwargs": _to_plain(dict(sig.kwargs)),
        "options": options,
        "subtask_type": None,
        "immutable": sig.immutable,
    }


def from_dict(d: Mapping[str, Any], app: Conveyor | None = None) -> Signature:
    """The Signature a dict form describes; ConfigurationError saying what is wrong with one
    that is not a plain signature's."""
    from .signature import Signature

    unknown = set(d) - _KEYS
    if "task" not in d or not isinstance(d["task"], str) or unknown:
        raise ConfigurationError(
            f"{dict(d)!r} is not a signature's dict form (keys task, args, kwargs, options, "
            "immutable)"
        )
    if d.get("subtask_type"):
        raise ConfigurationError(
            f"a {d['subtask_type']} cannot be rebuilt from its dict form here; pass the "
            "signatures it is made of and build it in the task"
        )
    options = dict(d.get("options") or {})
    extra = set(options) - OPTIONS
    if extra:
        raise ConfigurationError(
            f"signature {d['task']}: options {', '.join(sorted(extra))} are not supported in "
            f"its dict form (supported: {', '.join(sorted(OPTIONS))})"
        )
    sig = Signature(
        d["task"],
        tuple(d.get("args") or ()),
        dict(d.get("kwargs") or {}),
        bool(d.get("immutable", False)),
        app=app,
    ).set(
        queue=options.get("queue"),
        priority=options.get("priority"),
        countdown=options.get("countdown"),
        headers=options.get("headers"),
        task_id=options.get("task_id"),
    )
    sig.callbacks.extend(from_dict(c, app) for c in options.get("link") or ())
    sig.errbacks.extend(from_dict(e, app) for e in options.get("link_error") or ())
    return sig


def plain_arguments(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """`args` and `kwargs` with every Signature in them in its dict form (the same objects
    when there is none: this runs for every call sent, so plain arguments cost one type check
    each)."""
    for value in args:
        if type(value) not in _SCALARS and _has_signature(value, 0):
            break
    else:
        for value in kwargs.values():
            if type(value) not in _SCALARS and _has_signature(value, 0):
                break
        else:
            return args, kwargs
    return tuple(_to_plain(list(args))), _to_plain(kwargs)


def _has_signature(value: Any, depth: int) -> bool:
    """Whether a Signature is in `value` (a walk that builds nothing), down to the nesting a
    message may carry: deeper data is refused by the JSON check anyway, naming it."""
    kind = type(value)
    if kind is list or kind is tuple:
        items: Any = value
    elif kind is dict:
        items = value.values()
    else:
        return kind not in _SCALARS and _is_signature(value)
    if depth >= MAX_NESTING:
        return False
    for item in items:  # noqa: SIM110 - a plain loop: cheaper than any() on this per-call path
        if type(item) not in _SCALARS and _has_signature(item, depth + 1):
            return True
    return False


def _is_signature(value: Any) -> bool:
    from .signature import Signature

    return isinstance(value, Signature)


def _to_plain(value: Any, depth: int = 0) -> Any:
    from .signature import Signature

    kind = type(value)
    if kind in _SCALARS or depth > MAX_NESTING:
        return value  # too deep: for the JSON check to refuse, naming it
    if isinstance(value, Signature):
        return as_dict(value)
    if kind is list or kind is tuple:
        items = [_to_plain(v, depth + 1) for v in value]
        return items if kind is list else tuple(items)
    if kind is dict:
        return {k: _to_plain(v, depth + 1) for k, v in value.items()}
    return value  # anything else is for the JSON check to refuse, naming it


def _plain(item: Any, option: str) -> Signature:
    from .signature import Signature

    if not isinstance(item, Signature):
        raise ConfigurationError(
            f"a signature whose {option} is a {type(item).__name__} cannot be sent as an "
            "argument: only plain signatures have a dict form"
        )
    return item
