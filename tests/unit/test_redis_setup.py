"""Opening the Redis backends: the missing-driver error, URLs without credentials, the key
prefix, and the eviction-policy warning (against the real test server)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from conveyor import ConfigurationError, Conveyor
from conveyor._redis import client_from_url
from conveyor._urls import safe_url

from .. import services


def test_a_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # what an environment without it gives
    app = Conveyor("x", broker="redis://127.0.0.1:6379/13", set_as_current=False)
    with pytest.raises(ConfigurationError, match=r'pip install "conveyor\[redis\]"'):
        app.broker  # noqa: B018


def test_urls_are_shown_without_credentials() -> None:
    assert safe_url("redis://:s3cret@cache:6380/2?prefix=p") == "redis://:***@cache:6380/2?prefix=p"
    assert safe_url("redis://user:pw@cache/0") == "redis://user:***@cache/0"
    assert safe_url("redis://cache/0") == "redis://cache/0"


def test_prefix_comes_from_the_url_and_is_checked() -> None:
    _, prefix = client_from_url("redis://127.0.0.1:6379/13?prefix=billing")
    assert prefix == "billing:{billing}"
    with pytest.raises(ConfigurationError, match="prefix="):
        client_from_url("redis://127.0.0.1:6379/13?prefix=a:b")


def test_an_evicting_server_policy_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    services.require_redis()
    from conveyor.brokers.redis import RedisBroker

    broker = RedisBroker(services.redis_url("evict-check"))
    client = broker._client
    before = str(client.config_get("maxmemory-policy")["maxmemory-policy"])
    try:
        client.config_set("maxmemory-policy", "allkeys-lru")
        with caplog.at_level(logging.WARNING, logger="conveyor.brokers.redis"):
            RedisBroker(services.redis_url("evict-check")).close()
    finally:
        client.config_set("maxmemory-policy", before)
        broker.close()
    assert "maxmemory-policy is allkeys-lru" in caplog.text


@pytest.mark.parametrize("persist", [False, True], ids=["no-persistence", "appendonly"])
def test_a_server_without_persistence_is_warned_about_once_per_process(
    persist: bool,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """A throwaway server of the test's own, run as the shared one is (`appendonly no`,
    `save ""`) or with an append-only file: the first is warned about once, the second never."""
    from conveyor import redis_persistence
    from conveyor.brokers.redis import RedisBroker

    from ..integration.servers import RedisServer

    server = RedisServer(tmp_path, persist=persist)
    server.start()
    url = f"redis://127.0.0.1:{server.port}/0?prefix=persist-check"
    try:
        monkeypatch.setattr(redis_persistence, "_warned", set())  # as in a fresh process
        with caplog.at_level(logging.WARNING, logger="conveyor.brokers.redis"):
            for _ in range(3):  # a producer's first send, a worker's start, another open
                RedisBroker(url).close()
    finally:
        server.stop()
    warnings = [r.getMessage() for r in caplog.records if "no persistence" in r.getMessage()]
    assert len(warnings) == (0 if persist else 1), warnings
    if not persist:
        assert 'appendonly no, save ""' in warnings[0] and "appendonly yes" in warnings[0]
        assert safe_url(url) in warnings[0]
        # everysec's loss is a crash of the machine's, not of Redis alone
        assert "in a crash of the machine" in warnings[0]
        assert "a crash of Redis alone loses nothing" in warnings[0]


def test_a_database_the_server_lacks_is_a_configuration_error_for_producers() -> None:
    """redis-py raises a refused SELECT as a bare ResponseError (a traceback); the handshake
    makes it a ConfigurationError naming the database and how many the server has."""
    services.require_redis()
    host = services.REDIS_URL.split("://", 1)[1].split("/", 1)[0]
    app = Conveyor("x", broker=f"redis://{host}/99?prefix=nodb", set_as_current=False)

    @app.task(name="x.add")
    def add(x: int, y: int) -> int:
        return x + y

    try:
        with pytest.raises(ConfigurationError) as raised:
            add.delay(1, 2)
    finally:
        app.close()
    message = str(raised.value)
    assert "has no database 99" in message and "CONFIG GET databases" in message
