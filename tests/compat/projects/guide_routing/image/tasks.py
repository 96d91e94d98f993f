from proj.celery import app


@app.task
def compress(name):
    return f"compress {name}"
