# Snippets of Celery's "Tasks" user guide (docs/userguide/tasks.rst), renamed only. Where two
# snippets define a function of the same name, the later one gets a name of its own.
import logging
import os
import time
import uuid

import conveyor
from conveyor import Task, current_task, shared_task, states
from conveyor.exceptions import Ignore, Reject
from conveyor.utils.log import get_task_logger

from .celery import app

logger = get_task_logger(__name__)


# -- Logging: get_task_logger
@app.task
def add(x, y):
    logger.info("Adding {0} + {1}".format(x, y))
    return x + y


@app.task
def mul(x, y):
    return x * y


# -- Bound tasks
@app.task(bind=True)
def bound_add(self, x, y):
    logger.info(self.request.id)
    return x + y


# -- Task Request: example
@app.task(bind=True)
def dump_context(self, x, y):
    print(
        "Executing task id {0.id}, args: {0.args!r} kwargs: {0.kwargs!r}".format(self.request)
    )


# -- A plain logging.getLogger(__name__) logger, as most modules have
std_logger = logging.getLogger(__name__)


@app.task
def log_with_std_logger(word):
    std_logger.info("std logger says %s", word)
    return word


# -- Task inheritance
class MyTask(conveyor.Task):
    def on_failure(self, exc, task_id, args, kwargs, einfo):
        print("{0!r} failed: {1!r}".format(task_id, exc))


@app.task(base=MyTask)
def add_fails(x, y):
    raise KeyError()


# -- Handlers: example usage
class HandlersTask(Task):
    def before_start(self, task_id, args, kwargs):
        print(f"Task {task_id} starting with args {args}")

    def on_success(self, retval, task_id, args, kwargs):
        print(f"Task {task_id} succeeded with result: {retval}")

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        print(f"Task {task_id} failed: {exc}")

    def after_return(self, status, retval, task_id, args, kwargs, einfo):
        print(f"Task {task_id} finished with status: {status}")


@app.task(base=HandlersTask)
def my_task(x, y):
    return x + y


# -- Argument checking
@app.task(typing=False)
def add_untyped(x, y):
    return x + y


# -- Retrying (the failure is made up: the first two attempts fail)
class FailWhaleError(Exception):
    pass


@app.task(bind=True, default_retry_delay=30 * 60)  # retry in 30 minutes.
def send_twitter_status(self, oauth, tweet):
    try:
        if self.request.retries < 2:
            raise FailWhaleError(oauth)
    except FailWhaleError as exc:
        # overrides the default delay to retry after 1 second
        raise self.retry(exc=exc, countdown=1)
    return f"{tweet} (after {self.request.retries} retries)"


# -- Automatic retry for known exceptions
@app.task(bind=True, autoretry_for=(FailWhaleError,), retry_kwargs={"max_retries": 2, "countdown": 0})
def refresh_timeline(self, user):
    raise FailWhaleError(f"{user}: attempt {self.request.retries}")


# -- Custom states
@app.task(bind=True)
def upload_files(self, filenames):
    for i, file in enumerate(filenames):
        if not self.request.called_directly:
            self.update_state(state="PROGRESS", meta={"current": i, "total": len(filenames)})
        time.sleep(0.5)  # the upload
    return len(filenames)


# -- Creating pickleable exceptions
class HttpError(Exception):
    def __init__(self, status_code, headers=None, body=None):
        self.status_code = status_code
        self.headers = headers
        self.body = body

        super(HttpError, self).__init__(status_code, headers, body)


@app.task
def fetch(url):
    raise HttpError(404, {"Content-Type": "text/plain"}, f"{url} was not found")


# -- Semipredicates: Ignore
@app.task(bind=True)
def get_tweets(self, user):
    timeline = [f"{user}: first", f"{user}: second"]
    if not self.request.called_directly:
        self.update_state(state=states.SUCCESS, meta=timeline)
    raise Ignore()


# -- Custom task classes: instantiation (registered as Celery 4+ requires)
class NaiveAuthenticateServer(Task):
    def __init__(self):
        self.users = {"george": "password"}

    def run(self, username, password):
        try:
            return self.users[username] == password
        except KeyError:
            return False


naive_authenticate = app.register_task(NaiveAuthenticateServer())


# -- Per task usage of a base class caching a connection per process
class Database:
    @classmethod
    def connect(cls):
        return cls()

    def __init__(self):
        self.id = uuid.uuid4().hex


class DatabaseTask(Task):
    _db = None

    @property
    def db(self):
        if self._db is None:
            self._db = Database.connect()
        return self._db


@app.task(base=DatabaseTask, bind=True)
def process_rows(self):
    return [os.getpid(), self.db.id]


# -- Ignore results you don't want
@app.task
def mytask(x, y):
    return x + y


@app.task(ignore_result=True)
def mytask_ignored():
    return "not kept"


# -- Avoid launching synchronous subtasks
@app.task
def update_page_info(url):
    page = fetch_page.delay(url).get()
    info = parse_page.delay(page).get()
    return info


@app.task
def update_page_info_allowed(url):
    page = fetch_page.delay(url).get(disable_sync_subtasks=False)
    info = parse_page.delay(page).get(disable_sync_subtasks=False)
    return info


@app.task
def fetch_page(url):
    return f"<html>{url}</html>"


@app.task
def parse_page(page):
    return len(page)


# -- How do I import the task decorator? shared_task
@shared_task
def shared_add(x, y):
    return x + y


# -- Basics: a serializer for one task
@app.task(serializer="json")
def create_user(username, password):
    return username


# -- The task being run, from anywhere in its call stack
@app.task
def who_am_i():
    return [current_task.name, current_task.request.id]


# -- Workers guide: revoking a running task
@app.task
def long_running(seconds):
    time.sleep(seconds)
    return seconds


# -- Semipredicates: Reject with requeue
@app.task(bind=True, acks_late=True)
def requeues(self):
    if not self.request.delivery_info["redelivered"]:
        raise Reject("no reason", requeue=True)
    print("received two times")
    return "received two times"


# -- Automatic retry: the unbound form (no countdown in the guide; 0 here instead of 3 minutes)
@app.task
def refresh_timeline_unbound(user):
    try:
        raise FailWhaleError(user)
    except FailWhaleError as exc:
        raise refresh_timeline_unbound.retry(exc=exc, max_retries=1, countdown=0)
