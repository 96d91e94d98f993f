"""Settings of the test site (DJANGO_SETTINGS_MODULE=tests.unit.django_site.settings). The
database is a file (Django never closes an in-memory SQLite connection), one per test process;
tests/unit/test_django.py deletes it."""

import os
import tempfile

SECRET_KEY = "unit-tests-only"
INSTALLED_APPS = ["django.contrib.contenttypes", "tests.unit.django_site.shop"]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.path.join(tempfile.gettempdir(), f"conveyor-unit-django-{os.getpid()}.db"),
    }
}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
