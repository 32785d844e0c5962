"""gunicorn with uvicorn workers, as the README runs it: every stdout and stderr line is JSON, from the
arbiter's first line to its last; each worker's lines name it; ``--preload`` works; SIGTERM right after a
burst loses no line; a SIGKILLed worker is replaced and its successor logs on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import free_port, parse_json_lines

APP = """
import logging, os
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from service import TrackingIDMiddleware, setup_logging

setup_logging()
app = FastAPI()
app.add_middleware(TrackingIDMiddleware)
log = logging.getLogger("burst")


@app.get("/burst")
def burst(n: int) -> PlainTextResponse:
    for i in range(n):
        log.info("b%d-%d", os.getpid(), i)
    return PlainTextResponse(str(os.getpid()))
"""

BURST = 3000


class Gunicorn:
    def __init__(self, tmp_path: Path, preload: bool) -> None:
        (tmp_path / "burstapp.py").write_text(APP)
        self.port = free_port()
        self.out, self.err = tmp_path / "out", tmp_path / "err"
        command = [sys.executable, "-m", "gunicorn", "burstapp:app", "-k", "uvicorn_worker.UvicornWorker", "-w", "2"]
        command += ["--logger-class", "service.logs.gunicorn.Logger", "-b", f"127.0.0.1:{self.port}"]
        command += ["--graceful-timeout", "20"] + (["--preload"] if preload else [])
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOG_")}
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen(command, stdout=out, stderr=err, cwd=tmp_path, env=env)

    def wait_for(self, text: bytes, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.out.read_bytes().count(text) < count:
            assert self.proc.poll() is None, self.err.read_text()
            assert time.monotonic() < deadline, f"waited for {count}x {text!r}: {self.out.read_text()[-3000:]}"
            time.sleep(0.1)

    def burst(self, n: int) -> int:
        response = httpx.get(f"http://127.0.0.1:{self.port}/burst", params={"n": n}, timeout=30)
        assert response.status_code == 200
        return int(response.text)

    def records(self) -> list[dict[str, Any]]:
        return parse_json_lines(self.out.read_bytes()) + parse_json_lines(self.err.read_bytes(), "stderr")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture(params=[False, True], ids=["fork-then-import", "preload"])
def gunicorn(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Gunicorn]:
    server = Gunicorn(tmp_path, preload=request.param)
    try:
        yield server
    finally:
        server.stop()


def test_every_line_json_workers_named_nothing_lost(gunicorn: Gunicorn) -> None:
    gunicorn.wait_for(b"Application startup complete.", 2)
    first = gunicorn.burst(10)
    os.kill(first, signal.SIGKILL)
    gunicorn.wait_for(b"Application startup complete.", 3)
    pids = {gunicorn.burst(10) for _ in range(6)}
    assert first not in pids, "the killed worker was replaced"
    last = gunicorn.burst(BURST)
    gunicorn.proc.send_signal(signal.SIGTERM)  # right after the burst
    assert gunicorn.proc.wait(60) == 0
    records = gunicorn.records()
    messages = [r["message"] for r in records]
    assert messages[0].startswith("Starting gunicorn"), messages[:3]
    assert any(m.startswith("Shutting down: Master") for m in messages)
    arbiter = {r["processName"] for r in records if r["message"].startswith(("Starting gunicorn", "Listening at"))}
    assert arbiter == {"MainProcess"}
    booted = [r for r in records if r["message"].startswith("Booting worker with pid")]
    assert len(booted) >= 3
    for record in booted:
        assert record["processName"] == f"Worker-{record['message'].rsplit(' ', 1)[1]}"
    for record in records:
        if record["name"] in ("burst", "service.access", "uvicorn.error"):
            assert record["processName"].startswith("Worker-"), record
    burst = [r for r in records if r["name"] == "burst"]
    for record in burst:
        pid, _ = record["message"][1:].split("-")
        assert record["processName"] == f"Worker-{pid}"
    assert [r["message"] for r in burst if r["message"].startswith(f"b{last}-")][-BURST:] == [
        f"b{last}-{i}" for i in range(BURST)
    ], "every line of the last burst, written before the worker exited"
