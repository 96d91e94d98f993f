from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from conveyor import Conveyor
from conveyor.clock import FakeClock


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: two test runners per core. Most tests wait on real worker processes and
    servers rather than compute (a run at one runner per core kept the cores about 60% busy),
    so twice as many runners finish the suite sooner without starving anyone."""
    return 2 * (len(os.sched_getaffinity(0)) or 1)


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def mem_app(fake_clock: FakeClock) -> Iterator[Conveyor]:
    """An app on the memory broker and store, driven by a FakeClock."""
    app = Conveyor("proj", broker="memory://", clock=fake_clock, set_as_current=False)
    yield app
    app.close()
