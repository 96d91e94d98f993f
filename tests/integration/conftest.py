"""Where the real-process tests run. Plain tests use an SQLite file; a test marked
`every_backend` runs once per backend — SQLite, Redis (a key prefix of its own) and PostgreSQL
(a schema of its own) — with the same assertions. Server-backed places are removed afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conveyor import Conveyor

from .. import services
from .helpers import Remote, Where, url_of

BACKENDS = ("sqlite", "redis", "postgres")
Places = Callable[[str], Where]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "every_backend: run the test on SQLite, Redis and PostgreSQL"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("every_backend"):
        metafunc.parametrize("backend_name", BACKENDS)


@pytest.fixture
def backend_name() -> str:
    return "sqlite"


@pytest.fixture
def places(backend_name: str, tmp_path: Path) -> Iterator[Places]:
    """Makes fresh, empty places on the test's backend; removes them when the test ends."""
    if backend_name == "redis":
        services.require_redis()
    if backend_name == "postgres":
        services.require_postgres()
    made: list[str] = []

    def make(name: str) -> Where:
        tag = f"{name}_{uuid.uuid4().hex[:10]}"
        made.append(tag)
        if backend_name == "redis":
            return Remote(services.redis_url(tag), tmp_path)
        if backend_name == "postgres":
            return Remote(services.postgres_url(f"it_{tag}"), tmp_path)
        return tmp_path / f"{name}.db"

    yield make
    for tag in made:
        if backend_name == "redis":
            services.drop_prefix(tag)
        elif backend_name == "postgres":
            services.drop_schema(f"it_{tag}")


@pytest.fixture
def db(places: Places) -> Where:
    return places("conveyor")


@pytest.fixture
def reader(db: Where) -> Iterator[Conveyor]:
    """This test process's own view of the shared broker and store (the third process)."""
    app = Conveyor("reader", broker=url_of(db), set_as_current=False)
    yield app
    app.close()
