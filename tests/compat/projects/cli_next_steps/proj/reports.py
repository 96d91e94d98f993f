import logging

from .celery import app

logger = logging.getLogger(__name__)


@app.task
def mul(x, y):
    logger.info("Multiplying %s by %s", x, y)
    return x * y
