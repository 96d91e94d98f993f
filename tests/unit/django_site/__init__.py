"""A minimal Django site for tests/unit/test_django.py: one app (`shop`) with a tasks module,
and an in-memory SQLite database."""
