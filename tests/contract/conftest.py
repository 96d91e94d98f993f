"""Backends under the contract suite. Each factory builds a fresh, isolated instance on a
FakeClock; a backend joins the suite by adding a factory here."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conveyor.brokers.base import Broker
from conveyor.brokers.memory import MemoryBroker
from conveyor.brokers.sqlite import SqliteBroker
from conveyor.clock import FakeClock
from conveyor.results.base import ResultStore
from conveyor.results.memory import MemoryResultStore
from conveyor.results.sqlite import SqliteResultStore

WINDOW = 3600.0
TTL = 600.0

BrokerFactory = Callable[[FakeClock, Path], Broker]
StoreFactory = Callable[[FakeClock, Path, "float | None"], ResultStore]

BROKERS: dict[str, BrokerFactory] = {
    "memory": lambda clock, tmp: MemoryBroker(clock, WINDOW),
    "sqlite": lambda clock, tmp: SqliteBroker(tmp / "broker.db", "normal", clock, WINDOW),
}
STORES: dict[str, StoreFactory] = {
    "memory": lambda clock, tmp, ttl: MemoryResultStore(ttl, clock),
    "sqlite": lambda clock, tmp, ttl: SqliteResultStore(tmp / "results.db", "normal", ttl, clock),
}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=sorted(BROKERS))
def broker(request: pytest.FixtureRequest, clock: FakeClock, tmp_path: Path) -> Iterator[Broker]:
    b = BROKERS[request.param](clock, tmp_path)
    yield b
    b.close()


@pytest.fixture(params=sorted(STORES))
def make_store(
    request: pytest.FixtureRequest, clock: FakeClock, tmp_path: Path
) -> Iterator[Callable[[float | None], ResultStore]]:
    made: list[ResultStore] = []

    def make(ttl: float | None = TTL) -> ResultStore:
        store = STORES[request.param](clock, tmp_path, ttl)
        made.append(store)
        return store

    yield make
    for s in made:
        s.close()
