"""taskiq: a FastAPI route kicks a task, a worker runs it under the request's tracking ID.

python -m service --app tests.jobs.example_taskiq:web
taskiq worker --no-configure-logging tests.jobs.example_taskiq:broker
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from taskiq import Context, SimpleRetryMiddleware, TaskiqDepends
from taskiq_redis import RedisStreamBroker

from service import TrackingIDMiddleware
from service.jobs.taskiq import TrackingMiddleware

broker = RedisStreamBroker(
    os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
    # A task whose worker died is delivered again once it has been pending this long (milliseconds).
    idle_timeout=int(os.environ.get("IDLE_TIMEOUT_MS", "600000")),
).with_middlewares(TrackingMiddleware(), SimpleRetryMiddleware())
log = logging.getLogger("example.jobs")


@broker.task(retry_on_error=True)
async def process(item: int, pause: float = 0.0, context: Context = TaskiqDepends()) -> int:  # noqa: B008
    log.info("processing item %d", item)
    await asyncio.sleep(pause)
    if item % 10 == 0 and not context.message.labels.get("_retries"):
        raise RuntimeError("every tenth item fails once, then succeeds")
    log.info("item %d done", item)
    return item


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    await broker.startup()
    yield
    await broker.shutdown()


web = FastAPI(lifespan=lifespan)
web.add_middleware(TrackingIDMiddleware)


@web.post("/items/{item}")
async def enqueue(item: int, pause: float = 0.0) -> dict[str, str]:
    task = await process.kiq(item, pause)
    return {"job_id": task.task_id}
