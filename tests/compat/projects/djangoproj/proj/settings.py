"""Django settings for proj project: Celery's examples/django settings, renames only. The
broker and the database come from the environment (tests/compat sets them)."""

import os

# Conveyor settings

CELERY_BROKER_URL = os.environ["COMPAT_BROKER_URL"]

#: Only add pickle to this list if your broker is secured
#: from unwanted access (see userguide/security.html)
CELERY_ACCEPT_CONTENT = ["json"]
# "django-db" (django-celery-results' name) when the test sets COMPAT_RESULT_BACKEND to it
CELERY_RESULT_BACKEND = os.environ.get("COMPAT_RESULT_BACKEND", os.environ["COMPAT_BROKER_URL"])
CELERY_TASK_SERIALIZER = "json"
CELERY_TIMEZONE = "UTC"
CELERY_TASK_TRACK_STARTED = True
CELERY_TASK_TIME_LIMIT = 30 * 60

BASE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SECRET_KEY = "compat-only-not-a-secret"

DEBUG = True

ALLOWED_HOSTS = []

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "demoapp",
    "probe.apps.ProbeConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "proj.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "proj.wsgi.application"

# The database is a file of the test's own (COMPAT_DJANGO_DB).
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("COMPAT_DJANGO_DB", os.path.join(BASE_DIR, "db.sqlite3")),
    }
}

# Or PostgreSQL, in a schema of the test's own (COMPAT_DJANGO_PG_URL, COMPAT_DJANGO_PG_SCHEMA);
# the schema also names the connections (application_name), so a test can count them.
if os.environ.get("COMPAT_DJANGO_PG_URL"):
    from urllib.parse import urlsplit

    _pg = urlsplit(os.environ["COMPAT_DJANGO_PG_URL"])
    _schema = os.environ["COMPAT_DJANGO_PG_SCHEMA"]
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": _pg.path.lstrip("/"),
            "USER": _pg.username or "",
            "PASSWORD": _pg.password or "",
            "HOST": _pg.hostname or "",
            "PORT": _pg.port or "",
            "OPTIONS": {"options": f"-c search_path={_schema}", "application_name": _schema},
        }
    }

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
