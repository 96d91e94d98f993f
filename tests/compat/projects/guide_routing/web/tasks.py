from proj.celery import app


@app.task
def render_page(name):
    return f"render_page {name}"
