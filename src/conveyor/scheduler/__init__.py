"""The scheduler (Celery's beat): schedules (cron.py), and later the store, the leader lease
and the firing loop."""
