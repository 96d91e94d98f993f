"""Building and sending calls for the app: the messages and envelopes of calls of one task
(`Calls`), and `send_many`'s sender that stores one chunk while the next is built (`Sender`).
Split from app.py, which uses both; nothing here holds state beyond one send.

The publish signals are sent here: before_task_publish as each call's envelope is built (just
before it is handed to the broker; its receivers may add, change or remove the call's own
headers, which are then sent — see `own_headers`), after_task_publish for each call the
broker stored. Whether anyone listens is asked once per `Calls`, so with no receiver
`send_many` builds nothing more."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec

from . import signals
from .brokers.base import Broker, Envelope
from .canvas.dicts import plain_arguments
from .events import EventType, TaskSent, producer_name
from .message import (
    NO_LINKS,
    Links,
    Message,
    compress_body,
    encode_message,
    new_task_id,
    plain_body,
)
from .options import CallOptions, TaskOptions, check_compression
from .request import current_request
from .routing import Decision
from .task import Task

if TYPE_CHECKING:
    from .app import Conveyor


class Sender:
    """Sends the chunks of `send_many` one at a time on a thread of its own, so the next chunk
    is built while the broker stores the last one. A chunk is sent only after the one before it
    was acknowledged; the first failure is raised (at the next `send` or on leaving the block)
    and nothing after it is sent. `on_sent` is given what the broker newly stored of each chunk."""

    def __init__(self, broker: Broker, on_sent: Callable[[list[Envelope]], None]) -> None:
        self._broker = broker
        self._on_sent = on_sent
        self._chunk: list[Envelope] = []
        self._pending: Future[list[bool]] | None = None
        self._pool: ThreadPoolExecutor | None = None

    def __enter__(self) -> Sender:
        return self

    def send(self, chunk: list[Envelope]) -> None:
        self._wait()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="conveyor-send-many")
        self._chunk = chunk
        self._pending = self._pool.submit(self._broker.enqueue, chunk)

    def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            stored = pending.result()
            self._on_sent([e for e, new in zip(self._chunk, stored, strict=True) if new])

    def __exit__(self, *exc: object) -> None:
        try:
            self._wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown()


class Calls:
    """Builds the messages and envelopes of calls of one task with the same call options:
    what is the same for every call (clock reading, delays, expiry, parent, route when it does
    not depend on arguments) is worked out once, so `send_many` pays it once per batch."""

    def __init__(self, app: Conveyor, name: str, call: CallOptions, task: Task | None) -> None:
        self.app, self.name, self.call, self.task = app, name, call, task
        settings = app.conf.settings
        opts = task.options if task is not None else TaskOptions()
        now = app.clock.now()
        eta = app.to_epoch(call.eta) if call.eta is not None else None
        delay = call.countdown if call.countdown is not None else (eta - now if eta else 0.0)
        self.delay = max(0.0, delay)
        self.eta = now + delay if delay > 0 else None
        expires = call.expires if call.expires is not None else opts.expires
        self.expires = None
        if expires is not None:
            self.expires = (
                app.to_epoch(expires) if isinstance(expires, datetime) else now + float(expires)
            )
        parent = current_request()
        self.parent_id = parent.id if parent is not None else None
        self.root_id = (parent.root_id or self.parent_id) if parent is not None else None
        self.max_size = settings.task_message_max_size
        self.max_deliveries = opts.max_deliveries or settings.task_max_deliveries
        self._same_route = not app.route_table.depends_on_args
        self._decision: Decision | None = None
        self._before = bool(signals.before_task_publish.receivers)
        self._headers = dict(call.headers)  # one copy shared by this batch's (frozen) messages
        self._after = bool(signals.after_task_publish.receivers)
        # apply_async(compression=), else the task's option, else task_compression (Celery's
        # order); checked where each was given.
        self.compression = call.compression or check_compression(opts.compression)
        if self.compression is None:
            self.compression = check_compression(settings.task_compression, "task_compression")

    def message(
        self,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        task_id: str | None = None,
        links: Links = NO_LINKS,
    ) -> Message:
        call = self.call
        args, kwargs = plain_arguments(args, kwargs)  # canvas: signatures in Celery's dict form
        return Message(
            chain=links.chain,
            chord=links.chord,
            join=links.join,
            link=links.link,
            link_error=links.link_error,
            id=task_id or new_task_id(),
            task=self.name,
            args=args,
            kwargs=kwargs,
            eta=self.eta,
            sent_at=self.app.clock.now(),  # per call: a long send_many's last are sent later
            expires=self.expires,
            parent_id=self.parent_id,
            root_id=self.root_id,
            time_limit=call.time_limit,
            soft_time_limit=call.soft_time_limit,
            headers=self._headers,
            ignore_result=call.ignore_result,
            shadow=call.shadow,
        )

    def announce(self, envelopes: Sequence[Envelope]) -> None:
        """Send after_task_publish and emit task-sent for calls the broker stored (nothing is
        built when nobody listens)."""
        if self._after:
            for envelope in envelopes:
                body = msgspec.json.decode(plain_body(envelope.body))
                signals.after_task_publish.send(
                    sender=self.name,
                    body=body,
                    exchange="",
                    routing_key=envelope.queue,
                    headers=self.headers(body),
                )
        if self.app.conf.settings.task_send_sent_event:
            self.app.publish_sent_events()
        bus = self.app.events
        if not bus.wanted(EventType.TASK_SENT):
            return
        now, host = self.app.clock.now(), producer_name()
        for envelope in envelopes:
            bus.emit(
                TaskSent(
                    hostname=host,
                    timestamp=now,
                    uuid=envelope.id,
                    name=self.call.shadow or self.name,
                    queue=envelope.queue,
                    priority=envelope.priority,
                    eta=self.eta,
                    expires=self.expires,
                    parent_id=self.parent_id,
                    root_id=self.root_id,
                )
            )

    def envelope(self, message: Message) -> Envelope:
        decision = self._decision
        if decision is None:
            decision = self.app.route(self.name, self.task, self.call, message.args, message.kwargs)
            if self._same_route:
                self._decision = decision
        body = encode_message(message, self.max_size)
        if self._before:
            body = self._before_publish(message, body, decision)
        if self.compression is not None:
            body = compress_body(body, self.compression)
        return Envelope(
            id=message.id,
            queue=decision.queue,
            body=body,
            priority=decision.priority,
            delay=self.delay,
            max_deliveries=self.max_deliveries,
        )

    def _before_publish(self, message: Message, body: bytes, decision: Decision) -> bytes:
        """Send before_task_publish; return the body to store: encoded again with the call's
        headers as the receivers left them, when they changed any of them (see `own_headers`)."""
        seen = msgspec.json.decode(body)
        headers = self.headers(seen)
        signals.before_task_publish.send(
            sender=self.name,
            body=seen,
            exchange="",
            routing_key=decision.queue,
            headers=headers,
            properties={"correlation_id": message.id, "priority": decision.priority},
            declare=[],
            retry_policy=None,
        )
        own = own_headers(headers, message.headers)
        if own == message.headers:
            return body
        return encode_message(msgspec.structs.replace(message, headers=own), self.max_size)

    def headers(self, body: dict[str, Any]) -> dict[str, Any]:
        """Celery-style (protocol 2) headers of a call, from its message `body`: the call's own
        headers (`Message.headers`) first, then `id`, `task`, `lang`, `root_id`, `parent_id`,
        `eta`, `expires` (epoch seconds), `retries`, `timelimit` ([hard, soft]) and `origin`."""
        return {
            **body.get("headers", {}),
            "lang": "py",
            "task": self.name,
            "id": body["id"],
            "root_id": body.get("root_id"),
            "parent_id": body.get("parent_id"),
            "eta": body.get("eta"),
            "expires": body.get("expires"),
            "retries": body.get("retries", 0),
            "timelimit": [body.get("time_limit"), body.get("soft_time_limit")],
            "origin": producer_name(),
        }


#: The keys of `Calls.headers` that conveyor fills in from the message itself.
PROTOCOL_HEADERS = frozenset(
    {
        "lang",
        "task",
        "id",
        "root_id",
        "parent_id",
        "eta",
        "expires",
        "retries",
        "timelimit",
        "origin",
    }
)


def own_headers(seen: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """The call's own headers after before_task_publish receivers saw them as `seen` (the
    Celery-style headers): every key that is not one of conveyor's (`PROTOCOL_HEADERS`) as the
    receivers left it, so they can add, change and remove them. A key of conveyor's is never
    taken from `seen`: it shows the message's own value there, and changing it changes nothing;
    a header of the caller's with such a name (`given`) is kept as the caller gave it."""
    own = {k: v for k, v in seen.items() if k not in PROTOCOL_HEADERS}
    own.update((k, v) for k, v in given.items() if k in PROTOCOL_HEADERS)
    return own
