"""Worker node names with Celery's `%h`, `%n` and `%d` expansions."""

from __future__ import annotations

import socket


def expand_node_name(pattern: str | None, hostname: str | None = None) -> str:
    """`%h` → full host name, `%n` → its first label, `%d` → the rest (domain), `%%` → `%`.
    Without a pattern the name is `conveyor@%h`; a pattern without `@` gets `@%h` appended."""
    host = hostname or socket.gethostname()
    name, _, domain = host.partition(".")
    pattern = pattern or "conveyor@%h"
    if "@" not in pattern:
        pattern += "@%h"
    out, i = [], 0
    while i < len(pattern):
        if pattern[i] == "%" and i + 1 < len(pattern):
            code = pattern[i + 1]
            out.append({"h": host, "n": name, "d": domain, "%": "%"}.get(code, "%" + code))
            i += 2
        else:
            out.append(pattern[i])
            i += 1
    return "".join(out)
