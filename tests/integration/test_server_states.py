"""A result store that takes no writes for a while is an outage, not a verdict on the calls.

A real worker process (broker: an SQLite file; result store: a Redis or PostgreSQL server of the
test's own) finishes calls while its result store is out of memory (`maxmemory` with
`noeviction`), a read-only replica, or a PostgreSQL database whose transactions are read-only.
The worker must wait, not fail the calls or dead-letter them: their leases run out and the
broker delivers them again, and once the server takes writes again every call ends SUCCESS."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor import Conveyor
from conveyor.result import AsyncResult

from .helpers import log_of, start_worker, stop_worker, wait_until
from .servers import SECRET, PostgresServer, RedisServer, free_port

pytestmark = pytest.mark.slow

CALLS = 3


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path, persist=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _redis_client(server: RedisServer) -> Any:
    import redis

    return redis.Redis(port=server.port, password=SECRET)


def _out_of_memory(server: RedisServer) -> tuple[Callable[[], None], Callable[[], None]]:
    client = _redis_client(server)

    def spoil() -> None:
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("maxmemory", "1")  # every write that needs memory is refused: OOM

    def mend() -> None:
        client.config_set("maxmemory", "0")

    return spoil, mend


def _read_only(server: RedisServer) -> tuple[Callable[[], None], Callable[[], None]]:
    client = _redis_client(server)

    def spoil() -> None:
        # a replica of a master that never answers: it keeps its data and refuses writes
        client.replicaof("127.0.0.1", str(free_port()))

    def mend() -> None:
        client.replicaof("NO", "ONE")  # promoted, as after a failover

    return spoil, mend


def _settles_after_the_server_takes_writes_again(
    tmp_path: Path,
    backend: str,
    spoil: Callable[[], None],
    mend: Callable[[], None],
    error: str,
) -> None:
    broker = f"sqlite:///{tmp_path / 'broker.db'}"
    reader = Conveyor("reader", broker=broker, backend=backend, set_as_current=False)
    env = {"CONVEYOR_RESULT_BACKEND": backend, "SAMPLE_VISIBILITY": "2"}
    proc = start_worker(tmp_path / "broker.db", "-P", "threads", "-c", "2", **env)
    try:
        wait_until(lambda: "sample.add" in reader.published_task_names(), 60, "the worker")
        assert reader.send_task("sample.add", (1, 1)).get(timeout=60) == 2
        spoil()
        calls = [reader.send_task("sample.add", (i, 1)) for i in range(CALLS)]
        wait_until(lambda: error in log_of(proc), 60, f"the worker to meet {error}")
        wait_until(
            lambda: all(_attempts(reader, c) >= 2 for c in calls),
            60,
            "the calls' leases to run out and the calls to be delivered again",
        )
        assert _dead(reader) == 0  # nothing was failed or dead-lettered for the server's state
        assert all(_state(c) != "FAILURE" for c in calls)
        mend()
        assert [c.get(timeout=60) for c in calls] == [i + 1 for i in range(CALLS)]
        wait_until(lambda: _unsettled(reader) == 0, 60, "every call to be acked")
        assert _dead(reader) == 0
        assert "reachable again" in log_of(proc)
        assert "OutcomeNotStored" not in log_of(proc) and proc.poll() is None
    finally:
        stop_worker(proc)
        reader.close()


def _attempts(reader: Conveyor, call: AsyncResult) -> int:
    stored = reader.broker.get_message(call.id)
    return 0 if stored is None else stored.attempts


def _state(call: AsyncResult) -> str:
    return str(call.state)


def _dead(reader: Conveyor) -> int:
    return sum(s.dead for s in reader.broker.queue_stats())


def _unsettled(reader: Conveyor) -> int:
    return sum(s.ready + s.scheduled + s.leased for s in reader.broker.queue_stats())


@pytest.mark.parametrize(
    ("condition", "error"),
    [(_out_of_memory, "OutOfMemoryError"), (_read_only, "ReadOnlyError")],
    ids=["oom-noeviction", "read-only-replica"],
)
def test_a_redis_result_store_that_takes_no_writes_delays_the_calls_without_failing_them(
    tmp_path: Path,
    redis_server: RedisServer,
    condition: Callable[[RedisServer], tuple[Callable[[], None], Callable[[], None]]],
    error: str,
) -> None:
    spoil, mend = condition(redis_server)
    _settles_after_the_server_takes_writes_again(tmp_path, redis_server.url, spoil, mend, error)


def test_a_read_only_postgres_result_store_delays_the_calls_without_failing_them(
    tmp_path: Path,
) -> None:
    """`default_transaction_read_only`, set for the whole server and reloaded, reaches the
    worker's open connections at their next transaction (as on a standby during a failover)."""
    import psycopg

    server = PostgresServer()
    server.init()
    server.start()

    def setting(sql: str) -> None:
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute(sql)
            conn.execute("SELECT pg_reload_conf()")

    try:
        _settles_after_the_server_takes_writes_again(
            tmp_path,
            f"{server.url}?schema=conveyor_states",
            lambda: setting("ALTER SYSTEM SET default_transaction_read_only = on"),
            lambda: setting("ALTER SYSTEM RESET default_transaction_read_only"),
            "ReadOnlySqlTransaction",
        )
    finally:
        server.stop()


def test_a_producer_gets_backend_unavailable_and_deletes_still_free_memory(
    redis_server: RedisServer,
) -> None:
    """Out of memory, a producer's write waits its retry budget, then fails clearly naming
    the cause; forgetting an outcome (deletes, which free memory) still works."""
    from conveyor.errors import BackendUnavailable
    from conveyor.results.base import Outcome
    from conveyor.results.redis import RedisResultStore
    from conveyor.states import TaskState

    store = RedisResultStore(redis_server.url, retry_budget=0.5)
    try:
        store.put([Outcome("kept", TaskState.SUCCESS, value=b"1")])
        spoil, mend = _out_of_memory(redis_server)
        spoil()
        with pytest.raises(BackendUnavailable, match="OutOfMemoryError") as raised:
            store.put([Outcome("new", TaskState.SUCCESS, value=b"2")])
        assert SECRET not in str(raised.value)
        store.forget(["kept"])
        assert store.get_many(["kept", "new"]) == {}
        mend()
        assert store.put([Outcome("new", TaskState.SUCCESS, value=b"2")]) == [True]
    finally:
        store.close()
