"""Django support, as Celery's: the fix-up an app gets when DJANGO_SETTINGS_MODULE is set
(fixup.py), database connections in workers (connections.py), and sending once a transaction
commits (task.py: `task.delay_on_commit(...)`). docs/django.md tells the whole story."""
