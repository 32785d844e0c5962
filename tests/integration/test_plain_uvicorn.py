"""Servers started without `python -m service`: plain uvicorn with the shipped --log-config."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from service.logs.dictconfig import LOG_CONFIG, config_path
from tests.support import ROOT, free_port, parse_json_lines


def test_shipped_json_matches_the_dict() -> None:
    assert json.loads(config_path().read_text()) == LOG_CONFIG


def test_plain_uvicorn_with_workers_prints_only_json(tmp_path: Path) -> None:
    """uvicorn's supervisor and workers, startup to shutdown: every stdout and stderr line is JSON."""
    port = free_port()
    out, err = tmp_path / "out", tmp_path / "err"
    command = [sys.executable, "-m", "uvicorn", "service.app:app", "--port", str(port), "--workers", "2"]
    command += ["--log-config", str(config_path())]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOG_")}
    with out.open("wb") as o, err.open("wb") as e:
        proc = subprocess.Popen(command, stdout=o, stderr=e, cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 60
        while out.read_bytes().count(b"Application startup complete.") < 2 and time.monotonic() < deadline:
            assert proc.poll() is None, err.read_text()
            time.sleep(0.1)
        response = httpx.get(f"http://127.0.0.1:{port}/demo/context", timeout=10)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    records = parse_json_lines(out.read_bytes()) + parse_json_lines(err.read_bytes(), "stderr")
    messages = [r["message"] for r in records]
    assert any(m.startswith("Started parent process") for m in messages)
    assert any(m.startswith("Stopping parent process") for m in messages)
    tid = response.headers["x-tracking-id"]
    assert [r["name"] for r in records if r["tracking_id"] == tid] == ["service.demo", "service.access"]
