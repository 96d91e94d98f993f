from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor import Conveyor


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "conveyor.db"


@pytest.fixture
def reader(db: Path) -> Iterator[Conveyor]:
    """This test process's own view of the shared database (the third process)."""
    app = Conveyor("reader", broker=f"sqlite:///{db}", set_as_current=False)
    yield app
    app.close()
