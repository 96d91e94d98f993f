"""OpenTelemetry tracing of calls, through conveyor's signals (`pip install 'conveyor[otel]'`).

`instrument()` connects receivers to the publish and task signals of this process:

- **Producer span** (kind PRODUCER, named `send {task}`): started by `before_task_publish`, which
  also injects its context into the call's headers with the configured propagator (W3C
  `traceparent` by default), and ended by `after_task_publish` once the broker stored the call.
  Its parent is whatever span is current where the call is sent.
- **Consumer span** (kind CONSUMER, named `process {task}`): started by `task_prerun` in the
  process that runs the task (a pool child under `-P process`), its parent extracted from
  `self.request.headers`, and made current while the task runs, so spans the task starts (and
  calls it sends) are its children; ended by `task_postrun`, with status ERROR and the exception
  recorded when the run failed.

Attributes follow OpenTelemetry's messaging semantic conventions (`messaging.system` is
"conveyor", `messaging.destination.name` the queue, `messaging.message.id` the task id) plus
`conveyor.task.*`. Instrumentation is per process, like the signals it uses: call `instrument()`
where the app is imported (the app module) so every producer, worker and pool child has it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from contextvars import Token
from typing import Any

try:
    from opentelemetry import context as otel_context
    from opentelemetry import propagate, trace
    from opentelemetry.context import Context
    from opentelemetry.propagators.textmap import Getter
    from opentelemetry.trace import Span, SpanKind, Status, StatusCode
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "conveyor.tracing needs the OpenTelemetry API, which is not installed: "
        "pip install 'conveyor[otel]'"
    ) from exc

from . import __version__, signals
from .request import current_request

__all__ = ["instrument", "is_instrumented", "uninstrument"]

SYSTEM = "conveyor"

#: Producer spans waiting for their `after_task_publish` at most; a send the broker refused,
#: or that stored nothing new (an id it already held), never gets one, and its span is dropped
#: unexported once this many newer sends are waiting.
MAX_PENDING_SENDS = 10_000


class _HeaderGetter(Getter[Mapping[str, Any]]):
    """Reads propagation fields from a call's headers; a value that is not a string (headers
    are JSON) is not a propagation field."""

    def get(self, carrier: Mapping[str, Any], key: str) -> list[str] | None:
        value = carrier.get(key)
        return [value] if isinstance(value, str) else None

    def keys(self, carrier: Mapping[str, Any]) -> list[str]:
        return list(carrier)


_getter = _HeaderGetter()


class _Tracing:
    """The receivers `instrument()` connects, with the spans they have open: producer spans by
    task id until the broker stored the call, consumer spans by task id while the task runs."""

    def __init__(self, provider: trace.TracerProvider | None) -> None:
        self.provider = provider
        self.tracer = trace.get_tracer("conveyor", __version__, tracer_provider=provider)
        self._sending: OrderedDict[str, Span] = OrderedDict()
        self._running: dict[str, tuple[Span, Token[Context]]] = {}
        self._lock = threading.Lock()

    def before_publish(
        self,
        sender: str,
        body: Mapping[str, Any],
        routing_key: str,
        headers: dict[str, Any],
        **kwargs: Any,
    ) -> None:
        task_id = str(body["id"])
        span = self.tracer.start_span(
            f"send {sender}",
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": SYSTEM,
                "messaging.operation.type": "send",
                "messaging.operation.name": "send",
                "messaging.destination.name": routing_key,
                "messaging.message.id": task_id,
                "conveyor.task.name": sender,
            },
        )
        propagate.inject(headers, context=trace.set_span_in_context(span))
        with self._lock:
            self._sending[task_id] = span
            while len(self._sending) > MAX_PENDING_SENDS:
                self._sending.popitem(last=False)

    def after_publish(self, body: Mapping[str, Any], **kwargs: Any) -> None:
        with self._lock:
            span = self._sending.pop(str(body["id"]), None)
        if span is not None:
            span.end()

    def prerun(self, task_id: str, task: Any, **kwargs: Any) -> None:
        request = current_request()
        if request is None:  # task_prerun sent by hand, outside a run: nothing to trace
            return
        # Onto the current context: a call without a traceparent (an eager call, which is not
        # published) runs under the span current where it runs, if any.
        parent = propagate.extract(request.headers, otel_context.get_current(), _getter)
        attributes: dict[str, Any] = {
            "messaging.system": SYSTEM,
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.message.id": task_id,
            "conveyor.task.name": task.name,
            "conveyor.task.retries": request.retries,
            "conveyor.task.attempt": request.attempt,
        }
        queue = request.delivery_info.get("queue")
        if queue is not None:
            attributes["messaging.destination.name"] = queue
        span = self.tracer.start_span(
            f"process {task.name}", context=parent, kind=SpanKind.CONSUMER, attributes=attributes
        )
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        self._running[task_id] = (span, token)

    def postrun(self, task_id: str, retval: Any, state: str, **kwargs: Any) -> None:
        found = self._running.pop(task_id, None)
        if found is None:
            return
        span, token = found
        try:
            span.set_attribute("conveyor.task.state", state)
            if state == "FAILURE" and isinstance(retval, BaseException):
                span.record_exception(retval)
                span.set_status(Status(StatusCode.ERROR, f"{type(retval).__name__}: {retval}"))
            elif state == "RETRY":
                cause = getattr(retval, "exc", None)
                if isinstance(cause, BaseException):
                    span.record_exception(cause)
            span.end()
        finally:
            otel_context.detach(token)

    def process_shutdown(self, **kwargs: Any) -> None:
        """Export what a pool child's span processors still hold before the child leaves."""
        provider = self.provider if self.provider is not None else trace.get_tracer_provider()
        flush = getattr(provider, "force_flush", None)
        if callable(flush):
            flush()


_CONNECTIONS = (
    (signals.before_task_publish, "before_publish"),
    (signals.after_task_publish, "after_publish"),
    (signals.task_prerun, "prerun"),
    (signals.task_postrun, "postrun"),
    (signals.worker_process_shutdown, "process_shutdown"),
)
_installed: _Tracing | None = None
_install_lock = threading.Lock()


def instrument(*, tracer_provider: trace.TracerProvider | None = None) -> None:
    """Trace every call this process sends and every task it runs (see the module docstring).
    Spans go to `tracer_provider`, else to the global one (`trace.set_tracer_provider`, which
    may be set later: in `worker_process_init`, for instance). Calling it again replaces the
    provider; spans already open end where they started."""
    global _installed
    with _install_lock:
        if _installed is not None:
            _disconnect()
        _installed = _Tracing(tracer_provider)
        for signal, method in _CONNECTIONS:
            signal.connect(getattr(_installed, method), weak=False, dispatch_uid=_uid(method))


def uninstrument() -> None:
    """Stop tracing: disconnect the receivers `instrument()` connected. Spans still open are
    left unended (not exported)."""
    global _installed
    with _install_lock:
        if _installed is not None:
            _disconnect()
            _installed = None


def is_instrumented() -> bool:
    """True between `instrument()` and `uninstrument()`."""
    return _installed is not None


def _disconnect() -> None:
    for signal, method in _CONNECTIONS:
        signal.disconnect(dispatch_uid=_uid(method))


def _uid(method: str) -> str:
    return f"conveyor.tracing.{method}"
