"""gunicorn with uvicorn workers and the user's own ``/metrics`` mount: one coherent set across workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.metrics.support import levels_in, stable_scrape, value, wait_for, written_by_level
from tests.support import ROOT, free_port

pytestmark = pytest.mark.timeout(120)

LOAD = {"INFO": 30, "WARNING": 4, "ERROR": 2}


def test_gunicorn_workers_report_one_set_that_survives_a_killed_worker(tmp_path: Path) -> None:
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    out = tmp_path / "stdout.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PROMETHEUS_MULTIPROC_DIR": str(multiproc), "LOG_QUEUE_SIZE": "3000"}
    command = [
        sys.executable, "-m", "gunicorn", "-k", "uvicorn_worker.UvicornWorker", "-w", "2",
        "-b", f"127.0.0.1:{port}", "-c", str(Path(__file__).with_name("gunicorn_conf.py")), "tests.metrics.app:app",
    ]  # fmt: skip
    with out.open("wb") as stdout, (tmp_path / "stderr.log").open("wb") as stderr:
        proc = subprocess.Popen(command, stdout=stdout, stderr=stderr, env=env, cwd=tmp_path)
    try:
        wait_for(lambda: out.read_bytes().count(b"Application startup complete.") >= 2, "two gunicorn workers", 60)
        _load(base)
        before, records = stable_scrape(f"{base}/metrics", out.read_bytes)
        assert written_by_level(before) == levels_in(records)
        assert value(before, "tracking_logs_queue_capacity") == 3000
        pids = sorted({int(p.stem.rsplit("_", 1)[1]) for p in multiproc.glob("counter_*.db")})
        assert len(pids) == 2, pids  # both workers counted, the master (which logs nothing through us) not
        os.kill(pids[0], signal.SIGKILL)
        wait_for(lambda: out.read_bytes().count(b"Application startup complete.") >= 3, "a replacement worker", 60)
        # gunicorn's child_exit hook (our gunicorn_conf) removed the dead worker's live gauges at once
        wait_for(lambda: not (multiproc / f"gauge_livemax_{pids[0]}.db").exists(), "child_exit", 10)
        _load(base)
        after, records = stable_scrape(f"{base}/metrics", out.read_bytes)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    for key, number in before.items():
        if key[0].startswith("tracking_logs_") and key[0].endswith(("_total", "_count", "_bucket")):
            assert after[key] >= number, key
    assert written_by_level(after) == levels_in(records)
    assert sum(1 for r in records if str(r["message"]).startswith("burst ")) == 2 * 5 * sum(LOAD.values())
    assert not [r for r in records if str(r.get("path", "")).startswith("/metrics")]  # no access line for scrapes


def _load(base: str) -> None:
    with httpx.Client(base_url=base, timeout=10) as client:
        for _ in range(5):
            for level, n in LOAD.items():
                assert client.get("/burst", params={"n": n, "level": level}).status_code == 200
        time.sleep(0.1)
