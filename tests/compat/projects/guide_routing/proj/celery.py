# Celery's "Routing Tasks" user guide (docs/userguide/routing.rst), renamed: automatic routing
# with the list form of task_routes (glob patterns and a compiled regular expression), and the
# priority settings of its "Special Routing Options" section.
import os
import re

from conveyor import Conveyor

app = Conveyor(
    "proj",
    broker=os.environ["COMPAT_BROKER_URL"],
    backend=os.environ["COMPAT_BROKER_URL"],
    include=["proj.tasks", "feed.tasks", "web.tasks", "video.tasks", "image.tasks"],
)

app.conf.task_routes = ([
    ('feed.tasks.*', {'queue': 'feeds'}),
    ('web.tasks.*', {'queue': 'web'}),
    (re.compile(r'(video|image)\.tasks\..*'), {'queue': 'media'}),
],)

app.conf.task_queue_max_priority = 10
app.conf.task_default_priority = 5
