# Celery's application guide, "Configuration" > config_from_object (renamed; broker from the
# environment).
import os

broker_url = os.environ["COMPAT_BROKER_URL"]
result_backend = os.environ["COMPAT_BROKER_URL"]
enable_utc = True
timezone = "Europe/London"
