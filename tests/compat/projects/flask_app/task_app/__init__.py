# Flask's examples/celery/src/task_app/__init__.py (the "Background Tasks with Celery" pattern),
# celery -> conveyor, Celery -> Conveyor. The URLs come from the environment; the package sits at
# the project's top level instead of under src/ so that it imports without being installed.
import os

from conveyor import Conveyor
from conveyor import Task
from flask import Flask
from flask import render_template


def create_app() -> Flask:
    app = Flask(__name__)
    app.config.from_mapping(
        CELERY=dict(
            broker_url=os.environ["COMPAT_BROKER_URL"],
            result_backend=os.environ["COMPAT_BROKER_URL"],
            task_ignore_result=True,
        ),
    )
    app.config.from_prefixed_env()
    celery_init_app(app)

    @app.route("/")
    def index() -> str:
        return render_template("index.html")

    from . import views

    app.register_blueprint(views.bp)
    return app


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
