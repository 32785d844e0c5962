"""Real components for the job-queue tests: a redis-server, worker processes, the web app, requests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from tests.support import ROOT, ServiceProcess, free_port, parse_json_lines

Record = dict[str, Any]


def redis_server_binary() -> str | None:
    """``redis-server`` from PATH; installed from Debian when missing and we are root (as scripts/tools.sh does)."""
    found = shutil.which("redis-server")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True, env=env, timeout=300)
        subprocess.run(["apt-get", "install", "-y", "-qq", "redis-server"], check=False, capture_output=True,
                       env=env, timeout=300)  # fmt: skip
        found = shutil.which("redis-server")
    return found


class RedisServer:
    """A throwaway redis-server on a free loopback port: no persistence, stopped (and checked) after."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log = workdir / f"redis-{self.port}.log"
        self.command = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                        "--dir", str(workdir), "--logfile", str(self.log)]  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        self.proc = subprocess.Popen(self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.ping():
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise AssertionError(f"redis-server did not start: {self.log.read_text(errors='replace')[-2000:]}")

    def ping(self) -> bool:
        import socket

        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def flush(self) -> None:
        import socket

        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(b"FLUSHALL\r\n")
            assert sock.recv(16).startswith(b"+OK")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def child_env(redis: RedisServer, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("LOG_")}
    env.update({"REDIS_URL": redis.url, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)})
    env.update(extra or {})
    return env


class Worker:
    """A queue worker as users start it, in its own process group (so a kill takes its children too)."""

    def __init__(self, command: Sequence[str], env: Mapping[str, str], workdir: Path, name: str) -> None:
        self.command = list(command)
        self.env = dict(env)
        self.stdout_path = workdir / f"{name}.stdout"
        self.stderr_path = workdir / f"{name}.stderr"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(self.command, stdout=out, stderr=err, env=self.env, cwd=ROOT,
                                         start_new_session=True)  # fmt: skip
        return self

    def records(self) -> list[Record]:
        return parse_json_lines(self.stdout_path.read_bytes(), f"{self.stdout_path.name}")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_for(self, predicate: Callable[[list[Record]], bool], timeout: float, what: str) -> list[Record]:
        """Poll the parsed stdout until ``predicate`` holds (every line must parse as JSON meanwhile)."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while True:
            records = self.records()
            if predicate(records):
                return records
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited ({self.proc.returncode}) before {what}: {self.stderr()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; stderr: {self.stderr()[-3000:]}")
            time.sleep(0.2)

    def signal_group(self, sig: int) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (a warm shutdown), then SIGKILL for the whole group if it lingers."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.signal_group(signal.SIGKILL)
                self.proc.wait(5)
        self.signal_group(signal.SIGKILL)  # pool children that outlived their parent

    def kill(self) -> None:
        self.signal_group(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(10)


class WebService(ServiceProcess):
    """The example's FastAPI app under ``python -m service`` (uvicorn), one worker, on a free port.
    Ready when its OpenAPI document is served (the examples have no health route)."""

    def start(self, timeout: float = 30.0) -> WebService:
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(self.command, stdout=out, stderr=err, env=self.env, cwd=self.cwd)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"web app exited early ({self.proc.returncode}): {self.stderr_text()}")
            try:
                if httpx.get(f"{self.base_url}/openapi.json", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop(signal.SIGKILL)
        raise AssertionError(f"web app did not start: {self.stderr_text()}")

    def __enter__(self) -> WebService:
        return self.start()


def web_service(tmp_path: Path, app: str, redis: RedisServer) -> WebService:
    service = WebService(tmp_path, app=app)
    service.env = child_env(redis)  # not the test's own environment: no LOG_* leaks in
    return service


def new_traceparent(index: int) -> tuple[str, str]:
    """A distinct sampled trace per request: (traceparent, trace_id)."""
    trace_id = os.urandom(16).hex()
    return f"00-{trace_id}-{os.urandom(8).hex()}-01", trace_id


class Sent:
    """One request that enqueued a job: what the response said and which trace it carried."""

    __slots__ = ("item", "job_id", "trace_id", "tracking_id")

    def __init__(self, item: int, tracking_id: str, job_id: str, trace_id: str) -> None:
        self.item, self.tracking_id, self.job_id, self.trace_id = item, tracking_id, job_id, trace_id


def send_concurrently(base_url: str, items: Sequence[int], path: Callable[[int], str], limit: int = 50) -> list[Sent]:
    """POST one request per item, all at once (at most ``limit`` connections), each with its own trace."""

    async def run() -> list[Sent]:
        # The client drops idle connections (2 s) before uvicorn does (5 s): no request on a closing connection.
        limits = httpx.Limits(max_connections=limit, max_keepalive_connections=limit, keepalive_expiry=2.0)
        async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:

            async def one(item: int) -> Sent:
                traceparent, trace_id = new_traceparent(item)
                response = await client.post(path(item), headers={"traceparent": traceparent})
                assert response.status_code == 200, response.text
                return Sent(item, response.headers["x-tracking-id"], response.json()["job_id"], trace_id)

            return list(await asyncio.gather(*(one(item) for item in items)))

    return asyncio.run(run())


def job_lines(records: Sequence[Record]) -> dict[str, list[Record]]:
    """Worker lines grouped by the job they were logged for (the ``task_id`` field)."""
    grouped: dict[str, list[Record]] = {}
    for record in records:
        task_id = record.get("task_id")
        if task_id is not None:
            grouped.setdefault(str(task_id), []).append(record)
    return grouped


def trace_rendered(records: Sequence[Record], tracking_id: str) -> bool:
    """Whether this build's middleware and renderer put W3C trace fields on a request's lines."""
    return any(r.get("tracking_id") == tracking_id and "trace_id" in r for r in records)


def run_python(code: str, env: Mapping[str, str], timeout: float = 60) -> str:
    """Run ``code`` in a fresh interpreter (enqueueing outside any request); its stdout, checked."""
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, timeout=timeout)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
    return done.stdout.decode()
