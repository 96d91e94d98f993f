"""`result_backend = "django-db"` (django-celery-results' name, set in many Django projects as
`CELERY_RESULT_BACKEND = "django-db"`): results kept in the Django project's own database.

conveyor keeps them there in its own result tables (created by its migrations, as for any
result store), not in django-celery-results' `TaskResult` model: the Django admin does not list
them; `AsyncResult`, `conveyor results` and the dashboard read them. The database must be one
conveyor has a store for — PostgreSQL (`django.db.backends.postgresql`, PostGIS too) or an
SQLite file; any other engine, an in-memory SQLite database, and django-celery-results'
`django-cache` are refused with what to write instead.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ...errors import ConfigurationError

if TYPE_CHECKING:
    from ...app import Conveyor

DJANGO_DB = "django-db"
DJANGO_CACHE = "django-cache"


def result_url(app: Conveyor, url: str) -> str:
    """`url` itself, or for `django-db` the URL of Django's `default` database."""
    if url == DJANGO_CACHE:
        raise ConfigurationError(
            "result_backend='django-cache' (django-celery-results' cache backend) is not "
            "supported: results need a store that keeps them; use 'django-db', a redis:// URL "
            "or leave result_backend unset (results beside the broker)"
        )
    if url != DJANGO_DB:
        return url
    from .fixup import require_fixup

    require_fixup(app, f"result_backend={DJANGO_DB!r}")
    from django.conf import settings

    return database_url(settings.DATABASES["default"])


def database_url(database: dict[str, Any]) -> str:
    """A conveyor store URL for one entry of Django's DATABASES."""
    engine = str(database.get("ENGINE", ""))
    name = str(database.get("NAME") or "")
    if engine.endswith("sqlite3"):
        if not name or name == ":memory:" or "mode=memory" in name:
            raise ConfigurationError(
                f"result_backend={DJANGO_DB!r}: Django's database is in memory, which no other "
                "process can read; give it a file NAME, or set result_backend to a URL"
            )
        return f"sqlite:///{os.fspath(name)}"
    if engine.endswith(("postgresql", "postgis", "postgresql_psycopg2")):
        user = quote(str(database.get("USER") or ""), safe="")
        password = quote(str(database.get("PASSWORD") or ""), safe="")
        auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host, port = str(database.get("HOST") or "localhost"), database.get("PORT")
        if host.startswith("/"):  # a Unix socket directory: given as a query parameter
            query = f"?host={quote(host, safe='')}" + (f"&port={port}" if port else "")
            return f"postgresql://{auth}/{quote(name, safe='')}{query}"
        at = f"{host}:{port}" if port else host
        return f"postgresql://{auth}{at}/{quote(name, safe='')}"
    raise ConfigurationError(
        f"result_backend={DJANGO_DB!r}: Django's database uses {engine or 'no ENGINE'}, and "
        "conveyor keeps results in PostgreSQL, SQLite or Redis: set result_backend to a "
        "postgresql://, sqlite:/// or redis:// URL"
    )
