"""Integrations with other frameworks (conveyor.contrib.django), under Celery's module names."""
