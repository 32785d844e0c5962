"""The demo app's job queue (``POST /demo/job`` when ``DEMO_JOBS_REDIS_URL`` is set): Celery, one task.

DEMO_JOBS_REDIS_URL=redis://127.0.0.1:6379/0 celery -A service.jobs.demo worker
"""

from __future__ import annotations

import logging
import os

from celery import Celery

from service.jobs.celery import install

celery_app = Celery("demo", broker=os.environ.get("DEMO_JOBS_REDIS_URL", "redis://127.0.0.1:6379/0"))
celery_app.conf.task_acks_late = True
install(celery_app)
log = logging.getLogger("service.demo.jobs")


@celery_app.task(name="demo.hello")
def hello(who: str) -> str:
    log.info("demo job says hello to %s", who)
    return who
