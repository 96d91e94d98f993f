"""conveyor.tracing: a producer span around each send whose context travels in the call's
headers, and a consumer span around each run, its child, ended with ERROR on failure.

OpenTelemetry is part of the `dev` extra: these tests fail (not skip) without it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from conveyor import Conveyor, Task
from conveyor import signals as sig
from conveyor.testing import solo_worker
from conveyor.tracing import instrument, is_instrumented, uninstrument


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrument(tracer_provider=provider)
    yield exporter
    uninstrument()
    provider.shutdown()


@pytest.fixture
def app() -> Conveyor:
    app = Conveyor("traced", broker="memory://", set_as_current=False)

    @app.task(name="traced.add", bind=True)
    def add(self: Task, x: int, y: int) -> dict[str, Any]:
        current = trace.get_current_span().get_span_context()
        return {"sum": x + y, "span": format(current.span_id, "016x")}

    @app.task(name="traced.boom")
    def boom() -> None:
        raise ValueError("boom")

    @app.task(name="traced.again", bind=True, max_retries=2)
    def again(self: Task) -> int:
        if self.request.retries < 1:
            raise self.retry(exc=KeyError("not yet"), countdown=0)
        return self.request.retries

    return app


def spans(exporter: InMemorySpanExporter, kind: SpanKind) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.kind is kind]


def test_the_consumer_span_is_a_child_of_the_producer_span(
    app: Conveyor, exporter: InMemorySpanExporter
) -> None:
    res = app.tasks["traced.add"].apply_async((2, 3), queue="maths", headers={"mine": 1})
    (send,) = spans(exporter, SpanKind.PRODUCER)
    assert send.name == "send traced.add" and send.end_time is not None
    assert dict(send.attributes or {}) == {
        "messaging.system": "conveyor",
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "messaging.destination.name": "maths",
        "messaging.message.id": res.id,
        "conveyor.task.name": "traced.add",
    }
    solo_worker(app, queues=("maths",)).run_until_idle()
    value = res.get(timeout=1)
    (run,) = spans(exporter, SpanKind.CONSUMER)
    assert run.name == "process traced.add"
    assert run.context is not None and send.context is not None and run.parent is not None
    assert run.context.trace_id == send.context.trace_id
    assert run.parent.span_id == send.context.span_id
    assert value == {"sum": 5, "span": format(run.context.span_id, "016x")}  # current in the task
    attrs = dict(run.attributes or {})
    assert attrs["messaging.destination.name"] == "maths"
    assert attrs["messaging.message.id"] == res.id
    assert attrs["messaging.operation.type"] == "process"
    assert (attrs["conveyor.task.name"], attrs["conveyor.task.state"]) == ("traced.add", "SUCCESS")
    assert (attrs["conveyor.task.retries"], attrs["conveyor.task.attempt"]) == (0, 1)
    assert run.status.status_code is StatusCode.UNSET


def test_the_send_nests_under_the_callers_span_and_injects_traceparent(
    app: Conveyor, exporter: InMemorySpanExporter
) -> None:
    heard: list[dict[str, Any]] = []

    def after(headers: dict[str, Any], **kwargs: Any) -> None:
        heard.append(headers)

    sig.after_task_publish.connect(after, weak=False)
    try:
        tracer = trace.get_tracer("test", tracer_provider=exporter_provider(exporter))
        with tracer.start_as_current_span("request") as outer:
            res = app.tasks["traced.add"].delay(1, 1)
    finally:
        sig.after_task_publish.disconnect(after)
    (send,) = spans(exporter, SpanKind.PRODUCER)
    assert send.parent is not None and send.parent.span_id == outer.get_span_context().span_id
    assert send.context is not None
    ctx = send.context
    traceparent = f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"
    assert heard[0]["traceparent"] == traceparent  # sent in the call's own headers
    stored = app.broker.get_message(res.id)
    assert stored is not None and traceparent.encode() in stored.envelope.body


def exporter_provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def test_a_failing_run_ends_its_span_with_error_and_the_exception(
    app: Conveyor, exporter: InMemorySpanExporter
) -> None:
    app.tasks["traced.boom"].delay()
    solo_worker(app).run_until_idle()
    (run,) = spans(exporter, SpanKind.CONSUMER)
    assert run.status.status_code is StatusCode.ERROR
    assert run.status.description == "ValueError: boom"
    (event,) = run.events
    assert event.name == "exception"
    assert dict(event.attributes or {})["exception.type"] == "ValueError"
    assert dict(run.attributes or {})["conveyor.task.state"] == "FAILURE"


def test_each_run_of_a_retried_call_is_a_child_of_the_one_send(
    app: Conveyor, exporter: InMemorySpanExporter
) -> None:
    res = app.tasks["traced.again"].delay()
    solo_worker(app).run_until_idle()
    assert res.get(timeout=1) == 1
    (send,) = spans(exporter, SpanKind.PRODUCER)
    first, second = spans(exporter, SpanKind.CONSUMER)
    assert send.context is not None
    for run in (first, second):
        assert run.parent is not None and run.parent.span_id == send.context.span_id
    assert [dict(r.attributes or {})["conveyor.task.retries"] for r in (first, second)] == [0, 1]
    assert dict(first.attributes or {})["conveyor.task.state"] == "RETRY"
    assert first.status.status_code is StatusCode.UNSET
    assert [e.name for e in first.events] == ["exception"]  # the reason it retried


def test_an_eager_call_runs_under_the_callers_span(
    app: Conveyor, exporter: InMemorySpanExporter
) -> None:
    app.conf.task_always_eager = True
    tracer = trace.get_tracer("test", tracer_provider=exporter_provider(exporter))
    with tracer.start_as_current_span("caller") as outer:
        app.tasks["traced.add"].delay(1, 2)
    assert spans(exporter, SpanKind.PRODUCER) == []  # eager calls are not published
    (run,) = spans(exporter, SpanKind.CONSUMER)
    assert run.parent is not None and run.parent.span_id == outer.get_span_context().span_id
    assert "messaging.destination.name" not in dict(run.attributes or {})


def test_uninstrument_stops_tracing_and_instrument_twice_connects_once(app: Conveyor) -> None:
    exporter = InMemorySpanExporter()
    provider = exporter_provider(exporter)
    instrument(tracer_provider=provider)
    instrument(tracer_provider=provider)
    assert is_instrumented()
    app.tasks["traced.add"].delay(1, 2)
    assert len(spans(exporter, SpanKind.PRODUCER)) == 1
    uninstrument()
    assert not is_instrumented()
    app.tasks["traced.add"].delay(1, 2)
    assert len(spans(exporter, SpanKind.PRODUCER)) == 1


def test_without_opentelemetry_the_import_error_says_what_to_install() -> None:
    code = (
        "import sys\n"
        "sys.modules['opentelemetry'] = None\n"  # as if not installed
        "try:\n"
        "    import conveyor.tracing\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "pip install 'conveyor[otel]'" in out


def test_a_call_sent_while_a_task_runs_is_in_the_tasks_trace(
    app: Conveyor, exporter: InMemorySpanExporter
) -> None:
    @app.task(name="traced.fan")
    def fan() -> str:
        return app.tasks["traced.add"].delay(1, 2).id

    outer = app.tasks["traced.fan"].delay()
    solo_worker(app).run_until_idle()
    inner_id = outer.get(timeout=1)
    runs = {
        dict(s.attributes or {})["messaging.message.id"]: s
        for s in spans(exporter, SpanKind.CONSUMER)
    }
    sends = {
        dict(s.attributes or {})["messaging.message.id"]: s
        for s in spans(exporter, SpanKind.PRODUCER)
    }
    fan_run, inner_send, inner_run = runs[outer.id], sends[inner_id], runs[inner_id]
    assert fan_run.context is not None and inner_send.context is not None
    assert inner_send.parent is not None and inner_send.parent.span_id == fan_run.context.span_id
    assert inner_run.parent is not None and inner_run.parent.span_id == inner_send.context.span_id
    assert {s.context.trace_id for s in (fan_run, inner_send, inner_run) if s.context} == {
        fan_run.context.trace_id
    }


def test_a_pool_child_leaving_flushes_the_provider(app: Conveyor) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=3_600_000))
    instrument(tracer_provider=provider)
    try:
        app.tasks["traced.add"].delay(1, 2)
        assert exporter.get_finished_spans() == ()  # held by the batch processor
        sig.worker_process_shutdown.send(sender=None, pid=1, exitcode=0)
        assert [s.name for s in exporter.get_finished_spans()] == ["send traced.add"]
    finally:
        uninstrument()
        provider.shutdown()
