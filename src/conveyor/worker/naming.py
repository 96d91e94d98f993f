"""Worker node names with Celery's `%h`, `%n` and `%d` expansions."""

from __future__ import annotations

import socket


def expand_node_name(pattern: str | None, hostname: str | None = None) -> str:
    """`%h` → full host name, `%n` → its first label, `%d` → the rest (domain), `%%` → `%`.
    Without a pattern the name is Celery's `celery@%h`; a pattern without `@` gets `@%h`
    appended."""
    host = hostname or socket.gethostname()
    name, _, domain = host.partition(".")
    pattern = pattern or "celery@%h"
    if "@" not in pattern:
        pattern += "@%h"
    return _expand(pattern, {"h": host, "n": name, "d": domain, "%": "%"})


def node_format(pattern: str, node: str) -> str:
    """A file path for the worker `node` (Celery's pid and log file patterns, as `multi`
    writes them: `%n.pid`, `%n%I.log`): `%p` → the node name, `%n` → its part before `@`,
    `%h` → its host, `%d` → the host's domain, `%i` → "0" and `%I` → "" (pool children log
    into their worker's file, so there is no per-child index), `%%` → `%`."""
    short, _, host = node.partition("@")
    codes = {
        "p": node,
        "n": short,
        "h": host,
        "d": host.partition(".")[2],
        "i": "0",
        "I": "",
        "%": "%",
    }
    return _expand(pattern, codes)


def _expand(pattern: str, codes: dict[str, str]) -> str:
    """`pattern` with each `%X` whose X is in `codes` replaced; other `%X` kept as written."""
    out, i = [], 0
    while i < len(pattern):
        if pattern[i] == "%" and i + 1 < len(pattern):
            code = pattern[i + 1]
            out.append(codes.get(code, "%" + code))
            i += 2
        else:
            out.append(pattern[i])
            i += 1
    return "".join(out)
