# Snippets of Celery's "Signals" user guide (docs/userguide/signals.rst), renamed only.
from conveyor.signals import after_task_publish, task_failure, task_postrun, task_prerun


@after_task_publish.connect(sender="proj.tasks.add")
def task_sent_handler(sender=None, headers=None, body=None, **kwargs):
    # information about task are located in headers for task messages
    # using the task protocol version 2.
    info = headers if "task" in headers else body
    print("after_task_publish for task id {info[id]}".format(info=info))


@task_prerun.connect
def before_each(sender=None, task_id=None, task=None, args=None, kwargs=None, **rest):
    print(f"task_prerun {task.name}[{task_id}] args={args!r}")


@task_postrun.connect
def after_each(sender=None, task_id=None, task=None, retval=None, state=None, **rest):
    print(f"task_postrun {task.name}[{task_id}] retval={retval!r} state={state}")


@task_failure.connect
def on_any_failure(sender=None, task_id=None, exception=None, **rest):
    print(f"task_failure {sender.name}[{task_id}]: {exception!r}")
