"""arq: a FastAPI route enqueues, a worker runs the job under the request's tracking ID.

python -m service --app tests.jobs.example_arq:web
arq --custom-log-dict service.jobs.arq.LOG_CONFIG tests.jobs.example_arq.WorkerSettings
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from arq import Retry
from arq.connections import RedisSettings, create_pool
from fastapi import FastAPI, Request

from service import TrackingIDMiddleware
from service.jobs.arq import after_job_end, enqueue_job, on_job_start

REDIS = RedisSettings.from_dsn(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
log = logging.getLogger("example.jobs")


async def process(ctx: dict[str, Any], item: int, pause: float = 0.0) -> int:
    log.info("processing item %d", item)
    await asyncio.sleep(pause)
    if item % 10 == 0 and ctx["job_try"] == 1:
        raise Retry(defer=0)  # every tenth item fails once, then succeeds
    log.info("item %d done", item)
    return item


class WorkerSettings:
    functions = [process]
    redis_settings = REDIS
    on_job_start = on_job_start
    after_job_end = after_job_end
    max_jobs = 20
    # A job whose worker died is run again once this (plus arq's 10 s) has passed.
    job_timeout = float(os.environ.get("JOB_TIMEOUT", "300"))


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.arq = await create_pool(REDIS)
    yield
    await app.state.arq.aclose()


web = FastAPI(lifespan=lifespan)
web.add_middleware(TrackingIDMiddleware)


@web.post("/items/{item}")
async def enqueue(item: int, request: Request, pause: float = 0.0) -> dict[str, str]:
    job = await enqueue_job(request.app.state.arq, "process", item, pause)
    assert job is not None
    return {"job_id": job.job_id}
