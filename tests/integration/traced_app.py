"""An app with tracing instrumented and a before_task_publish receiver that adds a header, whose
tasks return `self.request.headers`. `export_spans_to_file()` (called by the producer, and by
each pool child in worker_process_init) writes every finished span as a JSON line, with the
process id, to the file named by TRACE_LOG."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from conveyor import Conveyor, Task
from conveyor import signals as sig
from conveyor.tracing import instrument

app = Conveyor("traced")
instrument()


class JsonLinesExporter(SpanExporter):
    """Appends each span to a file as one JSON line (one O_APPEND write per batch)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = "".join(json.dumps(_record(span)) + "\n" for span in spans)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, lines.encode())
        finally:
            os.close(fd)
        return SpanExportResult.SUCCESS


def _record(span: ReadableSpan) -> dict[str, Any]:
    ctx, parent = span.context, span.parent
    return {
        "pid": os.getpid(),
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": f"{ctx.trace_id:032x}" if ctx is not None else None,
        "span_id": f"{ctx.span_id:016x}" if ctx is not None else None,
        "parent_id": f"{parent.span_id:016x}" if parent is not None else None,
        "status": span.status.status_code.name,
        "attributes": dict(span.attributes or {}),
    }


def export_spans_to_file() -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesExporter(os.environ["TRACE_LOG"])))
    trace.set_tracer_provider(provider)


@sig.worker_process_init.connect
def _child_tracing(**kwargs: Any) -> None:
    if "TRACE_LOG" in os.environ:
        export_spans_to_file()


@sig.before_task_publish.connect
def _add_header(headers: dict[str, Any], **kwargs: Any) -> None:
    headers["added"] = "by-receiver"


def _seen(task: Task) -> dict[str, Any]:
    req = task.request
    return {"headers": dict(req.headers), "retries": req.retries, "pid": os.getpid()}


@app.task(name="traced.show", bind=True)
def show(self: Task) -> dict[str, Any]:
    return _seen(self)


@app.task(name="traced.flaky", bind=True, max_retries=2)
def flaky(self: Task) -> dict[str, Any]:
    if self.request.retries < 1:
        raise self.retry(countdown=0)
    return _seen(self)


@app.task(name="traced.boom")
def boom() -> None:
    raise ValueError("boom in the child")
