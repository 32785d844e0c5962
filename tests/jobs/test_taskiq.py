"""taskiq with a real redis-server (Redis streams), real ``taskiq worker`` processes and the example app."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

pytest.importorskip("taskiq_redis")

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

APP = "tests.jobs.example_taskiq"
TASK = f"{APP}:process"


def taskiq_worker(tmp_path: Path, redis: RedisServer, name: str, env: dict[str, str] | None = None) -> Worker:
    taskiq = str(Path(sys.executable).with_name("taskiq"))
    command = [taskiq, "worker", "--no-configure-logging", "--workers", "2", f"{APP}:broker"]
    return Worker(command, child_env(redis, env), tmp_path, name).start()


def ready(records: list[Record]) -> bool:
    return sum(1 for r in records if r.get("message") == "Listening started.") >= 2


def done(count: int) -> Callable[[list[Record]], bool]:
    def check(records: list[Record]) -> bool:
        return sum(1 for r in records if str(r.get("message", "")).endswith(" done")) >= count

    return check


def test_200_concurrent_requests_each_job_logs_under_its_request_id(tmp_path: Path, redis: RedisServer) -> None:
    """200 requests at once each kick a task; two worker processes run them (every tenth fails once and the
    retry middleware kicks it again). Every worker line of every task carries its own request's ID."""
    redis.flush()
    worker = taskiq_worker(tmp_path, redis, "worker")
    try:
        worker.wait_for(ready, 30, "both worker processes to listen")
        with web_service(tmp_path, f"{APP}:web", redis) as web:
            sent = send_concurrently(web.base_url, range(1, 201), lambda item: f"/items/{item}")
            worker.wait_for(done(200), 90, "200 tasks to finish")
        web_records = web.records()
    finally:
        worker.stop()
    records = worker.records()
    checked = assert_jobs_follow_requests(
        sent,
        records,
        web_records,
        [f"Executing task {TASK} with ID: {{job_id}}", "processing item {item}", "item {item} done"],
    )
    assert checked >= 200 * 3
    by_job = job_lines(records)
    for s in (s for s in sent if s.item % 10 == 0):
        messages = [str(line["message"]) for line in by_job[s.job_id]]
        assert sum(f"processing item {s.item}" == m for m in messages) == 2, messages
        assert "Exception found while executing function." in messages, messages
    assert all(line["task_name"] == TASK for lines in by_job.values() for line in lines)
    assert {r["processName"] for r in records if "task_id" in r} == {"worker-0", "worker-1"}


def test_jobs_enqueued_outside_a_request_get_their_own_id(tmp_path: Path, redis: RedisServer) -> None:
    """A task kicked by a script (no request) runs under its task id, logged as generated."""
    redis.flush()
    worker = taskiq_worker(tmp_path, redis, "worker")
    code = f"""
import asyncio
from {APP} import broker, process

async def main() -> None:
    await broker.startup()
    print((await process.kiq(5)).task_id)
    print((await process.kiq(6)).task_id)
    await broker.shutdown()

asyncio.run(main())
"""
    try:
        worker.wait_for(ready, 30, "both worker processes to listen")
        job_ids = run_python(code, child_env(redis)).split()
        worker.wait_for(done(2), 30, "2 tasks to finish")
    finally:
        worker.stop()
    by_job = job_lines(worker.records())
    assert len(job_ids) == 2
    for job_id in job_ids:
        lines = by_job[job_id]
        assert {line["tracking_id"] for line in lines} == {job_id}, lines
        assert any("no tracking ID came with the job" in str(line["message"]) for line in lines), lines


def test_a_worker_killed_mid_task_redelivers_it_under_the_same_id(tmp_path: Path, redis: RedisServer) -> None:
    """SIGKILL the worker (main and child processes) while the task sleeps; the unacknowledged stream entry
    is claimed by a new worker once idle for 2 s, and runs again under the request's ID."""
    redis.flush()
    env = {"IDLE_TIMEOUT_MS": "2000"}
    first = taskiq_worker(tmp_path, redis, "first", env)
    try:
        first.wait_for(ready, 30, "the first worker to listen")
        with web_service(tmp_path, f"{APP}:web", redis) as web:
            sent = send_concurrently(web.base_url, [7], lambda item: f"/items/{item}?pause=1")[0]
            first.wait_for(lambda rs: any(r["message"] == "processing item 7" for r in rs), 30, "the task to start")
            first.kill()
        second = taskiq_worker(tmp_path, redis, "second", env)
        try:
            second.wait_for(lambda rs: any(r["message"] == "item 7 done" for r in rs), 60, "the redelivery")
        finally:
            second.stop()
    finally:
        first.stop()
    assert first.proc is not None and first.proc.returncode == -signal.SIGKILL
    assert not any(r["message"] == "item 7 done" for r in first.records())
    for worker in (first, second):
        lines = job_lines(worker.records())[sent.job_id]
        assert lines and {line["tracking_id"] for line in lines} == {sent.tracking_id}, lines
