"""Celery with a real redis-server, real ``celery worker`` processes and the example app under uvicorn."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

pytest.importorskip("celery")

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

APP = "tests.jobs.example_celery"
TASK = f"{APP}.process"


def celery_worker(
    tmp_path: Path, redis: RedisServer, name: str, *pool: str, env: dict[str, str] | None = None
) -> Worker:
    command = [sys.executable, "-m", "celery", "-A", APP, "worker", "--loglevel", "INFO", *pool,
               "--without-mingle", "--without-gossip", "--without-heartbeat"]  # fmt: skip
    return Worker(command, child_env(redis, env), tmp_path, name).start()


def ready(records: list[Record]) -> bool:
    return any(str(r.get("message", "")).endswith(" ready.") for r in records)


def succeeded(count: int) -> Callable[[list[Record]], bool]:
    def check(records: list[Record]) -> bool:
        return sum(1 for r in records if " succeeded in " in str(r.get("message", ""))) >= count

    return check


def test_200_concurrent_requests_each_job_logs_under_its_request_id(tmp_path: Path, redis: RedisServer) -> None:
    """200 requests at once each enqueue a job; a thread-pool worker runs them 8 at a time (every tenth
    fails once and is retried). Every worker line of every job carries its own request's tracking ID."""
    redis.flush()
    worker = celery_worker(tmp_path, redis, "worker", "--pool", "threads", "--concurrency", "8")
    try:
        worker.wait_for(ready, 30, "the worker to be ready")
        with web_service(tmp_path, f"{APP}:web", redis) as web:
            sent = send_concurrently(web.base_url, range(1, 201), lambda item: f"/items/{item}")
            records = worker.wait_for(succeeded(200), 60, "200 jobs to succeed")
        web_records = web.records()
    finally:
        worker.stop()
    records = worker.records()  # after shutdown: every line, all JSON
    checked = assert_jobs_follow_requests(
        sent, records, web_records, ["processing item {item}", "item {item} done", "succeeded in"]
    )
    assert checked >= 200 * 3
    by_job = job_lines(records)
    retried = [s for s in sent if s.item % 10 == 0]
    for s in retried:  # the retry ran as a second delivery of the same task, under the same ID
        messages = [str(line["message"]) for line in by_job[s.job_id]]
        assert sum(f"processing item {s.item}" == m for m in messages) == 2, messages
        assert any("retry: Retry in 0s" in m for m in messages), messages
    assert all(line["task_name"] == TASK for lines in by_job.values() for line in lines)


def test_jobs_enqueued_outside_a_request_get_their_own_id(tmp_path: Path, redis: RedisServer) -> None:
    """A job sent from a script (no request) runs under a fresh ID, its task id, logged as generated;
    two such jobs never share one."""
    redis.flush()
    worker = celery_worker(tmp_path, redis, "worker", "--pool", "threads", "--concurrency", "2")
    try:
        worker.wait_for(ready, 30, "the worker to be ready")
        out = run_python(f"from {APP} import process; print(process.delay(5).id); print(process.delay(6).id)",
                         child_env(redis))  # fmt: skip
        job_ids = out.split()
        records = worker.wait_for(succeeded(2), 30, "2 jobs to succeed")
    finally:
        worker.stop()
    by_job = job_lines(worker.records())
    for job_id in job_ids:
        lines = by_job[job_id]
        assert {line["tracking_id"] for line in lines} == {job_id}, lines
        assert any("no tracking ID came with the job" in str(line["message"]) for line in lines), lines
    assert len(records) > 0


def test_eager_mode_keeps_the_callers_id_and_restores_it_after(tmp_path: Path, redis: RedisServer) -> None:
    """task_always_eager: no message is published, the task runs inline under the caller's ID (the retry
    of item 10 too, nested), and the caller's context is intact afterwards."""
    code = f"""
import logging
from service import bind_tracking_id, get_tracking_id, setup_logging
from {APP} import celery_app, process
celery_app.conf.task_always_eager = True
setup_logging()
log = logging.getLogger("caller")
with bind_tracking_id("caller-id-0001"):
    process.delay(3)
    process.delay(10)
    log.info("after the eager tasks", extra={{"seen": get_tracking_id()}})
log.info("outside", extra={{"seen": get_tracking_id()}})
"""
    from tests.support import parse_json_lines

    records = parse_json_lines(run_python(code, child_env(redis)).encode())
    task_lines = [r for r in records if r["name"] in ("example.jobs", "celery.app.trace")]
    assert len(task_lines) == 8, task_lines  # 3: two lines + succeeded; 10: one + retry, two + succeeded
    assert {r["tracking_id"] for r in task_lines} == {"caller-id-0001"}, task_lines
    messages = [r["message"] for r in records]
    assert messages.count("processing item 10") == 2 and "item 10 done" in messages
    after = next(r for r in records if r["message"] == "after the eager tasks")
    assert after["seen"] == after["tracking_id"] == "caller-id-0001" and "task_id" not in after
    outside = next(r for r in records if r["message"] == "outside")
    assert outside["seen"] is None and outside["tracking_id"] is None


def test_a_worker_killed_mid_job_redelivers_it_under_the_same_id(tmp_path: Path, redis: RedisServer) -> None:
    """acks_late: SIGKILL the whole worker (parent and prefork child) while the job sleeps (5 s); after the
    visibility timeout a new worker runs it again, under the ID of the request that enqueued it."""
    redis.flush()
    env = {"VISIBILITY_TIMEOUT": "2"}
    first = celery_worker(tmp_path, redis, "first", "--pool", "prefork", "--concurrency", "1", env=env)
    try:
        first.wait_for(ready, 30, "the first worker to be ready")
        with web_service(tmp_path, f"{APP}:web", redis) as web:
            sent = send_concurrently(web.base_url, [7], lambda item: f"/items/{item}?pause=5")[0]
            first.wait_for(lambda rs: any(r["message"] == "processing item 7" for r in rs), 30, "the job to start")
            first.kill()
        time.sleep(2.5)  # past the visibility timeout: the new worker restores the unacked message at start
        second = celery_worker(tmp_path, redis, "second", "--pool", "prefork", "--concurrency", "1", env=env)
        try:
            second.wait_for(lambda rs: any(" succeeded in " in str(r["message"]) for r in rs), 60, "the redelivery")
        finally:
            second.stop()
    finally:
        first.stop()
    assert first.proc is not None and first.proc.returncode == -signal.SIGKILL
    for worker in (first, second):
        lines = job_lines(worker.records())[sent.job_id]
        assert lines and {line["tracking_id"] for line in lines} == {sent.tracking_id}, lines
    assert any(r["message"] == "item 7 done" for r in job_lines(second.records())[sent.job_id])
