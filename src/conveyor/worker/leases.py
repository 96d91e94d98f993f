"""The lease keeper: renews every lease a worker holds, in one batched `extend` per interval,
on its own thread, independent of the tasks (a task may run far longer than the lease). It does
renewals only: heartbeats and purges are services with threads of their own (services.py), so
no housekeeping delays a renewal.

A lease the broker reports lost (it expired, e.g. because this process was stopped past it, and
may have been granted to another worker) is marked lost and logged; the worker then neither acks
it nor writes its outcome. Callers `drop` a lease *before* settling it, so the keeper never
mistakes a lease it is settling for a lost one.

Everything is keyed by the exact lease — message id *and* fencing token — never by message id
alone: a worker paused past a lease may be handed the same message again under a new token
while a renewal of the old lease is still on its way. That renewal's verdict belongs to the old
lease only; the new one stays held, and settling either never touches the other.

Each lease found lost is also handed, with what `hold` was given about it, to `on_lost` (the
worker emits `task-lease-lost`); it is called on the renewing thread, so it must return at once.

A renewal that comes back flagged `revoked` is queued once for the worker (`take_revoked`),
which drops the message if it has not started, or kills its run when `terminate` is set.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..brokers.base import Broker, Lease

if TYPE_CHECKING:
    from .settle import Inflight

OnLost = Callable[[Lease, "Inflight | None"], None]

log = logging.getLogger("conveyor.worker")

_Key = tuple[str, int]  # (message id, fencing token): one grant of one message


def _key(lease: Lease) -> _Key:
    return (lease.message_id, lease.token)


class LeaseKeeper:
    def __init__(
        self,
        broker: Broker,
        lease_for: float,
        interval: float | None = None,
        on_lost: OnLost | None = None,
    ) -> None:
        self._broker = broker
        self._on_lost = on_lost
        self._about: dict[_Key, Inflight] = {}
        self._lease_for = lease_for
        # Renew at a third of the lease: two renewals may fail before the lease runs out.
        self.interval = interval if interval is not None else lease_for / 3.0
        self._held: dict[_Key, Lease] = {}
        self._lost: set[_Key] = set()
        self._revoked: dict[_Key, Lease] = {}
        self._told: set[_Key] = set()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, lease: Lease, about: Inflight | None = None) -> None:
        """Renew `lease` from now on, until it is dropped or found lost (`about`: the call it
        is for, handed to `on_lost` if it is lost)."""
        with self._lock:
            self._held[_key(lease)] = lease
            if about is not None:
                self._about[_key(lease)] = about
            self._lost.discard(_key(lease))

    def drop(self, lease: Lease) -> bool:
        """Stop renewing `lease` (matched by message id and token; its expiry is not read),
        before settling it. Returns False if that lease had been found lost: its holder must
        not settle it. Another lease of the same message is not touched."""
        key = _key(lease)
        with self._lock:
            self._held.pop(key, None)
            self._about.pop(key, None)
            self._told.discard(key)
            self._revoked.pop(key, None)
            if key in self._lost:
                self._lost.discard(key)
                return False
            return True

    def held(self) -> int:
        with self._lock:
            return len(self._held)

    def renew_once(self) -> list[Lease]:
        """Extend all held leases in one call; returns the leases found lost."""
        with self._lock:
            leases = list(self._held.values())
        if not leases:
            return []
        renewed = self._broker.extend(leases, self._lease_for)
        lost: list[Lease] = []
        about: list[Inflight | None] = []
        with self._lock:
            for old, new in zip(leases, renewed, strict=True):
                key = _key(old)
                if key not in self._held:
                    continue  # settled meanwhile
                if new is None:
                    self._lost.add(key)
                    del self._held[key]
                    lost.append(old)
                    about.append(self._about.pop(key, None))
                else:
                    self._held[key] = new
                    if new.revoked and key not in self._told:
                        self._told.add(key)
                        self._revoked[key] = new
        for lease, item in zip(lost, about, strict=True):
            log.warning(
                "lease lost: message %s (token %d) will not be acknowledged or recorded here; "
                "the broker redelivers it",
                lease.message_id,
                lease.token,
            )
            if self._on_lost is not None:
                self._on_lost(lease, item)
        return lost

    def take_revoked(self, held: Callable[[Lease], bool] = lambda _: True) -> list[Lease]:
        """Leases found revoked since the last call that `held` claims (each reported once;
        each slot group takes its own grants: message id and token)."""
        with self._lock:
            found = {k: lease for k, lease in self._revoked.items() if held(lease)}
            for key in found:
                del self._revoked[key]
            return list(found.values())

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="conveyor-leases", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stopped.wait(self.interval):
            try:
                self.renew_once()
            except Exception:
                log.exception("lease renewal failed; retrying in %.1fs", self.interval)

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(5.0)
