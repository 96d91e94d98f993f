from __future__ import annotations

import random

import pytest

from conveyor.errors import RemoteError
from conveyor.options import TaskOptions
from conveyor.result import rebuild_exception
from conveyor.results.base import ErrorInfo
from conveyor.retry import backoff_delay, retries_exhausted
from conveyor.worker.naming import expand_node_name


def test_fixed_delay_without_backoff() -> None:
    assert backoff_delay(TaskOptions(default_retry_delay=7), 3) == 7


def test_exponential_backoff_capped_without_jitter() -> None:
    opts = TaskOptions(retry_backoff=2, retry_backoff_max=30, retry_jitter=False)
    assert [backoff_delay(opts, n) for n in range(6)] == [2, 4, 8, 16, 30, 30]
    assert backoff_delay(TaskOptions(retry_backoff=True, retry_jitter=False), 3) == 8


def test_full_jitter_stays_within_the_backoff() -> None:
    opts = TaskOptions(retry_backoff=True, retry_backoff_max=600)
    rng = random.Random(1)
    delays = [backoff_delay(opts, 4, rng) for _ in range(200)]
    assert all(0 <= d <= 16 for d in delays)
    assert len({round(d, 3) for d in delays}) > 100


def test_retries_exhausted() -> None:
    assert not retries_exhausted(3, 2)
    assert retries_exhausted(3, 3)
    assert not retries_exhausted(None, 10_000)


def test_builtin_exceptions_come_back_as_themselves() -> None:
    exc = rebuild_exception(ErrorInfo("KeyError", "missing", "tb", "builtins"))
    assert type(exc) is KeyError and exc.args == ("missing",)
    exc = rebuild_exception(ErrorInfo("UnicodeDecodeError", "bad byte", None, "builtins"))
    assert isinstance(exc, RemoteError)


def test_other_exceptions_are_never_imported() -> None:
    # Even a name that would import fine (and one that would run code) stays text.
    for module, name in [("os", "system"), ("json.decoder", "JSONDecodeError"), ("evil", "X")]:
        exc = rebuild_exception(ErrorInfo(name, "msg", "Traceback: ...", module))
        assert isinstance(exc, RemoteError)
        assert exc.type_name == f"{module}.{name}" and exc.message == "msg"
        assert exc.traceback == "Traceback: ..."


def test_builtin_name_from_another_module_is_not_trusted() -> None:
    exc = rebuild_exception(ErrorInfo("ValueError", "x", None, "mylib.errors"))
    assert isinstance(exc, RemoteError)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (None, "celery@web1.example.com"),
        ("fast@%h", "fast@web1.example.com"),
        ("slow@%n", "slow@web1"),
        ("w@%n.%d", "w@web1.example.com"),
        ("plain", "plain@web1.example.com"),
        ("a%%b@%h", "a%b@web1.example.com"),
    ],
)
def test_node_names_expand_like_celery(pattern: str | None, expected: str) -> None:
    assert expand_node_name(pattern, "web1.example.com") == expected
