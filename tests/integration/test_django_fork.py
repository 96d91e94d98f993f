"""A forked process drops the Django connection it inherited without ending the session its
parent still uses (conveyor.contrib.django.connections, as in a pool child's
worker_process_init), then closes it; the parent's connection keeps working. Real fork, real
PostgreSQL server: a proper close in the child would send the server a Terminate message for
the parent's session."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from .. import services

pytest.importorskip("django")

SCRIPT = textwrap.dedent(
    """
    import os, sys
    from urllib.parse import urlsplit
    import django
    from django.conf import settings

    url = urlsplit(sys.argv[1])
    settings.configure(DATABASES={"default": {
        "ENGINE": "django.db.backends.postgresql", "NAME": url.path.lstrip("/"),
        "USER": url.username or "", "PASSWORD": url.password or "",
        "HOST": url.hostname or "", "PORT": url.port or "",
    }})
    django.setup()
    from django.db import connection
    from conveyor.contrib.django.connections import close_database, drop_inherited

    def backend_pid():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            return cursor.fetchone()[0]

    before = backend_pid()
    child = os.fork()
    if child == 0:
        drop_inherited() if sys.argv[2] == "drop" else None
        close_database()
        os._exit(0 if connection.connection is None else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the child kept a connection"
    try:
        print("same session" if backend_pid() == before else "new session")
    except Exception as exc:
        print("broken:", type(exc).__name__)
    """
)


def _run(mode: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, services.POSTGRES_URL, mode],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


def test_a_forked_child_leaves_its_parents_session_alone() -> None:
    services.require_postgres()
    assert _run("drop") == "same session"


def test_closing_the_inherited_connection_properly_would_break_the_parent() -> None:
    # Why the drop matters: without it, the child's close ends the parent's session.
    services.require_postgres()
    assert _run("close").startswith(("broken", "new session"))
