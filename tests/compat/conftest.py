"""The compatibility suite: Celery-shaped projects (renames only) run for real on SQLite and
Redis. Each test takes `compat_url`, a fresh broker-and-results URL of its own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .. import services

COMPAT_BACKENDS = ("sqlite", "redis")


@pytest.fixture(params=COMPAT_BACKENDS)
def compat_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL for broker and results: an SQLite file in tmp_path, or a Redis key prefix of the
    test's own (deleted afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'compat.db'}"
        return
    services.require_redis()
    tag = f"compat_{uuid.uuid4().hex[:10]}"
    try:
        yield services.redis_url(tag)
    finally:
        services.drop_prefix(tag)
