"""result_backend="django-db": the URL of the Django project's database (no Django needed)."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor import Conveyor
from conveyor.contrib.django.results import database_url, result_url
from conveyor.errors import ConfigurationError

PG = "django.db.backends.postgresql"


@pytest.mark.parametrize(
    ("database", "url"),
    [
        (
            {"ENGINE": "django.db.backends.sqlite3", "NAME": "/srv/db.sqlite3"},
            "sqlite:////srv/db.sqlite3",
        ),
        ({"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"}, "sqlite:///db.sqlite3"),
        (
            {
                "ENGINE": PG,
                "NAME": "shop",
                "USER": "app",
                "PASSWORD": "p@ss/w",
                "HOST": "db",
                "PORT": 5433,
            },
            "postgresql://app:p%40ss%2Fw@db:5433/shop",
        ),
        ({"ENGINE": PG, "NAME": "shop", "USER": "app"}, "postgresql://app@localhost/shop"),
        (
            {"ENGINE": "django.contrib.gis.db.backends.postgis", "NAME": "geo"},
            "postgresql://localhost/geo",
        ),
        (
            {"ENGINE": PG, "NAME": "shop", "HOST": "/var/run/postgresql", "PORT": "5432"},
            "postgresql:///shop?host=%2Fvar%2Frun%2Fpostgresql&port=5432",
        ),
    ],
)
def test_the_django_database_as_a_store_url(database: dict[str, Any], url: str) -> None:
    assert database_url(database) == url


@pytest.mark.parametrize("name", [":memory:", "file:x?mode=memory&cache=shared", ""])
def test_an_in_memory_sqlite_database_is_refused(name: str) -> None:
    with pytest.raises(ConfigurationError, match="in memory"):
        database_url({"ENGINE": "django.db.backends.sqlite3", "NAME": name})


def test_another_engine_is_refused_with_what_to_write() -> None:
    with pytest.raises(
        ConfigurationError, match=r"uses django\.db\.backends\.mysql.*postgresql://"
    ):
        database_url({"ENGINE": "django.db.backends.mysql", "NAME": "shop"})


def test_django_cache_is_refused(mem_app: Conveyor) -> None:
    with pytest.raises(ConfigurationError, match="django-cache"):
        result_url(mem_app, "django-cache")


def test_other_urls_pass_through(mem_app: Conveyor) -> None:
    assert result_url(mem_app, "redis://h/1") == "redis://h/1"


def test_django_db_outside_a_django_project_says_what_to_do(
    mem_app: Conveyor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)
    mem_app.conf.result_backend = "django-db"
    with pytest.raises(ConfigurationError, match="DJANGO_SETTINGS_MODULE is not set"):
        mem_app.urls  # noqa: B018 - the property raises


def test_delay_on_commit_without_django_says_what_to_do(
    mem_app: Conveyor, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "django.db", None)  # as if Django were not installed
    add = mem_app.task(name="add")(lambda: None)
    with pytest.raises(ConfigurationError, match=r"Django is not installed.*call delay"):
        add.delay_on_commit()
    assert mem_app.broker.queue_stats() == []
