"""`conveyor multi start|stop|stopwait|restart|kill|show|names w1 w2 -A proj ...`: Celery's
init-script tool, which starts and stops several detached workers on this host.

* `start`: starts each node with `conveyor worker --detach` (multi_nodes.py says which
  arguments) and waits for it to write its pid file: OK, or FAILED (the worker's error is on
  stderr, its log in its log file). Exit 1 if any failed.
* `stop`: sends SIGTERM (a warm shutdown: running tasks finish) to each node whose pid file
  names a live conveyor process; the others are DOWN. It does not wait.
* `stopwait`: `stop`, then waits until every signalled node has exited.
* `restart`: `stopwait`, then starts every node (those that were DOWN too).
* `kill`: SIGKILL to each running node (its calls are redelivered once their leases expire).
* `show`: prints each node's command; `names`: each node's name.
A pid file naming a process whose command line has no "conveyor" in it (a pid reused after a
reboot) counts as DOWN, so stop never signals a stranger.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import signal
import subprocess
import time
from pathlib import Path

import click

from .. import __version__
from .context import CliContext
from .files import read_pid
from .multi_nodes import Node, command_line, parse_nodes

ACTIONS = ("start", "stop", "stopwait", "restart", "kill", "show", "names")
_POLL = 0.2
#: Celery's output flags: -q/--quiet (no progress lines; errors still on stderr), --verbose
#: (each worker command as it starts), --nosplash (no version line), --no-color (conveyor's
#: multi has no colours).
_OUTPUT_FLAGS = frozenset({"-q", "--quiet", "--verbose", "--nosplash", "--no-color"})
_QUIET: contextvars.ContextVar[bool] = contextvars.ContextVar("multi_quiet", default=False)
_VERBOSE: contextvars.ContextVar[bool] = contextvars.ContextVar("multi_verbose", default=False)


def _say(text: str, nl: bool = True, err: bool = False) -> None:
    """A progress line (none with --quiet, unless it goes to stderr)."""
    if err or not _QUIET.get():
        click.echo(text, nl=nl, err=err)


@click.command(
    context_settings={"ignore_unknown_options": True, "help_option_names": ["-h", "--help"]}
)
@click.argument("action", type=click.Choice(ACTIONS))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def multi(ctx: CliContext, action: str, args: tuple[str, ...]) -> None:
    """Start or stop several detached workers: `conveyor multi start w1 w2 -A proj -l INFO`
    (per node: `-c:w1 3`; pid and log files `%n.pid`, `%n%I.log` by default)."""
    from .worker import worker

    flags = {a for a in args if a in _OUTPUT_FLAGS}
    nodes = parse_nodes(tuple(a for a in args if a not in flags), worker, ctx.app_spec, ctx.broker)
    if action == "names":
        click.echo("\n".join(n.name for n in nodes))
        return
    if action == "show":
        click.echo("\n".join(" ".join(command_line(n)) for n in nodes))
        return
    _QUIET.set(bool(flags & {"-q", "--quiet"}))
    _VERBOSE.set("--verbose" in flags)
    if "--nosplash" not in flags:
        _say(f"conveyor multi v{__version__}")
    failed = _ACTIONS[action](nodes)
    if failed:
        raise SystemExit(1)


def start(nodes: list[Node]) -> int:
    """Start each node; how many failed."""
    _say("> Starting nodes...")
    return sum(_start(node, "\t> ") for node in nodes)


def _start(node: Node, lead: str) -> int:
    """Start one node, printing OK or FAILED; 1 if it failed."""
    if _VERBOSE.get():
        _say(f"  {' '.join(command_line(node))}")
    _say(f"{lead}{node.name}: ", nl=False)
    done = subprocess.run(
        command_line(node),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,  # shown only when it failed: the worker's error
        text=True,
        check=False,
    )
    code = done.returncode
    _say("OK" if code == 0 else "FAILED")
    if code != 0:
        _say(done.stderr.rstrip(), err=True)
        _say(f"* Child terminated with exit code {code}")
    return int(code != 0)


def stop(nodes: list[Node]) -> int:
    """SIGTERM to every running node, without waiting."""
    _signal(nodes, signal.SIGTERM)
    return 0


def stopwait(nodes: list[Node]) -> int:
    """SIGTERM to every running node, then wait until each has exited."""
    _wait(_signal(nodes, signal.SIGTERM))
    return 0


def restart(nodes: list[Node]) -> int:
    """Stop every node and wait, then start each again; how many failed to start."""
    _wait(_signal(nodes, signal.SIGTERM))
    return sum(_start(node, "> Restarting node ") for node in nodes)


def kill(nodes: list[Node]) -> int:
    """SIGKILL to every running node."""
    _signal(nodes, signal.SIGKILL)
    return 0


_ACTIONS = {"start": start, "stop": stop, "stopwait": stopwait, "restart": restart, "kill": kill}


def _signal(nodes: list[Node], signum: signal.Signals) -> dict[Node, int]:
    """Send `signum` to each running node; the nodes signalled, with their pids."""
    running = {n: pid for n in nodes if (pid := node_pid(n)) is not None}
    for node in nodes:
        if node not in running:
            _say(f"> {node.name}: DOWN")
    if running:
        _say("> Stopping nodes...")
    for node, pid in running.items():
        _say(f"\t> {node.name}: {signum.name.removeprefix('SIG')} -> {pid}")
        with contextlib.suppress(ProcessLookupError):  # exited meanwhile
            os.kill(pid, signum)
    return running


def _wait(running: dict[Node, int]) -> None:
    """Wait until every node of `running` has exited, printing a dot per poll."""
    if not running:
        return
    word = "node" if len(running) == 1 else "nodes"
    pids = ", ".join(str(p) for p in running.values())
    _say(f"> Waiting for {len(running)} {word} -> {pids}", nl=False)
    left = dict(running)
    while left:
        for node, pid in list(left.items()):
            if _stopped(node, pid):
                _say(f"\n\t> {node.name}: OK", nl=False)
                del left[node]
        if left:
            _say(".", nl=False)
            time.sleep(_POLL)
    _say("")


def node_pid(node: Node) -> int | None:
    """The pid of the running conveyor process the node's pid file names, or None."""
    pid = read_pid(Path(node.pidfile))
    return pid if pid is not None and _is_conveyor(pid) else None


def _stopped(node: Node, pid: int) -> bool:
    """Whether the process `pid` of `node` has exited (its pid file no longer names it, it
    is gone, or it is a zombie nobody has reaped yet)."""
    return read_pid(Path(node.pidfile)) != pid or _zombie_or_gone(pid)


def _is_conveyor(pid: int) -> bool:
    """Whether `pid` runs conveyor, by its command line (True where /proc is not there)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return not Path("/proc/self").exists()
    except OSError:
        return True  # another user's process: its pid file is the only word we have
    return b"conveyor" in cmdline


def _zombie_or_gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:  # gone, or a system without /proc: ask the kernel
        return Path("/proc/self").exists() or not _exists(pid)
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] == "Z"


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
