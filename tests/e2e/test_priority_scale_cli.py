"""`conveyor call --priority` on an app's priority scale (task_queue_max_priority), mapped onto
conveyor's 0–9 as the producer API maps it."""

from __future__ import annotations

from pathlib import Path

from conveyor import Conveyor

from ..integration.helpers import conveyor, url_of


def test_call_priority_is_read_on_the_apps_scale(tmp_path: Path) -> None:
    db = tmp_path / "conveyor.db"
    sent = conveyor(db, "-A", "scaled_app", "call", "scaled.noop", "--priority", "200")
    assert sent.returncode == 0, sent.stderr
    reader = Conveyor("reader", broker=url_of(db), set_as_current=False)
    try:
        (stored,) = reader.broker.list_messages("celery")
        assert stored.envelope.priority == 7  # round(200 * 9 / 255)
    finally:
        reader.close()
    above = conveyor(db, "-A", "scaled_app", "call", "scaled.noop", "--priority", "256")
    assert above.returncode == 2 and "256" in above.stderr


def test_without_a_scale_a_priority_above_9_is_refused_naming_the_setting(tmp_path: Path) -> None:
    db = tmp_path / "conveyor.db"
    sent = conveyor(
        db, "-A", "sample_app", "call", "sample.add", "--args", "[1, 2]", "--priority", "12"
    )
    assert sent.returncode != 0
    assert "task_queue_max_priority" in sent.stderr
