from proj.celery import app


@app.task
def import_feed(name):
    return f"import_feed {name}"
