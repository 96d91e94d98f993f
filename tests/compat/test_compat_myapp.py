"""Celery's examples/app/myapp.py renamed: settings given to the constructor as keywords, and
the worker started with the fully qualified `-A myapp:app` form."""

from __future__ import annotations

from .harness import Running, project, worker


def test_constructor_settings_and_the_module_colon_attribute_form(compat_url: str) -> None:
    where = project("myapp")
    with worker(where, compat_url, "-A", "myapp:app", "worker", "-l", "INFO") as proc:
        out = Running(where, compat_url, proc).lines(
            """
            from myapp import add, app
            print(app.conf.task_acks_late)
            print(add.delay(16, 16).get(timeout=15))
            """
        )
    assert out == ["True", "32"]
