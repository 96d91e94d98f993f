# The tutorial's celeryconfig.py (with the routing and annotation examples of the same section).
import os

broker_url = os.environ["COMPAT_BROKER_URL"]
result_backend = os.environ["COMPAT_BROKER_URL"]

task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
timezone = "Europe/Oslo"
enable_utc = True

task_routes = {
    "tasks.add": "low-priority",
}

task_annotations = {
    "tasks.add": {"rate_limit": "10/m"},
}
