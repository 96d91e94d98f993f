# Flask's examples/celery/make_celery.py, unchanged: `conveyor -A make_celery worker`.
from task_app import create_app

flask_app = create_app()
celery_app = flask_app.extensions["celery"]
