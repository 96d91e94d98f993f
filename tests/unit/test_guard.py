"""The connection guard: bounded retries for producers, patience for workers, and errors that
never carry credentials."""

from __future__ import annotations

import threading

import pytest

from conveyor._urls import scrub
from conveyor.errors import BackendUnavailable
from conveyor.guard import Guard

URL = "redis://:hunter2@cache:6379/0"


class Flaky:
    """Fails with ConnectionError `failures` times, then answers."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError(f"Error 111 connecting with {URL}")
        return "ok"


def test_transient_errors_are_retried_and_the_guard_recovers() -> None:
    guard = Guard("broker at cache", URL, (ConnectionError,), budget=5.0)
    flaky = Flaky(2)
    assert guard.call(flaky) == "ok"
    assert flaky.calls == 3 and guard.down is None


def test_a_producer_gets_a_clear_error_after_its_budget_without_the_password() -> None:
    guard = Guard("broker at redis://***@cache:6379/0", URL, (ConnectionError,), budget=0.3)
    with pytest.raises(BackendUnavailable, match="did not answer") as raised:
        guard.call(Flaky(10**9))
    assert "hunter2" not in str(raised.value) and raised.value.__cause__ is None
    assert guard.down is not None and "hunter2" not in guard.down[1]


def test_other_errors_are_not_retried() -> None:
    guard = Guard("broker", URL, (ConnectionError,), budget=5.0)
    calls = []

    def broken() -> None:
        calls.append(1)
        raise ValueError("a bug, not an outage")

    with pytest.raises(ValueError):
        guard.call(broken)
    assert calls == [1]


def test_a_patient_guard_waits_past_its_budget_until_told_to_stop() -> None:
    guard = Guard("broker", URL, (ConnectionError,), budget=0.01)
    stop = threading.Event()
    flaky = Flaky(6)  # backoff 0.05+0.1+0.2+0.4+0.8+1.0 s: far beyond the budget
    with guard.patient(stop):
        assert guard.call(flaky) == "ok"
        stop.set()
        with pytest.raises(BackendUnavailable, match="stopping"):
            guard.call(Flaky(1))
    assert guard.budget == 0.01  # producer mode again afterwards


def test_scrub_blanks_raw_and_encoded_passwords() -> None:
    url = "postgresql://app:p%40ss@db/x"
    assert scrub(f"failed for {url}: password p@ss or p%40ss", url) == (
        "failed for postgresql://app:***@db/x: password *** or ***"
    )


@pytest.mark.parametrize(
    "name",
    ["OutOfMemoryError", "ReadOnlyError", "MasterDownError", "TryAgainError", "BusyLoadingError"],
)
def test_redis_server_states_that_pass_are_retried(name: str) -> None:
    import redis

    from conveyor._redis import transient_errors

    error = getattr(redis.exceptions, name)("the server says no, for now")
    assert isinstance(error, transient_errors())
    # a verdict on the request itself is not retried
    assert not isinstance(redis.exceptions.ResponseError("WRONGTYPE"), transient_errors())


@pytest.mark.parametrize(
    "name", ["ReadOnlySqlTransaction", "SerializationFailure", "DeadlockDetected", "AdminShutdown"]
)
def test_postgres_server_states_that_pass_are_retried(name: str) -> None:
    import psycopg

    from conveyor._postgres import transient_errors

    assert isinstance(getattr(psycopg.errors, name)(), transient_errors())
    assert not isinstance(psycopg.errors.UniqueViolation(), transient_errors())
