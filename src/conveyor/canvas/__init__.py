"""Workflows: signatures, chain, group (Celery's canvas).

`signature.py` builds them, `nodes.py` is their form inside messages, `flow.py` sends them and
moves them on when a step ends, `callbacks.py` sends link / link_error, `maps.py` and
`builtins.py` are map / starmap / chunks, `dicts.py` is a signature's dict form,
`group_result.py` is the handle on a group's results. This package's `__init__` imports nothing
up front, so the message module can use `nodes` without a cycle; Celery's names are resolved
on first use, so `from conveyor.canvas import chain, Signature` works as `from celery.canvas
import ...` does (or import them from `conveyor`). `conveyor.canvas.signature` is the function
(set by `conveyor/__init__`), as in Celery: import the module's names with
`from conveyor.canvas.signature import ...`, not as `import conveyor.canvas.signature as m`.
"""

from __future__ import annotations

import importlib
from typing import Any

_NAMES = {
    "Signature": "signature",
    "signature": "signature",
    "maybe_signature": "signature",
    "subtask": "signature",
    "chain": "signature",
    "group": "signature",
    "chord": "signature",
    "chunks": "maps",
    "xmap": "maps",
    "xstarmap": "maps",
}

__all__ = [
    "Signature",
    "chain",
    "chord",
    "chunks",
    "group",
    "maybe_signature",
    "signature",
    "subtask",
    "xmap",
    "xstarmap",
]


def __getattr__(name: str) -> Any:
    module = _NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'conveyor.canvas' has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
