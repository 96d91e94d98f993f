"""Serving a Prometheus registry at `/metrics`, for the worker's metrics and the cluster
exporter alike.

Contract: `serve_registry` binds before it returns, so a caller that starts consuming or
exporting afterwards never runs unobserved; an address it cannot bind (in use, not an address
of this machine) is a ConfigurationError naming host and port and saying what to do (`flag` is
the option that chooses the port). The server answers from daemon threads; `MetricsServer.stop`
closes the socket and waits for the serving thread (idempotent).
"""

from __future__ import annotations

import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server

from ..errors import ConfigurationError


class MetricsServer:
    """A running `/metrics` server (see `serve_registry`)."""

    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self._server: WSGIServer | None = server
        self._thread = thread

    @property
    def port(self) -> int:
        """The bound port (useful when 0 asked the system for a free one)."""
        if self._server is None:
            raise RuntimeError("the metrics server is stopped")
        return int(self._server.server_port)

    def stop(self) -> None:
        """Stop serving and close the socket (idempotent)."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            self._thread.join(timeout=5.0)


def serve_registry(registry: CollectorRegistry, host: str, port: int, flag: str) -> MetricsServer:
    """Serve `registry` at http://host:port/metrics from a daemon thread."""
    try:
        server, thread = start_http_server(port, host, registry=registry)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}; choose a free "
            f"port with {flag}, or stop what is using it"
        ) from None
    return MetricsServer(server, thread)
