"""The warning for a Redis server that persists nothing.

A server running with `appendonly no` and `save ""` keeps every message only in memory: a
restart or crash loses all of them, acknowledged enqueues included, without a word. Conveyor
cannot fix that from the client, so it says so once per process and server, when the broker
is opened (a producer's first send, a worker's start), beside the eviction-policy check.
docs/backends.md lists the settings that make an acknowledged enqueue durable.

Servers that refuse CONFIG (managed services often rename or forbid it) are not checked.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

log = logging.getLogger("conveyor.brokers.redis")
_warned: set[tuple[str, ...]] = set()
_lock = threading.Lock()


def _server(client: Any) -> tuple[str, ...]:
    """Who the client talks to: host and port, or the socket path."""
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return ("unix", str(kwargs["path"]))
    return (str(kwargs.get("host", "")), str(kwargs.get("port", "")))


def _setting(client: Any, name: str) -> str | None:
    try:
        value = client.config_get(name).get(name)
    except Exception as exc:  # CONFIG may be renamed or forbidden
        log.debug("could not read %s: %s", name, exc)
        return None
    return value.decode() if isinstance(value, bytes) else value


def persists_nothing(client: Any) -> bool | None:
    """True when the server has neither an append-only file nor snapshots; None when its
    configuration cannot be read."""
    appendonly, save = _setting(client, "appendonly"), _setting(client, "save")
    if appendonly is None or save is None:
        return None
    return appendonly.lower() == "no" and not save.strip()


def warn_if_not_persistent(client: Any, shown: str) -> None:
    """Warn, once per process and server, when the server persists nothing. `shown` is the
    URL without credentials."""
    server = _server(client)
    with _lock:  # held across the check, so threads opening brokers at once warn once
        if server in _warned:
            return
        verdict = persists_nothing(client)
        if verdict is None:
            return  # unreadable now (CONFIG forbidden, server away): no verdict, no warning
        _warned.add(server)
    if verdict:
        log.warning(
            'Redis at %s has no persistence (appendonly no, save ""): a restart of the server '
            "loses every queued message, acknowledged enqueues included. Set appendonly yes "
            "(appendfsync everysec loses at most about a second of writes in a crash of the "
            "machine — a crash of Redis alone loses nothing — and always none); see "
            "docs/backends.md",
            shown,
        )
