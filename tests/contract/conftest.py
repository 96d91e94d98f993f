"""Backends under the contract suite. Each factory builds a fresh, isolated instance on a
FakeClock; a backend joins the suite by adding a factory here."""

from __future__ import annotations

import hashlib
import uuid
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
from conveyor.scheduler.stores.base import ScheduleStore
from conveyor.scheduler.stores.memory import MemoryScheduleStore
from conveyor.scheduler.stores.sqlite import SqliteScheduleStore

from .. import services

WINDOW = 3600.0
TTL = 600.0

BrokerFactory = Callable[[FakeClock, Path], Broker]
StoreFactory = Callable[[FakeClock, Path, "float | None"], ResultStore]


def _redis_broker(clock: FakeClock, tmp: Path) -> Broker:
    from conveyor.brokers.redis import RedisBroker

    return RedisBroker(services.redis_url(f"contract-{uuid.uuid4().hex[:12]}"), clock, WINDOW)


def _schema(tmp: Path) -> str:
    # one schema per test directory: backends made twice in one test share it, like one file
    return "ct_" + hashlib.sha1(str(tmp).encode()).hexdigest()[:12]


def _postgres_broker(clock: FakeClock, tmp: Path) -> Broker:
    from conveyor.brokers.postgres import PostgresBroker

    return PostgresBroker(services.postgres_url(_schema(tmp)), clock, WINDOW)


BROKERS: dict[str, BrokerFactory] = {
    "memory": lambda clock, tmp: MemoryBroker(clock, WINDOW),
    "postgres": _postgres_broker,
    "sqlite": lambda clock, tmp: SqliteBroker(tmp / "broker.db", "normal", clock, WINDOW),
    "redis": _redis_broker,
}


def _redis_store(clock: FakeClock, tmp: Path, ttl: float | None) -> ResultStore:
    from conveyor.results.redis import RedisResultStore

    # one prefix per test directory: stores made twice in one test share it, like one file
    prefix = "contract-" + hashlib.sha1(str(tmp).encode()).hexdigest()[:12]
    return RedisResultStore(services.redis_url(prefix), ttl, clock)


def _postgres_store(clock: FakeClock, tmp: Path, ttl: float | None) -> ResultStore:
    from conveyor.results.postgres import PostgresResultStore

    return PostgresResultStore(services.postgres_url(_schema(tmp)), ttl, clock)


STORES: dict[str, StoreFactory] = {
    "memory": lambda clock, tmp, ttl: MemoryResultStore(ttl, clock),
    "postgres": _postgres_store,
    "redis": _redis_store,
    "sqlite": lambda clock, tmp, ttl: SqliteResultStore(tmp / "results.db", "normal", ttl, clock),
}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=sorted(BROKERS))
def broker(request: pytest.FixtureRequest, clock: FakeClock, tmp_path: Path) -> Iterator[Broker]:
    if request.param == "redis":
        services.require_redis()
    if request.param == "postgres":
        services.require_postgres()
    b = BROKERS[request.param](clock, tmp_path)
    yield b
    services.drop_keys(b)
    b.close()


@pytest.fixture(params=sorted(STORES))
def make_store(
    request: pytest.FixtureRequest, clock: FakeClock, tmp_path: Path
) -> Iterator[Callable[[float | None], ResultStore]]:
    made: list[ResultStore] = []
    if request.param == "redis":
        services.require_redis()
    if request.param == "postgres":
        services.require_postgres()

    def make(ttl: float | None = TTL) -> ResultStore:
        store = STORES[request.param](clock, tmp_path, ttl)
        made.append(store)
        return store

    yield make
    for s in made:
        services.drop_keys(s)
        s.close()


def _redis_schedules(clock: FakeClock, tmp: Path) -> ScheduleStore:
    from conveyor.scheduler.stores.redis import RedisScheduleStore

    prefix = "contract-" + hashlib.sha1(str(tmp).encode()).hexdigest()[:12]
    return RedisScheduleStore(services.redis_url(prefix), clock)


def _postgres_schedules(clock: FakeClock, tmp: Path) -> ScheduleStore:
    from conveyor.scheduler.stores.postgres import PostgresScheduleStore

    return PostgresScheduleStore(services.postgres_url(_schema(tmp)), clock)


SCHEDULE_STORES: dict[str, Callable[[FakeClock, Path], ScheduleStore]] = {
    "memory": lambda clock, tmp: MemoryScheduleStore(clock),
    "postgres": _postgres_schedules,
    "redis": _redis_schedules,
    "sqlite": lambda clock, tmp: SqliteScheduleStore(tmp / "schedule.db", "normal", clock),
}


@pytest.fixture(params=sorted(SCHEDULE_STORES))
def make_schedules(
    request: pytest.FixtureRequest, clock: FakeClock, tmp_path: Path
) -> Iterator[Callable[[], ScheduleStore]]:
    """Makes schedule stores; a second one made in a test shares the first one's data (a
    second process), except on memory, which cannot be shared."""
    made: list[ScheduleStore] = []
    if request.param == "redis":
        services.require_redis()
    if request.param == "postgres":
        services.require_postgres()

    def make() -> ScheduleStore:
        if request.param == "memory" and made:
            return made[0]
        store = SCHEDULE_STORES[request.param](clock, tmp_path)
        made.append(store)
        return store

    yield make
    for s in made:
        services.drop_keys(s)
        s.close()
