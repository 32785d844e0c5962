"""The demo app's ``POST /demo/job``: present only when DEMO_JOBS_REDIS_URL is set; its job logs under the
request's ID in a real celery worker. And the core never imports a queue library."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.jobs.support import RedisServer, Worker, child_env, job_lines
from tests.support import ROOT, ServiceProcess


def test_the_core_and_the_demo_app_import_no_queue_library() -> None:
    code = (
        "import sys, service, service.app, service.jobs, service.jobs.context\n"
        "loaded = {'celery', 'kombu', 'arq', 'taskiq', 'taskiq_redis', 'redis'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    env = {k: v for k, v in child_env_without_redis().items() if k != "DEMO_JOBS_REDIS_URL"}
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()[-2000:]


def child_env_without_redis() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("LOG_")}


def test_without_a_queue_the_route_is_absent(tmp_path: Path) -> None:
    service = ServiceProcess(tmp_path)
    service.env = {**child_env_without_redis(), "PYTHONUNBUFFERED": "1"}
    service.env.pop("DEMO_JOBS_REDIS_URL", None)
    with service:
        assert httpx.post(f"{service.base_url}/demo/job", timeout=10).status_code == 404


def test_the_demo_job_logs_under_the_request_id(tmp_path: Path, redis: RedisServer) -> None:
    pytest.importorskip("celery")
    redis.flush()
    env = child_env(redis, {"DEMO_JOBS_REDIS_URL": redis.url})
    command = [sys.executable, "-m", "celery", "-A", "service.jobs.demo", "worker", "--pool", "solo",
               "--without-mingle", "--without-gossip", "--without-heartbeat"]  # fmt: skip
    worker = Worker(command, env, tmp_path, "demo-worker").start()
    try:
        service = ServiceProcess(tmp_path)
        service.env = env
        with service:
            response = httpx.post(f"{service.base_url}/demo/job", timeout=10)
            assert response.status_code == 200
            body = response.json()
            assert body["tracking_id"] == response.headers["x-tracking-id"]
            worker.wait_for(lambda rs: any(" succeeded in " in str(r["message"]) for r in rs), 30, "the demo job")
        web_records = service.records()
    finally:
        worker.stop()
    lines = job_lines(worker.records())[body["job_id"]]
    assert any(line["message"] == "demo job says hello to demo" for line in lines)
    assert {line["tracking_id"] for line in lines} == {body["tracking_id"]}
    assert {line["task_name"] for line in lines} == {"demo.hello"}
    assert any(
        r["message"] == "enqueueing the demo job" and r["tracking_id"] == body["tracking_id"] for r in web_records
    )
