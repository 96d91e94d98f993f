from proj.celery import app


@app.task
def transcode(name):
    return f"transcode {name}"
