"""A stdout nobody reads (a full pipe): SIGTERM still ends the process within LOG_SHUTDOWN_TIMEOUT, and
stderr says in one JSON line how many lines could not be written. Real uvicorn, real pipe."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson

from tests.support import free_port

REQUESTS = 800  # ~2 lines each, ~300 bytes per line: several times a 64 KiB pipe buffer


def test_sigterm_with_a_stalled_stdout_exits_within_the_bound(tmp_path: Path) -> None:
    port = free_port()
    err_path = tmp_path / "stderr"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOG_")}
    env["LOG_SHUTDOWN_TIMEOUT"] = "2"
    read_end, write_end = os.pipe()  # nobody reads read_end until the process is gone
    command = [sys.executable, "-m", "service", "--host", "127.0.0.1", "--port", str(port)]
    with err_path.open("wb") as err:
        proc = subprocess.Popen(command, stdout=write_end, stderr=err, env=env, cwd=tmp_path)
    os.close(write_end)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, err_path.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            for _ in range(REQUESTS):
                assert client.get("/demo/context").status_code == 200, "the loop keeps serving"
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
        took = time.monotonic() - started
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
    assert took < 2 + 6, f"exit took {took:.1f}s with LOG_SHUTDOWN_TIMEOUT=2"
    [report] = [orjson.loads(line) for line in err_path.read_bytes().splitlines()]
    assert report["level"] == "ERROR" and "LOG_SHUTDOWN_TIMEOUT" in report["message"]
    lost = report["lines_lost"]
    assert lost > 0
    complete = b"".join(chunks).split(b"\n")[:-1]  # a batch cut short may leave a partial last line
    access = sum(1 for line in complete if orjson.loads(line)["name"] == "service.access")
    assert access < REQUESTS, "the pipe really was full"
    assert access + lost >= REQUESTS, "every access line was either written or counted as lost"
