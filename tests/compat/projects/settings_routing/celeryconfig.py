# Celery's "Configuration and defaults" style module, read with config_from_object.
import os

broker_url = os.environ["COMPAT_BROKER_URL"]
result_backend = os.environ.get("COMPAT_RESULT_BACKEND", broker_url)
broker_connection_retry_on_startup = True
broker_pool_limit = 10
task_routes = {"proj.tasks.import_feed": {"queue": "feeds"}}
