"""`-A` forms, found as Celery's find_app finds them: MODULE, MODULE.ATTR, MODULE:ATTR, a
package's `celery` submodule; loading configures the app."""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor import Conveyor
from conveyor.errors import ConfigurationError
from conveyor.loader import load_app, preset


@pytest.fixture
def pkg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A unique top-level name for this test's modules, importable from tmp_path."""
    name = f"loadme_{uuid.uuid4().hex[:8]}"
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    yield name
    for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[module]


def write(path: Path, code: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(code))


APP = """
    from conveyor import Conveyor
    {var} = Conveyor("{main}", broker="memory://", set_as_current=False)
    configured = []

    @{var}.on_after_configure.connect
    def setup(sender, **kwargs):
        configured.append(sender)
"""


def test_module_dot_attribute_names_the_app_in_a_module(tmp_path: Path, pkg: str) -> None:
    write(tmp_path / f"{pkg}.py", APP.format(var="celery", main="main"))
    app = load_app(f"{pkg}.celery")  # Flask projects' `celery -A main.celery worker`
    module = sys.modules[pkg]
    assert app is module.celery and module.configured == [app]


def test_package_celery_submodule_with_and_without_colon(tmp_path: Path, pkg: str) -> None:
    write(tmp_path / pkg / "__init__.py", "")
    write(tmp_path / pkg / "celery.py", APP.format(var="app", main="proj"))
    found = load_app(pkg)
    assert found is sys.modules[f"{pkg}.celery"].app
    assert load_app(f"{pkg}.celery:app") is found
    assert load_app(f"{pkg}.celery") is found  # the submodule, searched for `app`
    assert sys.modules[f"{pkg}.celery"].configured == [found]  # configured once


def test_only_app_of_a_module_and_clear_errors(tmp_path: Path, pkg: str) -> None:
    write(tmp_path / f"{pkg}.py", APP.format(var="worker_app", main="w"))
    assert load_app(pkg) is sys.modules[pkg].worker_app
    with pytest.raises(ConfigurationError, match="is not a Conveyor app"):
        load_app(f"{pkg}.configured")
    with pytest.raises(ConfigurationError, match="is not a Conveyor app"):
        load_app(f"{pkg}:configured")
    with pytest.raises(ConfigurationError, match="cannot import"):
        load_app(f"{pkg}_missing.celery")


def test_preset_gives_the_app_object_itself() -> None:
    app = Conveyor("started", broker="memory://", set_as_current=False)
    with preset("started_module:app", app):
        assert load_app("started_module:app") is app and app.configured
