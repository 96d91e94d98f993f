from __future__ import annotations

from collections.abc import Iterator

import pytest

from conveyor import Conveyor
from conveyor.clock import FakeClock


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def mem_app(fake_clock: FakeClock) -> Iterator[Conveyor]:
    """An app on the memory broker and store, driven by a FakeClock."""
    app = Conveyor("proj", broker="memory://", clock=fake_clock, set_as_current=False)
    yield app
    app.close()
