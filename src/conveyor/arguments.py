"""The call-time argument check of Celery's `typing`: does a task's function take these
arguments? Checked when a call is sent, so `add.delay(8)` on `add(x, y)` fails at the caller
(TypeError) rather than in a worker.

The common case, positional arguments only, is checked by counting against limits read once
from the function's signature; anything else goes through `inspect.Signature.bind`, which also
words the error.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_P = inspect.Parameter
_POSITIONAL = (_P.POSITIONAL_ONLY, _P.POSITIONAL_OR_KEYWORD)


@dataclass(frozen=True, slots=True)
class Parameters:
    """A function's parameters as callers see them. `least` / `most`: how many positional
    arguments it takes (`most` None with *args); `simple`: positional arguments alone can
    satisfy it (no keyword-only parameter without a default)."""

    signature: inspect.Signature
    least: int
    most: int | None
    simple: bool

    def check(self, name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        """Raise TypeError, naming the task `name` and its parameters, unless the function
        can be called with `args` and `kwargs`."""
        if (
            not kwargs
            and self.simple
            and self.least <= len(args)
            and (self.most is None or len(args) <= self.most)
        ):
            return
        try:
            self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(
                f"{name}{_bare(self.signature)}: {exc} (called with {len(args)} positional "
                f"argument(s) and keyword(s) {sorted(kwargs)}); pass what the function takes, "
                "or give the task typing=False to send it unchecked"
            ) from None


def parameters_of(fn: Callable[..., Any], bound: bool) -> Parameters | None:
    """The parameters of `fn` without its first one when `bound` (a bound task's `self`);
    None when they cannot be read (a builtin or C function: nothing to check against)."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    params = list(signature.parameters.values())
    if bound and params and params[0].kind is not _P.VAR_POSITIONAL:
        params = params[1:]
        signature = signature.replace(parameters=params)
    positional = [p for p in params if p.kind in _POSITIONAL]
    return Parameters(
        signature=signature,
        least=sum(1 for p in positional if p.default is _P.empty),
        most=None if any(p.kind is _P.VAR_POSITIONAL for p in params) else len(positional),
        simple=not any(p.kind is _P.KEYWORD_ONLY and p.default is _P.empty for p in params),
    )


def _bare(signature: inspect.Signature) -> inspect.Signature:
    """The signature without annotations, as an error message shows it: `(x, y=2)`."""
    return signature.replace(
        parameters=[p.replace(annotation=_P.empty) for p in signature.parameters.values()],
        return_annotation=_P.empty,
    )
