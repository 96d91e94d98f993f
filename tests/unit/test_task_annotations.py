"""The task_annotations setting: a dict, a list, or objects with annotate(task); options per
task name or "*" applied as Celery applies them (the "*" entry last), hooks given in the
configuration, and refusals for what cannot be annotated."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor import Conveyor, Task
from conveyor.errors import ConfigurationError
from conveyor.signals import ExceptionInfo
from conveyor.states import TaskState
from conveyor.testing import solo_worker
from conveyor.worker.policy import policy_for


def test_a_dict_sets_options_by_task_name(mem_app: Conveyor) -> None:
    @mem_app.task(name="tasks.add", max_retries=3)
    def add(x: int, y: int) -> int:
        return x + y

    @mem_app.task(name="tasks.mul")
    def mul(x: int, y: int) -> int:
        return x * y

    mem_app.conf.task_annotations = {"tasks.add": {"rate_limit": "10/s", "max_retries": 7}}
    assert add.options.rate_limit == "10/s" and add.options.max_retries == 7
    assert add.declared_options.max_retries == 3
    assert mul.options.rate_limit is None
    policy = policy_for(add, mem_app.conf.settings)
    assert policy.rate_interval == pytest.approx(0.1)


def test_star_applies_to_every_task_and_wins_over_the_named_entry_as_in_celery(
    mem_app: Conveyor,
) -> None:
    @mem_app.task(name="tasks.add")
    def add() -> None: ...

    @mem_app.task(name="tasks.other")
    def other() -> None: ...

    mem_app.conf.task_annotations = {
        "tasks.add": {"time_limit": 30, "soft_time_limit": 20},
        "*": {"time_limit": 60},
    }
    assert (add.options.time_limit, add.options.soft_time_limit) == (60, 20)
    assert (other.options.time_limit, other.options.soft_time_limit) == (60, None)


class RateLimitTasksOf:
    """Celery's documented annotation class: options for the tasks of one module."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def annotate(self, task: Task) -> dict[str, Any] | None:
        if task.name.startswith(self.prefix):
            return {"rate_limit": "5/m"}
        return None


def test_objects_with_annotate_and_lists_of_annotations(mem_app: Conveyor) -> None:
    @mem_app.task(name="feeds.fetch")
    def fetch() -> None: ...

    @mem_app.task(name="mail.send")
    def send() -> None: ...

    mem_app.conf.task_annotations = [
        RateLimitTasksOf("feeds."),
        {"mail.send": {"max_retries": 1}, "feeds.fetch": {"max_retries": 9}},
    ]
    # The first annotation that gives something for a task is the one used for it.
    assert (fetch.options.rate_limit, fetch.options.max_retries) == ("5/m", 3)
    assert (send.options.rate_limit, send.options.max_retries) == (None, 1)


def test_options_follow_the_setting_when_it_changes(mem_app: Conveyor) -> None:
    @mem_app.task(name="t.x")
    def x() -> None: ...

    mem_app.conf.task_annotations = {"t.x": {"acks_late": False}}
    assert x.options.acks_late is False
    mem_app.conf.task_annotations = None
    assert x.options.acks_late is None


def test_an_annotated_on_failure_hook_runs_with_the_task_as_self(mem_app: Conveyor) -> None:
    heard: list[tuple[str, str, str]] = []

    def my_on_failure(
        self: Task, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: ExceptionInfo
    ) -> None:
        heard.append((self.name, task_id, type(einfo.exception).__name__))

    mem_app.conf.task_annotations = {"*": {"on_failure": my_on_failure}}

    @mem_app.task(name="t.fails")
    def fails() -> None:
        raise LookupError("gone")

    res = fails.delay()
    solo_worker(mem_app).run_until_idle()
    assert res.state == TaskState.FAILURE
    assert heard == [("t.fails", res.id, "LookupError")]


def test_an_annotated_time_limit_and_retries_reach_the_worker(mem_app: Conveyor) -> None:
    mem_app.conf.task_annotations = {"t.flaky": {"max_retries": 0}}

    @mem_app.task(name="t.flaky", bind=True, default_retry_delay=0)
    def flaky(self: Task) -> None:
        raise self.retry(exc=ValueError("no retries left"))

    res = flaky.delay()
    solo_worker(mem_app).run_until_idle()
    with pytest.raises(ValueError, match="no retries left"):
        res.get(timeout=1)


def test_what_cannot_be_annotated_is_refused_when_set(mem_app: Conveyor) -> None:
    with pytest.raises(ConfigurationError, match=r"'rate_limt' cannot be annotated.*rate_limit"):
        mem_app.conf.task_annotations = {"*": {"rate_limt": "1/s"}}
    with pytest.raises(ConfigurationError, match="rate_limit"):
        mem_app.conf.task_annotations = {"*": {"rate_limit": "fast"}}
    with pytest.raises(ConfigurationError, match="does not import classes named by strings"):
        mem_app.conf.task_annotations = ["proj.annotations.MyAnnotate"]
    with pytest.raises(ConfigurationError, match="wrapping a method"):
        mem_app.conf.task_annotations = {"*": {"@__call__": lambda f: f}}
    with pytest.raises(ConfigurationError, match="on_failure must be a function"):
        mem_app.conf.task_annotations = {"*": {"on_failure": 1}}
    with pytest.raises(ConfigurationError, match="annotate"):
        mem_app.conf.task_annotations = [42]
    assert mem_app.conf.settings.task_annotations == ()


def test_an_annotate_object_returning_something_odd_is_refused(mem_app: Conveyor) -> None:
    class Odd:
        def annotate(self, task: Task) -> Any:
            return ["rate_limit", "1/s"]

    @mem_app.task(name="t.odd")
    def odd() -> None: ...

    mem_app.conf.task_annotations = Odd()
    with pytest.raises(ConfigurationError, match="annotate\\(\\) returns a dict or None"):
        odd.options  # noqa: B018 - the property is what raises


def test_celerys_task_attributes_read_the_options_in_effect(mem_app: Conveyor) -> None:
    seen: list[tuple[int, int | None]] = []

    @mem_app.task(name="t.attrs", bind=True, max_retries=4, rate_limit="2/s")
    def attrs(self: Task) -> None:
        seen.append((self.request.retries, self.max_retries))

    assert (attrs.max_retries, attrs.rate_limit, attrs.typing) == (4, "2/s", None)
    assert attrs.default_retry_delay == 180.0 and attrs.autoretry_for == ()
    mem_app.conf.task_annotations = {"t.attrs": {"max_retries": 1, "time_limit": 9}}
    assert (attrs.max_retries, attrs.time_limit) == (1, 9)
    attrs.delay()
    solo_worker(mem_app).run_until_idle()
    assert seen == [(0, 1)]


class Patient(Task):
    max_retries = 9  # a Celery-style class attribute: the default for tasks built from it
    default_retry_delay = 1


def test_option_attributes_of_a_base_class_are_defaults_and_read_back(mem_app: Conveyor) -> None:
    @mem_app.task(base=Patient)
    def waits() -> None: ...

    @mem_app.task(base=Patient, max_retries=2)
    def shorter() -> None: ...

    assert (waits.options.max_retries, waits.options.default_retry_delay) == (9, 1)
    assert shorter.options.max_retries == 2 and shorter.rate_limit is None
    # As Celery's task classes: the decorator's value reads back, the base class's otherwise.
    assert (waits.max_retries, shorter.max_retries) == (9, 2)
    assert isinstance(shorter, Patient) and type(shorter).__name__ == "Patient"
    mem_app.conf.task_annotations = {shorter.name: {"max_retries": 4}}
    assert shorter.max_retries == 4
