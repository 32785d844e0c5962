"""Celery: a FastAPI route enqueues, a worker runs the job under the request's tracking ID.

python -m service --app tests.jobs.example_celery:web           # the web app
celery -A tests.jobs.example_celery worker                        # the worker
"""

from __future__ import annotations

import logging
import os
import time

from celery import Celery, Task
from fastapi import FastAPI

from service import TrackingIDMiddleware
from service.jobs.celery import install

celery_app = Celery("example", broker=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
celery_app.conf.task_acks_late = True  # a job whose worker dies mid-run is delivered again...
celery_app.conf.broker_transport_options = {  # ...once this many seconds have passed
    "visibility_timeout": float(os.environ.get("VISIBILITY_TIMEOUT", "3600")),
}
install(celery_app)
log = logging.getLogger("example.jobs")


@celery_app.task(bind=True, max_retries=1)
def process(self: Task[..., int], item: int, pause: float = 0.0) -> int:
    log.info("processing item %d", item)
    time.sleep(pause)
    if item % 10 == 0 and not self.request.retries:
        raise self.retry(countdown=0)  # every tenth item fails once, then succeeds
    log.info("item %d done", item)
    return item


web = FastAPI()
web.add_middleware(TrackingIDMiddleware)


@web.post("/items/{item}")
def enqueue(item: int, pause: float = 0.0) -> dict[str, str]:
    return {"job_id": process.delay(item, pause).id}
