"""`uvicorn --reload` with the shipped log config and stdout written into the watched directory: the
reloader's own INFO lines must not feed themselves (each would be a change that logs another)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from service.logs.dictconfig import config_path
from tests.support import free_port, parse_json_lines

pytest.importorskip("watchfiles", reason="uvicorn --reload needs watchfiles (uvicorn[standard])")

APP = """
from fastapi import FastAPI
app = FastAPI()

@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
"""


def test_reload_with_stdout_in_the_watched_directory_is_quiet(tmp_path: Path) -> None:
    (tmp_path / "reloadapp.py").write_text(APP)
    port = free_port()
    out = tmp_path / "service.log"  # inside the watched directory, as in the report
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOG_")}
    command = [sys.executable, "-m", "uvicorn", "reloadapp:app", "--reload",
               "--port", str(port), "--log-config", str(config_path())]  # fmt: skip
    with out.open("wb") as stream:
        proc = subprocess.Popen(command, stdout=stream, stderr=subprocess.STDOUT, cwd=tmp_path, env=env)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        time.sleep(4)  # several reloader polls: each line written would be a change
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    records = parse_json_lines(out.read_bytes())
    assert any("Started reloader process" in r["message"] for r in records)
    assert not [r for r in records if "change" in r["message"] and "detected" in r["message"]]
    assert sum("Started server process" in r["message"] for r in records) == 1, "never reloaded"
