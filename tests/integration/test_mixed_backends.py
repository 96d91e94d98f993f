"""Any broker with any result store: the seed's `broker="redis://…", backend="postgresql://…"`
(and the reverse), with a real worker process: the call goes through Redis, its outcome lands
in PostgreSQL, where it outlives the broker's keys."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor import Conveyor

from .. import services
from .helpers import Remote, python, wait_until, worker

pytestmark = pytest.mark.slow


@pytest.fixture
def urls() -> Iterator[tuple[str, str]]:
    services.require_redis()
    services.require_postgres()
    tag = f"mixed_{uuid.uuid4().hex[:10]}"
    yield services.redis_url(tag), services.postgres_url(tag)
    services.drop_prefix(tag)
    services.drop_schema(tag)


@pytest.mark.parametrize("redis_is_broker", [True, False], ids=["redis-postgres", "postgres-redis"])
def test_a_broker_of_one_kind_with_a_result_store_of_another(
    urls: tuple[str, str], redis_is_broker: bool, tmp_path: Path
) -> None:
    redis_url, postgres_url = urls
    broker, backend = (redis_url, postgres_url) if redis_is_broker else (postgres_url, redis_url)
    place = Remote(broker, tmp_path)
    env = {"CONVEYOR_RESULT_BACKEND": backend}
    task_id = python(place, "import sample_app as s; print(s.add.delay(2, 3).id)", **env)
    task_id_text = task_id.stdout.strip()
    reader = Conveyor("reader", broker=broker, backend=backend, set_as_current=False)
    try:
        with worker(place, "-P", "threads", "-c", "1", **env):
            assert reader.AsyncResult(task_id_text).get(timeout=60) == 5
        assert type(reader.results).__name__ == (
            "PostgresResultStore" if redis_is_broker else "RedisResultStore"
        )
        wait_until(lambda: reader.broker.queue_stats() == [], 30, "the message to be acked")
    finally:
        reader.close()
