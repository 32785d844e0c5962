"""arq: the request's tracking ID and traceparent travel beside the job, in a small Redis record.

arq jobs have no header channel, so ``enqueue_job`` stores the carrier under ``tracking:arq:<job id>``
(same Redis, same lifetime as the job) before enqueueing; the job function's arguments stay untouched.

    from service.jobs.arq import after_job_end, enqueue_job, on_job_start

    job = await enqueue_job(pool, "process", 42)          # instead of pool.enqueue_job("process", 42)

    class WorkerSettings:
        functions = [process]
        on_job_start = on_job_start                        # bind the ID (arq's own job lines carry it)
        after_job_end = after_job_end                      # reset it, with tokens

    arq --custom-log-dict service.jobs.arq.LOG_CONFIG module.WorkerSettings   # JSON lines from the start
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from arq.connections import ArqRedis
from arq.constants import expires_extra_ms, job_key_prefix
from arq.jobs import Job, deserialize_job

from service.jobs.context import carrier, end_job, start_job

__all__ = ["KEY_PREFIX", "LOG_CONFIG", "after_job_end", "enqueue_job", "on_job_start"]

#: The carrier of job ``<id>`` lives at ``KEY_PREFIX + <id>``.
KEY_PREFIX = "tracking:arq:"

#: For ``arq --custom-log-dict service.jobs.arq.LOG_CONFIG``: the bundle's JSON pipeline from the worker's
#: first line, arq's own logger routed into it, ``task_name``/``task_id`` on the lines of a job.
LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"job": {"()": "service.jobs.context.JobFieldsFilter"}},
    "handlers": {"json": {"()": "service.logs.dictconfig.handler", "filters": ["job"]}},
    "root": {"handlers": ["json"]},
    "loggers": {"arq": {"handlers": [], "propagate": True}},
}


async def enqueue_job(
    pool: ArqRedis, function: str, *args: Any, _job_id: str | None = None, **kwargs: Any
) -> Job | None:
    """``pool.enqueue_job(function, *args, **kwargs)``, with the current tracking ID and traceparent beside it.

    Returns what arq returns (None when a job with that ``_job_id`` exists; its carrier is then kept).
    """
    job_id = _job_id or uuid.uuid4().hex
    carried = carrier()
    if carried:
        carried["function"] = function
        # Written before the job exists, so a worker never starts it without its carrier. NX: a duplicate
        # enqueue (which arq refuses) must not relabel the job already queued.
        lifetime_ms = expires_extra_ms + _defer_ms(kwargs)
        await pool.set(KEY_PREFIX + job_id, orjson.dumps(carried), px=lifetime_ms, nx=True)
    return await pool.enqueue_job(function, *args, _job_id=job_id, **kwargs)


def _defer_ms(kwargs: dict[str, Any]) -> int:
    defer_by = kwargs.get("_defer_by")
    if defer_by is None:
        return 0
    seconds = defer_by.total_seconds() if hasattr(defer_by, "total_seconds") else float(defer_by)
    return int(seconds * 1000)


async def on_job_start(ctx: dict[str, Any]) -> None:
    """arq hook: bind the job's tracking ID (its job id when none came) and trace context."""
    job_id = str(ctx["job_id"])
    received: dict[str, Any] = {}
    name: str | None = None
    try:
        raw, job = await ctx["redis"].mget(KEY_PREFIX + job_id, job_key_prefix + job_id)
        if raw:
            received = orjson.loads(raw)
            name = received.get("function")
        if name is None and job:
            name = deserialize_job(job).function  # pickle, arq's default (a custom serializer: no name)
    except Exception:  # an unreadable carrier must not fail the job: it runs under a fresh ID
        pass
    start_job(received, name=name, job_id=job_id)


async def after_job_end(ctx: dict[str, Any]) -> None:
    """arq hook: reset what ``on_job_start`` bound."""
    end_job()
