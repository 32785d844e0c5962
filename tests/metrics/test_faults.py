"""Lost lines, counted exactly: a stalled stdout under LOG_OVERFLOW=drop, and a full disk in file mode."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.metrics.support import levels_in, stable_scrape, value, wait_for, written_by_level
from tests.support import ROOT, ServiceProcess, free_port, parse_json_lines

pytestmark = pytest.mark.timeout(180)

APP = "tests.metrics.app:app"


class _LateReader:
    """Holds a pipe unread (the collector stalled) until ``start()``; then reads it all, in the background."""

    def __init__(self, pipe: object) -> None:
        self.pipe = pipe
        self.data = bytearray()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        read = self.pipe.read1  # type: ignore[attr-defined]
        while chunk := read(65536):
            with self.lock:
                self.data += chunk

    def __call__(self) -> bytes:
        with self.lock:
            return bytes(self.data)


def test_a_stalled_stdout_under_the_drop_policy_counts_exactly_the_lines_it_lost(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **_env(), "LOG_OVERFLOW": "drop", "LOG_QUEUE_SIZE": "100", "LOG_DROP_REPORT_INTERVAL": "0.5",
        "LOG_ACCESS": "false",
    }  # fmt: skip
    command = [sys.executable, "-m", "service", "--port", str(port), "--app", APP]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=tmp_path)
    reader = _LateReader(proc.stdout)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _healthy(base), "the service")
        sent = 0
        with httpx.Client(base_url=base, timeout=10) as client:
            for level in ("INFO", "WARNING", "ERROR", "DEBUG", "INFO"):  # DEBUG is below LOG_LEVEL: never sent
                response = client.get("/burst", params={"n": 2000, "level": level})
                assert response.status_code == 200  # the event loop never waits for the stalled pipe
                sent += 2000 if level != "DEBUG" else 0
            stalled = httpx.get(f"{base}/metrics", timeout=10)  # served while stdout is stalled
            assert stalled.status_code == 200
        reader.start()  # the collector catches up
        time.sleep(1.5)  # a last drop report is due after LOG_DROP_REPORT_INTERVAL
        samples, records = stable_scrape(f"{base}/metrics", reader)
    finally:
        proc.terminate()
        proc.wait(30)
    present = sum(1 for r in records if str(r["message"]).startswith("burst "))
    dropped = value(samples, "tracking_logs_lines_dropped_total", reason="queue_full")
    assert 0 < present < sent
    assert dropped == sent - present
    assert dropped == sum(int(r["dropped"]) for r in records if "dropped" in r)  # what the report lines said
    assert written_by_level(samples) == levels_in(records)
    assert value(samples, "tracking_logs_lines_dropped_total", reason="write_error") == 0


@pytest.fixture
def full_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs as LOG_DIR: several batches (up to ~1k lines each) fit before it is full. Skipped where
    mounting is not allowed (unprivileged CI)."""
    mount_point = tmp_path / "logs"
    mount_point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_a_full_disk_in_file_mode_counts_exactly_the_lines_that_never_reached_the_file(
    tmp_path: Path, full_tmpfs: Path
) -> None:
    env = {**_env(), "LOG_MODE": "file", "LOG_DIR": str(full_tmpfs), "LOG_ACCESS": "false"}
    service = ServiceProcess(tmp_path, env=env, app=APP).start()
    sent = 0
    try:
        with httpx.Client(base_url=service.base_url, timeout=10) as client:
            while "No space left" not in service.stderr_text() and sent < 20_000:
                assert client.get("/burst", params={"n": 200, "level": "WARNING"}).status_code == 200
                sent += 200
            assert "No space left" in service.stderr_text(), "the disk never filled"
            for _ in range(3):  # more lines while it stays full: all of them lost
                assert client.get("/burst", params={"n": 200, "level": "ERROR"}).status_code == 200
                sent += 200
        log_file = full_tmpfs / "app.log"
        samples, records = stable_scrape(f"{service.base_url}/metrics", log_file.read_bytes)
    finally:
        service.stop()
    present = sum(1 for r in records if str(r["message"]).startswith("burst "))
    lost = value(samples, "tracking_logs_lines_dropped_total", reason="write_error")
    assert 0 < present < sent
    assert lost == sent - present
    # every lost line was a file-sink failure (the sink's label is its ``name``: "file" by the Sink contract)
    errors = {
        dict(labels)["sink"]: n for (name, labels), n in samples.items() if name == "tracking_logs_write_errors_total"
    }
    assert sum(errors.values()) == lost and errors["stdout"] == 0
    assert written_by_level(samples) == levels_in(records)
    assert parse_json_lines(service.stdout_bytes()) == []  # file mode: nothing on stdout


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False
