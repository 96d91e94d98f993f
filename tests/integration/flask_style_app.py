"""A Flask app wired to conveyor as Flask's documentation wires Celery (`celery_init_app`,
renames only): tasks run inside the Flask app context because the worker calls the
FlaskTask's `__call__`. Started as `conveyor -A flask_style_app.celery_app worker`."""

from __future__ import annotations

import os

from flask import Flask
from flask import current_app as flask_current_app

from conveyor import Conveyor, Task, current_task, shared_task


def celery_init_app(app: Flask) -> Conveyor:
    class FlaskTask(Task):
        def __call__(self, *args: object, **kwargs: object) -> object:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Conveyor(app.name, task_cls=FlaskTask)
    celery_app.config_from_object(app.config["CELERY"])
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    return celery_app


def create_app() -> Flask:
    app = Flask(__name__)
    app.config.from_mapping(
        CELERY={
            "broker_url": os.environ["CONVEYOR_BROKER_URL"],
            "result_backend": os.environ["CONVEYOR_BROKER_URL"],
            "task_ignore_result": True,
        },
    )
    app.config["GREETING"] = "hello from the app context"
    celery_init_app(app)
    return app


flask_app = create_app()
celery_app: Conveyor = flask_app.extensions["celery"]


@shared_task(ignore_result=False)
def add(a: int, b: int) -> int:
    return a + b


@shared_task(ignore_result=False)
def greeting() -> dict[str, object]:
    """Reads Flask's current_app: only possible inside the app context FlaskTask opens."""
    return {
        "greeting": flask_current_app.config["GREETING"],
        "task": current_task.name if current_task else None,
    }
