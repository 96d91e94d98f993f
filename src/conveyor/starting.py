"""`app.start(argv)` and `app.worker_main(argv)`: the `conveyor` command run for an app object.

`python tasks.py worker -l INFO` with `if __name__ == "__main__": app.start()` at the end of
tasks.py runs `conveyor -A tasks:app worker -l INFO` in this process, on this very app (the
module is not imported a second time). Process-pool children import the app by that path, so
its module must be importable from the current directory, and its main name should be the
module's name (`Conveyor("tasks")` in tasks.py) so the children name its tasks the same.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConfigurationError

if TYPE_CHECKING:
    from .app import Conveyor

#: First arguments that name the program rather than a command (dropped, as Celery's were).
_PROGRAM_NAMES = frozenset({"celery", "conveyor"})


def start(app: Conveyor, argv: Sequence[str] | None = None) -> int:
    """Run the `conveyor` command line on `app` with `argv` (default: this program's own
    arguments, `sys.argv[1:]`); returns its exit code."""
    from .cli import cli
    from .cli.context import run_cli
    from .loader import preset

    args = command_args(argv)
    spec = app_spec(app)
    with preset(spec, app), _argv([sys.argv[0] if sys.argv else "conveyor", "-A", spec, *args]):
        return run_cli(cli)


def worker_main(app: Conveyor, argv: Sequence[str] | None = None) -> int:
    """`start` for a worker: `argv` must hold the `worker` command (Celery's rule)."""
    args = command_args(argv)
    if "worker" not in args:
        raise ValueError(
            "worker_main needs the worker command in argv, e.g. ['worker', '-l', 'INFO']; use "
            "app.start(argv) to run other commands"
        )
    return start(app, args)


def command_args(argv: Sequence[str] | None) -> list[str]:
    """The command's arguments: `argv` without a leading program name (`celery`, `conveyor`,
    a script path), or this program's arguments when `argv` is None."""
    if argv is None:
        return list(sys.argv[1:])
    if isinstance(argv, str):
        raise TypeError(f"argv must be a list of arguments, not the string {argv!r}")
    args = list(argv)
    if args and _is_program(args[0]):
        args = args[1:]
    return args


def _is_program(arg: str) -> bool:
    return (
        Path(arg).name in _PROGRAM_NAMES
        or arg.endswith(".py")
        or (bool(sys.argv) and arg == sys.argv[0])
    )


def app_spec(app: Conveyor) -> str:
    """The `module:attribute` path other processes import `app` by: a module already imported
    that holds it, or the script run as __main__ under its own module name."""
    main = sys.modules.get("__main__")
    for name, module in list(sys.modules.items()):
        if module is None or name in ("__main__", "__mp_main__") or name.startswith("conveyor."):
            continue
        attr = _attribute_holding(module, app)
        if attr is not None:
            return f"{name}:{attr}"
    attr = _attribute_holding(main, app) if main is not None else None
    if attr is not None and main is not None:
        return f"{_main_module_name(main)}:{attr}"
    raise ConfigurationError(
        "app.start(): this app is not a module attribute, so worker processes could not import "
        "it; define it at module level (app = Conveyor('proj')) or run `conveyor -A MODULE ...`"
    )


def _attribute_holding(module: object, app: Conveyor) -> str | None:
    try:
        items = list(vars(module).items())
    except TypeError:
        return None
    public = [(name, value) for name, value in items if not name.startswith("_")]
    preferred = sorted(public, key=lambda item: item[0] not in ("app", "celery"))
    return next((name for name, value in preferred if value is app), None)


def _main_module_name(main: object) -> str:
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name:
        return str(spec.name).removesuffix(".__main__")
    path = getattr(main, "__file__", None)
    if not path:
        raise ConfigurationError(
            "app.start(): the app lives in an interactive session, which worker processes "
            "cannot import; move it to a module"
        )
    return Path(path).stem


@contextmanager
def _argv(argv: list[str]) -> Iterator[None]:
    """The command line click reads, for the duration of one command."""
    saved = sys.argv
    sys.argv = argv
    try:
        yield
    finally:
        sys.argv = saved
