"""A stdout nobody reads (a full pipe): SIGTERM still ends the process within LOG_SHUTDOWN_TIMEOUT, and
stderr says in one JSON line how many lines could not be written. Real uvicorn, real pipe, in both overflow
modes; in ``block`` mode even with the event loop itself waiting for room in the full queue."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.support import ROOT, free_port

REQUESTS = 800  # 2 lines each, ~300-400 bytes per line: several times a 64 KiB pipe buffer
BOUND = 2  # LOG_SHUTDOWN_TIMEOUT in these tests
MARGIN = 5  # uvicorn's shutdown steps and interpreter exit on a loaded machine


@dataclass
class Stalled:
    proc: subprocess.Popen[bytes]
    base_url: str
    err_path: Path
    stdout: list[bytes] = field(default_factory=list)  # complete lines read after the process is gone

    def sigterm_and_wait(self) -> float:
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(BOUND + 20)
        return time.monotonic() - started

    def report(self) -> dict[str, Any]:
        """The one JSON line on stderr that counts the lines lost; every stderr line must be JSON."""
        lines = [orjson.loads(line) for line in self.err_path.read_bytes().splitlines()]
        [report] = [line for line in lines if "lines_lost" in line]
        assert report["level"] == "ERROR" and "LOG_SHUTDOWN_TIMEOUT" in report["message"]
        assert isinstance(report, dict)
        return report


@contextmanager
def stalled_service(tmp_path: Path, **settings: str) -> Iterator[Stalled]:
    """``python -m service`` (the test app) with stdout a pipe nobody reads until the process is gone."""
    port = free_port()
    err_path = tmp_path / "stderr"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOG_")}
    env.update({"LOG_SHUTDOWN_TIMEOUT": str(BOUND), "PYTHONPATH": str(ROOT), **settings})
    read_end, write_end = os.pipe()
    command = [sys.executable, "-m", "service", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--app", "tests.integration.stall_app:app"]
    with err_path.open("wb") as err:
        proc = subprocess.Popen(command, stdout=write_end, stderr=err, env=env, cwd=tmp_path)
    os.close(write_end)
    stalled = Stalled(proc, f"http://127.0.0.1:{port}", err_path)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, err_path.read_text()
            try:
                if httpx.get(f"{stalled.base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield stalled
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        os.set_blocking(read_end, False)
        chunks = []
        try:
            while chunk := os.read(read_end, 1 << 16):
                chunks.append(chunk)
        except BlockingIOError:
            pass
        os.close(read_end)
        stalled.stdout[:] = b"".join(chunks).split(b"\n")[:-1]  # a batch cut short may leave a partial line


def test_sigterm_with_a_stalled_stdout_exits_within_the_bound(tmp_path: Path) -> None:
    with stalled_service(tmp_path, LOG_OVERFLOW="drop") as service:
        with httpx.Client(base_url=service.base_url, timeout=10) as client:
            for _ in range(REQUESTS):  # two lines each: the handler's and the access line
                assert client.get("/flood", params={"n": 1}).status_code == 200, "the loop keeps serving"
        took = service.sigterm_and_wait()
    assert took < BOUND + MARGIN, f"exit took {took:.1f}s with LOG_SHUTDOWN_TIMEOUT={BOUND}"
    lost = service.report()["lines_lost"]
    assert lost > 0
    access = sum(1 for line in service.stdout if orjson.loads(line)["name"] == "service.access")
    assert access < REQUESTS, "the pipe really was full"
    assert access + lost >= REQUESTS, "every access line was either written or counted as lost"


@pytest.mark.parametrize("route", ["flood", "flood_sync"])
def test_sigterm_while_a_log_call_waits_for_room_in_block_mode(tmp_path: Path, route: str) -> None:
    """LOG_OVERFLOW=block, queue and pipe full, a request's log call waiting on the loop's own thread
    (an async endpoint) or on a thread of the pool (a sync endpoint)."""
    flood = 5000
    with stalled_service(tmp_path, LOG_OVERFLOW="block", LOG_QUEUE_SIZE="100") as service:
        responses: list[int] = []

        def call_flood() -> None:
            try:
                responses.append(httpx.get(f"{service.base_url}/{route}", params={"n": flood}, timeout=60).status_code)
            except httpx.TransportError:
                responses.append(0)

        caller = threading.Thread(target=call_flood, daemon=True)
        caller.start()
        if route == "flood":
            deadline = time.monotonic() + 20
            while True:  # the loop is blocked once a probe gets no answer
                assert time.monotonic() < deadline, "the event loop never blocked: was the pipe not full?"
                try:
                    httpx.get(f"{service.base_url}/healthz", timeout=1)
                except httpx.TimeoutException:
                    break
                time.sleep(0.1)
        else:
            time.sleep(3)  # the pool thread fills pipe and queue in well under a second, then waits
            assert httpx.get(f"{service.base_url}/healthz", timeout=5).status_code == 200, "the loop is free"
        assert not responses, "the flood must still be waiting for room in the queue"
        took = service.sigterm_and_wait()
        caller.join(10)
    assert took < BOUND + MARGIN, f"exit took {took:.1f}s with LOG_SHUTDOWN_TIMEOUT={BOUND}"
    lost = service.report()["lines_lost"]
    written = {orjson.loads(line)["seq"] for line in service.stdout if b'"flood ' in line}
    assert len(written) < flood, "the pipe really was full"
    assert len(written) + lost >= flood, "every flood line was either written or counted as lost"
