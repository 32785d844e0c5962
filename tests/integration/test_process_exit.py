"""Draining at process end, SIGINT, and the README's jq workflow against real output."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support import ROOT, ServiceProcess, parse_json_lines

SCRIPT = """
import logging, sys
from service import setup_logging, bind_tracking_id
setup_logging(queue_size=1000)
log = logging.getLogger("burst")
with bind_tracking_id("exit-test-0001"):
    for i in range(20000):
        log.info("n%d", i)
{ending}
"""


@pytest.mark.parametrize(
    "ending",
    ["pass", "sys.exit(3)", "raise RuntimeError('crash at the end')"],
    ids=["normal-exit", "sys-exit", "uncaught-exception"],
)
def test_interpreter_exit_drains_the_queue(tmp_path: Path, ending: str) -> None:
    """Whatever ends the interpreter, every queued line is written; an uncaught exception is a JSON line."""
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(ending=ending)],
        capture_output=True,
        timeout=120,
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("LOG_")},
    )
    records = parse_json_lines(result.stdout)
    burst = [r["message"] for r in records if r["name"] == "burst"]
    assert burst == [f"n{i}" for i in range(20000)]
    if "crash" in ending:
        crash = [r for r in records if r["level"] == "CRITICAL"]
        assert len(crash) == 1 and "RuntimeError: crash at the end" in crash[0]["exc_info"]
        assert result.stderr == b""


def test_sigint_drains_too(tmp_path: Path) -> None:
    with ServiceProcess(tmp_path) as service:
        tid = httpx.get(service.base_url + "/demo/context", timeout=10).headers["x-tracking-id"]
        service.stop(signal.SIGINT)
    records = service.records()
    assert [r["name"] for r in records if r["tracking_id"] == tid] == ["service.demo", "service.access"]
    assert records[-1]["message"].startswith("Finished server process")


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed (scripts/tools.sh installs it)")
def test_readme_jq_select_finds_the_request(tmp_path: Path) -> None:
    """`... | jq 'select(.tracking_id=="<id>")'` on the raw stdout returns exactly that request's lines."""
    with ServiceProcess(tmp_path) as service:
        tid = httpx.get(service.base_url + "/demo/dependency", timeout=10).headers["x-tracking-id"]
        httpx.get(service.base_url + "/demo/context", timeout=10)
        service.stop()
    result = subprocess.run(
        ["jq", "-c", f'select(.tracking_id=="{tid}")'],
        input=service.stdout_bytes(),
        capture_output=True,
        check=True,
        timeout=30,
    )
    found = parse_json_lines(result.stdout)
    assert [r["message"] for r in found][:2] == [
        "dependency injected the tracking id",
        "nested coroutine sees the context",
    ]
    assert len(found) == 3 and found[2]["name"] == "service.access"
