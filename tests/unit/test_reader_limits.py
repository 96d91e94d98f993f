"""Every reader of stored values inflates them up to the app's own `result_max_size`, as the
error it gives past the limit tells users to raise: `AsyncResult.get`, `GroupResult.restore`,
`conveyor result` and `conveyor results`."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from conveyor import Conveyor, GroupResult
from conveyor.cli.context import CliContext
from conveyor.cli.history import results
from conveyor.cli.inspect_cmds import result
from conveyor.compression import DEFAULT_LIMIT
from conveyor.errors import DecodeError
from conveyor.results.base import GROUP_RECORD, Outcome
from conveyor.states import TaskState

IDS = [f"member-{i:020d}" for i in range(700_000)]  # about 19 MiB of JSON


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Conveyor]:
    app = Conveyor("limits", broker=f"sqlite:///{tmp_path / 'l.db'}", set_as_current=False)
    value = json.dumps(IDS).encode()
    assert len(value) > DEFAULT_LIMIT
    packed = gzip.compress(value, compresslevel=1, mtime=0)
    app.results.put([Outcome("big", TaskState.SUCCESS, value=packed, task_name="t")])
    app.results.put([Outcome("group", TaskState.SUCCESS, value=packed, task_name=GROUP_RECORD)])
    yield app
    app.close()


def test_readers_use_the_apps_result_max_size(app: Conveyor) -> None:
    runner = CliRunner()
    with pytest.raises(DecodeError, match="result_max_size"):  # the default 16 MiB refuses it
        GroupResult.restore("group", app)
    shown = runner.invoke(result, ["big", "--json"], obj=CliContext(None, None, _app=app))
    assert isinstance(shown.exception, DecodeError)

    app.conf.result_max_size = 32 << 20  # what the error says to do
    assert app.AsyncResult("big").get(timeout=1) == IDS
    restored = GroupResult.restore("group", app)
    assert restored is not None and [r.id for r in restored.results] == IDS
    shown = runner.invoke(result, ["big", "--json"], obj=CliContext(None, None, _app=app))
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["result"] == IDS
    listed = runner.invoke(results, ["--json"], obj=CliContext(None, None, _app=app))
    assert listed.exit_code == 0, listed.output
    assert [r["result"] for r in json.loads(listed.output)["results"]] == [IDS]
    table = runner.invoke(results, [], obj=CliContext(None, None, _app=app))
    assert table.exit_code == 0 and '["member-00000000000000000000"' in table.output
