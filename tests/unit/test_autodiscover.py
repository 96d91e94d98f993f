"""app.autodiscover_tasks(): Celery's lazy discovery of each package's task module."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conveyor import Conveyor
from conveyor.autodiscover import find_related_module
from conveyor.errors import ConfigurationError

Make = Callable[..., str]


@pytest.fixture
def make_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Make]:
    """make_package(tasks="...", other_module="...") -> the name of a new package on sys.path
    holding those modules (each keyword a module name, its value the module's source)."""
    monkeypatch.syspath_prepend(str(tmp_path))
    made: list[str] = []

    def make(**modules: str) -> str:
        name = f"adpkg_{uuid.uuid4().hex[:8]}"
        package = tmp_path / name
        package.mkdir()
        (package / "__init__.py").write_text("")
        for module, source in modules.items():
            (package / f"{module}.py").write_text(source)
        made.append(name)
        return name

    yield make
    for name in list(sys.modules):
        if name.split(".")[0] in made:
            del sys.modules[name]


def test_discovery_waits_for_the_app_to_import_its_modules(
    mem_app: Conveyor, make_package: Make
) -> None:
    pkg = make_package(tasks="VALUE = 1\n")
    mem_app.autodiscover_tasks([pkg])
    assert f"{pkg}.tasks" not in sys.modules  # lazy, as in Celery
    mem_app.import_modules()
    assert sys.modules[f"{pkg}.tasks"].VALUE == 1


def test_tasks_defined_in_discovered_modules_are_registered(
    mem_app: Conveyor, make_package: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = "import adapp_holder\n@adapp_holder.app.task\ndef ping():\n    return 'pong'\n"
    pkg = make_package(tasks=source)
    holder = type(sys)("adapp_holder")
    holder.app = mem_app  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "adapp_holder", holder)
    mem_app.autodiscover_tasks([pkg])
    mem_app.import_modules()
    assert mem_app.tasks[f"{pkg}.tasks.ping"]() == "pong"


def test_force_imports_at_once(mem_app: Conveyor, make_package: Make) -> None:
    pkg = make_package(tasks="")
    mem_app.autodiscover_tasks([pkg], force=True)
    assert f"{pkg}.tasks" in sys.modules


def test_a_package_without_the_module_is_skipped(mem_app: Conveyor, make_package: Make) -> None:
    bare, full = make_package(), make_package(tasks="")
    mem_app.autodiscover_tasks([bare, full])
    mem_app.import_modules()
    assert f"{bare}.tasks" not in sys.modules
    assert f"{full}.tasks" in sys.modules


def test_an_import_error_inside_a_task_module_propagates(
    mem_app: Conveyor, make_package: Make
) -> None:
    pkg = make_package(tasks="import adpkg_missing_dependency\n")
    mem_app.autodiscover_tasks([pkg])
    with pytest.raises(ModuleNotFoundError, match="adpkg_missing_dependency"):
        mem_app.import_modules()


def test_a_missing_package_is_an_error(mem_app: Conveyor) -> None:
    mem_app.autodiscover_tasks(["adpkg_does_not_exist"])
    with pytest.raises(ModuleNotFoundError, match="adpkg_does_not_exist"):
        mem_app.import_modules()


def test_a_callable_is_read_when_the_discovery_runs_and_only_once(
    mem_app: Conveyor, make_package: Make
) -> None:
    pkg = make_package(tasks="")
    calls: list[int] = []

    def packages() -> list[str]:
        calls.append(1)
        return [pkg]

    mem_app.autodiscover_tasks(packages)
    assert calls == []
    mem_app.import_modules()
    mem_app.import_modules()  # a worker imports again after -A loaded the app: no rerun
    assert calls == [1]
    assert f"{pkg}.tasks" in sys.modules


def test_related_name_picks_the_module_and_none_imports_the_package(
    mem_app: Conveyor, make_package: Make
) -> None:
    first, second = make_package(jobs=""), make_package()
    mem_app.autodiscover_tasks([first], related_name="jobs")
    mem_app.autodiscover_tasks([second], related_name=None)
    mem_app.import_modules()
    assert f"{first}.jobs" in sys.modules
    assert second in sys.modules


def test_a_dotted_name_that_is_no_module_is_looked_up_one_level_up(make_package: Make) -> None:
    pkg = make_package(apps="class Config: ...\n", tasks="")
    # An INSTALLED_APPS entry naming an AppConfig class: "pkg.apps.Config" -> pkg.apps.tasks
    assert find_related_module(f"{pkg}.apps.Config", "tasks") is None
    module = find_related_module(f"{pkg}.Config", "tasks")
    assert module is not None
    assert module.__name__ == f"{pkg}.tasks"


def test_a_task_module_that_imports_the_app_modules_again_does_not_recurse(
    mem_app: Conveyor, make_package: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    holder = type(sys)("adapp_holder")
    holder.app = mem_app  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "adapp_holder", holder)
    pkg = make_package(tasks="import adapp_holder\nadapp_holder.app.import_modules()\n")
    mem_app.autodiscover_tasks([pkg])
    mem_app.import_modules()
    assert f"{pkg}.tasks" in sys.modules


def test_a_failed_discovery_is_tried_again(mem_app: Conveyor, make_package: Make) -> None:
    pkg = make_package(tasks="import adpkg_later\n")
    mem_app.autodiscover_tasks([pkg])
    with pytest.raises(ModuleNotFoundError):
        mem_app.import_modules()
    sys.modules["adpkg_later"] = type(sys)("adpkg_later")
    try:
        mem_app.import_modules()
    finally:
        del sys.modules["adpkg_later"]
    assert f"{pkg}.tasks" in sys.modules


def test_a_single_string_is_refused_with_the_list_to_write(mem_app: Conveyor) -> None:
    with pytest.raises(ConfigurationError, match=r"autodiscover_tasks\(\['proj'\]\)"):
        mem_app.autodiscover_tasks("proj", force=True)


def test_no_packages_outside_a_django_project_says_what_to_do(
    mem_app: Conveyor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)
    with pytest.raises(ConfigurationError, match="DJANGO_SETTINGS_MODULE is not set"):
        mem_app.autodiscover_tasks()
