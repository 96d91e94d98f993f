"""Imported by autodiscover_tasks() (no tasks: registering shared tasks here would add them to
every app the rest of the test session makes)."""

DISCOVERED = True
