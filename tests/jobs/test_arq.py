"""arq with a real redis-server, real ``arq`` worker processes and the example app under uvicorn."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

pytest.importorskip("arq")

from tests.jobs.checks import assert_jobs_follow_requests
from tests.jobs.support import (
    Record,
    RedisServer,
    Worker,
    child_env,
    job_lines,
    run_python,
    send_concurrently,
    web_service,
)

APP = "tests.jobs.example_arq"


def arq_worker(tmp_path: Path, redis: RedisServer, name: str, env: dict[str, str] | None = None) -> Worker:
    arq = str(Path(sys.executable).with_name("arq"))
    command = [arq, "--custom-log-dict", "service.jobs.arq.LOG_CONFIG", f"{APP}.WorkerSettings"]
    return Worker(command, child_env(redis, env), tmp_path, name).start()


def ready(records: list[Record]) -> bool:
    return any(str(r.get("message", "")).startswith("Starting worker for") for r in records)


def finished(count: int) -> Callable[[list[Record]], bool]:
    def check(records: list[Record]) -> bool:
        return sum(1 for r in records if " ● " in str(r.get("message", ""))) >= count

    return check


def test_200_concurrent_requests_each_job_logs_under_its_request_id(tmp_path: Path, redis: RedisServer) -> None:
    """200 requests at once each enqueue a job; the worker runs up to 20 at a time (every tenth raises
    Retry once). Every worker line of every job, arq's own start/retry/end lines included, carries its
    own request's tracking ID."""
    redis.flush()
    worker = arq_worker(tmp_path, redis, "worker")
    try:
        worker.wait_for(ready, 30, "the worker to start")
        with web_service(tmp_path, f"{APP}:web", redis) as web:
            sent = send_concurrently(web.base_url, range(1, 201), lambda item: f"/items/{item}")
            worker.wait_for(finished(200), 90, "200 jobs to finish")
        web_records = web.records()
    finally:
        worker.stop()
    records = worker.records()
    checked = assert_jobs_follow_requests(
        sent, records, web_records, ["→ {job_id}:process", "processing item {item}", "item {item} done", "● {item}"]
    )
    assert checked >= 200 * 4
    by_job = job_lines(records)
    for s in (s for s in sent if s.item % 10 == 0):
        messages = [str(line["message"]) for line in by_job[s.job_id]]
        assert sum(f"processing item {s.item}" == m for m in messages) == 2, messages
        assert any("retrying job" in m for m in messages) and any(" try=2" in m for m in messages), messages
    assert all(line["task_name"] == "process" for lines in by_job.values() for line in lines)


def test_jobs_enqueued_outside_a_request_get_their_own_id(tmp_path: Path, redis: RedisServer) -> None:
    """A job enqueued by a script, through the helper or straight through arq, runs under its job id,
    logged as generated."""
    redis.flush()
    worker = arq_worker(tmp_path, redis, "worker")
    code = f"""
import asyncio
from arq.connections import create_pool
from service.jobs.arq import enqueue_job
from {APP} import REDIS

async def main() -> None:
    pool = await create_pool(REDIS)
    print((await enqueue_job(pool, "process", 5)).job_id)
    print((await pool.enqueue_job("process", 6)).job_id)
    await pool.aclose()

asyncio.run(main())
"""
    try:
        worker.wait_for(ready, 30, "the worker to start")
        job_ids = run_python(code, child_env(redis)).split()
        worker.wait_for(finished(2), 30, "2 jobs to finish")
    finally:
        worker.stop()
    by_job = job_lines(worker.records())
    assert len(job_ids) == 2
    for job_id in job_ids:
        lines = by_job[job_id]
        assert {line["tracking_id"] for line in lines} == {job_id}, lines
        assert {line["task_name"] for line in lines} == {"process"}, lines
        assert any("no tracking ID came with the job" in str(line["message"]) for line in lines), lines


def test_a_worker_killed_mid_job_runs_it_again_under_the_same_id(tmp_path: Path, redis: RedisServer) -> None:
    """SIGKILL the worker while the job sleeps; once arq's in-progress key expires (job_timeout 2 s + 10 s)
    a new worker runs it again (try 2), under the ID of the request that enqueued it."""
    redis.flush()
    env = {"JOB_TIMEOUT": "2"}
    first = arq_worker(tmp_path, redis, "first", env)
    try:
        first.wait_for(ready, 30, "the first worker to start")
        with web_service(tmp_path, f"{APP}:web", redis) as web:
            sent = send_concurrently(web.base_url, [7], lambda item: f"/items/{item}?pause=1.5")[0]
            first.wait_for(lambda rs: any(r["message"] == "processing item 7" for r in rs), 30, "the job to start")
            first.kill()
        second = arq_worker(tmp_path, redis, "second", env)
        try:
            second.wait_for(lambda rs: any(r["message"] == "item 7 done" for r in rs), 60, "the second run")
        finally:
            second.stop()
    finally:
        first.stop()
    assert first.proc is not None and first.proc.returncode == -signal.SIGKILL
    assert not any(r["message"] == "item 7 done" for r in first.records())
    for worker in (first, second):
        lines = job_lines(worker.records())[sent.job_id]
        assert lines and {line["tracking_id"] for line in lines} == {sent.tracking_id}, lines
    assert any(" try=2" in str(r["message"]) for r in job_lines(second.records())[sent.job_id])
