"""The nodes of `conveyor multi`: its arguments, as Celery's `multi` reads them, turned into one
worker command per node.

* Names: `w1 w2` (host added: `w1@<hostname>`, or the host given by `-n/--hostname`),
  `w1@host` as written (`%h`, `%n`, `%d` expanded), or one number N: `celery1` … `celeryN`.
* Options are the worker's (`-l INFO`, `-c 3`, `--pidfile=...`), plus `-A/--app` and
  `-b/--broker`, which go before `worker`. One written `-c:w1 3` (or `--concurrency:w1=3`)
  applies to node w1 only and replaces the general one for that node; the part after `:` is a
  node's name, its index (`1`), a list (`1,3`) or a range of indexes (`1-3`).
* Every node is started with `--detach`, its node name, `--pidfile` (default `%n.pid`) and
  `--logfile` (default `%n%I.log`), expanded for the node (worker/naming.py `node_format`).
  The defaults are in the current directory (Celery's are under /var/run/celery and
  /var/log/celery, which it creates; conveyor never creates directories).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import click

from ..worker.naming import expand_node_name, node_format

DEFAULT_PIDFILE = "%n.pid"
DEFAULT_LOGFILE = "%n%I.log"
#: Options of the `conveyor` group itself; they go before `worker`.
_ROOT = {"-A": "app", "--app": "app", "-b": "broker", "--broker": "broker"}
_ROOT_PARAMS = frozenset(_ROOT.values())
_OWN_PARAMS = _ROOT_PARAMS | {"pidfile", "logfile"}  # placed by multi itself
#: Options multi reads itself (and never passes on).
_HOST = frozenset({"-n", "--hostname"})
_DETACH = frozenset({"-D", "--detach"})


@dataclass(frozen=True, slots=True)
class Given:
    """One option as written: the worker parameter it sets, its spelling, its value (None for
    a flag) and the node selector after `:` (None: every node)."""

    param: str
    opt: str
    value: str | None
    selector: str | None


@dataclass(frozen=True, slots=True)
class Node:
    """One worker of the cluster and the command that starts it."""

    name: str
    pidfile: str
    logfile: str
    argv: tuple[str, ...]  # after `python -m conveyor`


def parse_nodes(
    args: tuple[str, ...], worker: click.Command, app: str | None, broker: str | None = None
) -> list[Node]:
    """The nodes `args` describe (see the module docstring); `app` and `broker` are the
    group's `-A` and `-b`, used when `args` give none. UsageError for an unknown option or
    selector, or no names."""
    names, given = _split(args, _option_table(worker))
    if not names:
        raise click.UsageError("name the nodes: `conveyor multi start w1 w2 -A proj`, or a count")
    host = next((g.value for g in given if g.opt in _HOST), None)
    if len(names) == 1 and names[0].isdigit():
        names = [f"celery{i}" for i in range(1, int(names[0]) + 1)]
    full = [expand_node_name(n if "@" in n else f"{n}@{host or '%h'}") for n in names]
    _check_selectors(given, full)
    for param, opt, value in (("broker", "-b", broker), ("app", "-A", app)):
        if value and not any(g.param == param for g in given):
            given.insert(0, Given(param, opt, value, None))
    return [_node(i, name, given) for i, name in enumerate(full)]


def _option_table(worker: click.Command) -> dict[str, click.Option]:
    """Every spelling of the worker's options, and -A/-b, mapped to its click option."""
    table = {
        opt: option
        for option in worker.params
        if isinstance(option, click.Option)
        for opt in (*option.opts, *option.secondary_opts)
    }
    for opt, name in _ROOT.items():
        table[opt] = click.Option([opt, name])
    return table


def _split(args: tuple[str, ...], table: dict[str, click.Option]) -> tuple[list[str], list[Given]]:
    """Node names and options, read as the worker's command line reads them."""
    names: list[str] = []
    given: list[Given] = []
    rest = list(args)
    while rest:
        token = rest.pop(0)
        if token == "--":
            raise click.UsageError("conveyor multi passes no `--` arguments to its workers")
        if not token.startswith("-") or token == "-":
            names.append(token)
            continue
        spelled, has_value, value = token.partition("=")
        opt, _, selector = spelled.partition(":")
        option = table.get(opt)
        if option is None:
            raise click.UsageError(f"{opt} is not an option of `conveyor worker`")
        if option.is_flag:
            if has_value:
                raise click.UsageError(f"{opt} is a flag; it takes no value")
            given.append(Given(str(option.name), opt, None, selector or None))
            continue
        if not has_value:
            if not rest:
                raise click.UsageError(f"{opt} needs a value")
            value = rest.pop(0)
        given.append(Given(str(option.name), opt, value, selector or None))
    return names, given


def _check_selectors(given: list[Given], names: list[str]) -> None:
    """Every `:selector` names a node (by name, short name or index)."""
    for g in given:
        if g.selector is None:
            continue
        if not any(_selects(g.selector, i, n) for i, n in enumerate(names)):
            raise click.UsageError(
                f"{g.opt}:{g.selector} selects no node; nodes: {', '.join(names)} "
                "(select by name, short name, index from 1, list 1,3 or range 1-3)"
            )


def _selects(selector: str, index: int, name: str) -> bool:
    """Whether `selector` (name, short name, index, list or range) picks node `index`."""
    for part in selector.split(","):
        low, dash, high = part.partition("-")
        if dash and low.isdigit() and high.isdigit():
            if int(low) <= index + 1 <= int(high):
                return True
        elif part in (name, name.partition("@")[0], str(index + 1)):
            return True
    return False


def _node(index: int, name: str, given: list[Given]) -> Node:
    """The node `name`: its own options replace the general ones of the same parameter."""
    own = [g for g in given if g.selector is not None and _selects(g.selector, index, name)]
    mine = {g.param for g in own}
    general = [g for g in given if g.selector is None and g.param not in mine]
    chosen = [g for g in (*general, *own) if g.opt not in _HOST and g.opt not in _DETACH]
    pidfile = _value(chosen, "pidfile") or DEFAULT_PIDFILE
    logfile = _value(chosen, "logfile") or DEFAULT_LOGFILE
    pidfile, logfile = node_format(pidfile, name), node_format(logfile, name)
    root = [g for g in chosen if g.param in _ROOT_PARAMS]
    rest = [g for g in chosen if g.param not in _OWN_PARAMS]
    argv = (
        *_flat(root),
        "worker",
        "--detach",
        "-n",
        name,
        f"--pidfile={pidfile}",
        f"--logfile={logfile}",
        *_flat(rest),
    )
    return Node(name, pidfile, logfile, argv)


def _value(given: list[Given], param: str) -> str | None:
    found = [g.value for g in given if g.param == param]
    return found[-1] if found else None


def _flat(given: list[Given]) -> list[str]:
    out: list[str] = []
    for g in given:
        out.extend([g.opt] if g.value is None else [g.opt, g.value])
    return out


def command_line(node: Node) -> list[str]:
    """The full command that starts `node`."""
    return [sys.executable, "-m", "conveyor", *node.argv]
