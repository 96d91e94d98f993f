"""The lease keeper: renews every lease a worker holds, in one batched `extend` per interval,
on its own thread, independent of the tasks (a task may run far longer than the lease).

A lease the broker reports lost (it expired, e.g. because this process was stopped past it, and
may have been granted to another worker) is marked lost and logged; the worker then neither acks
it nor writes its outcome. Callers `drop` a lease *before* settling it, so the keeper never
mistakes a lease it is settling for a lost one.

A renewal that comes back flagged `revoked` is queued once for the worker (`take_revoked`),
which drops the message if it has not started, or kills its run when `terminate` is set.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from ..brokers.base import Broker, Lease

log = logging.getLogger("conveyor.worker")


class LeaseKeeper:
    def __init__(
        self,
        broker: Broker,
        lease_for: float,
        interval: float | None = None,
        on_tick: Callable[[], None] | None = None,
    ) -> None:
        self._broker = broker
        self._lease_for = lease_for
        # Renew at a third of the lease: two renewals may fail before the lease runs out.
        self.interval = interval if interval is not None else lease_for / 3.0
        self._on_tick = on_tick
        self._held: dict[str, Lease] = {}
        self._lost: set[str] = set()
        self._revoked: dict[str, Lease] = {}
        self._told: set[str] = set()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, lease: Lease) -> None:
        with self._lock:
            self._held[lease.message_id] = lease
            self._lost.discard(lease.message_id)

    def drop(self, message_id: str) -> bool:
        """Stop renewing; returns False if the lease had been lost."""
        with self._lock:
            self._held.pop(message_id, None)
            self._told.discard(message_id)
            self._revoked.pop(message_id, None)
            if message_id in self._lost:
                self._lost.discard(message_id)
                return False
            return True

    def held(self) -> int:
        with self._lock:
            return len(self._held)

    def renew_once(self) -> list[str]:
        """Extend all held leases in one call; returns the ids found lost."""
        with self._lock:
            leases = list(self._held.values())
        if not leases:
            return []
        renewed = self._broker.extend(leases, self._lease_for)
        lost: list[str] = []
        with self._lock:
            for old, new in zip(leases, renewed, strict=True):
                if old.message_id not in self._held:
                    continue  # settled meanwhile
                if new is None:
                    self._lost.add(old.message_id)
                    del self._held[old.message_id]
                    lost.append(old.message_id)
                else:
                    self._held[old.message_id] = new
                    if new.revoked and old.message_id not in self._told:
                        self._told.add(old.message_id)
                        self._revoked[old.message_id] = new
        for mid in lost:
            log.warning(
                "lease lost: message %s will not be acknowledged or recorded here; the "
                "broker redelivers it to another worker",
                mid,
            )
        return lost

    def take_revoked(self, held: Callable[[str], bool] = lambda _: True) -> list[Lease]:
        """Leases found revoked since the last call whose message `held` claims (each
        reported once; each slot group takes its own)."""
        with self._lock:
            found = [lease for mid, lease in self._revoked.items() if held(mid)]
            for lease in found:
                del self._revoked[lease.message_id]
            return found

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="conveyor-leases", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stopped.wait(self.interval):
            try:
                self.renew_once()
                if self._on_tick is not None:
                    self._on_tick()
            except Exception:
                log.exception("lease renewal failed; retrying in %.1fs", self.interval)

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(5.0)
