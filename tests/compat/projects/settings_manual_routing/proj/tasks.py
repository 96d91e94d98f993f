from .celery import app


@app.task
def add(x, y):
    return x + y


@app.task
def import_feed(url):
    return f"imported {url}"


@app.task
def refresh_feed(url):
    return f"refreshed {url}"
