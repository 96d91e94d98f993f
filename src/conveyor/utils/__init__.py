"""Celery's `celery.utils` spellings (`conveyor.utils.log.get_task_logger`)."""
