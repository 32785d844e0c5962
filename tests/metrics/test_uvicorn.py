"""The CLI-run service under uvicorn, 1 and 2 workers: /metrics agrees exactly with what stdout holds."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import pytest

from tests.metrics.support import levels_in, stable_scrape, value, wait_for, written_by_level
from tests.support import ROOT, ServiceProcess

pytestmark = pytest.mark.timeout(120)

APP = "tests.metrics.app:app"
ENV = {"PYTHONPATH": str(ROOT), "LOG_QUEUE_SIZE": "5000", "LOG_LEVEL": "DEBUG"}
LOAD = {"DEBUG": 7, "INFO": 40, "WARNING": 5, "ERROR": 3, "CRITICAL": 2}


def _load(service: ServiceProcess, rounds: int = 6) -> None:
    with httpx.Client(base_url=service.base_url, timeout=10) as client:
        for _ in range(rounds):
            for level, n in LOAD.items():
                assert client.get("/burst", params={"n": n, "level": level}).status_code == 200


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


@pytest.mark.parametrize("workers", [1, 2])
def test_lines_written_by_level_equal_the_lines_on_stdout(tmp_path: Path, workers: int) -> None:
    with ServiceProcess(tmp_path, workers=workers, env=ENV, app=APP) as service:
        _load(service)
        samples, records = stable_scrape(f"{service.base_url}/metrics", service.stdout_bytes)
    assert written_by_level(samples) == levels_in(records)
    assert sum(1 for r in records if str(r["message"]).startswith("burst ")) == 6 * sum(LOAD.values())
    assert value(samples, "tracking_logs_queue_capacity") == 5000
    assert value(samples, "tracking_logs_queue_depth") == 0
    assert value(samples, "tracking_logs_lines_dropped_total", reason="queue_full") == 0
    assert value(samples, "tracking_logs_write_errors_total", sink="stdout") == 0
    # one histogram observation per written batch: at least one, at most one per line
    batches = value(samples, "tracking_logs_write_batch_duration_seconds_count")
    assert 1 <= batches <= len(records)
    build = [labels for (name, labels), v in samples.items() if name == "tracking_logs_build_info" and v == 1]
    assert len(build) == 1 and dict(build[0])["version"]
    # the scrapes left no access line; the bursts did
    assert not [r for r in records if r.get("path") == "/metrics"]
    assert len([r for r in records if r.get("path") == "/burst"]) == 6 * len(LOAD)


def test_a_killed_worker_is_replaced_and_no_counter_goes_backwards(tmp_path: Path) -> None:
    with ServiceProcess(tmp_path, workers=2, env=ENV, app=APP) as service:
        url = f"{service.base_url}/metrics"
        assert service.proc is not None
        _load(service, rounds=3)
        before, _ = stable_scrape(url, service.stdout_bytes)
        multiproc = _multiproc_dir(service.proc.pid)
        workers = [pid for pid in _children(service.proc.pid) if (multiproc / f"counter_{pid}.db").exists()]
        assert len(workers) == 2, workers  # (the supervisor may have other children: multiprocessing's helpers)
        victim = workers[0]
        assert (multiproc / f"gauge_livemax_{victim}.db").exists()
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: service.stdout_bytes().count(b"Application startup complete.") >= 3, "a replacement worker")
        _load(service, rounds=3)
        after, records = stable_scrape(url, service.stdout_bytes)
        assert not (multiproc / f"gauge_livemax_{victim}.db").exists()  # its live gauges are gone ...
        assert (multiproc / f"counter_{victim}.db").exists()  # ... its counts stay in the totals
    for key, number in before.items():
        if key[0].endswith(("_total", "_count", "_bucket", "_sum")):
            assert after[key] >= number, key
    assert written_by_level(after) == levels_in(records)
    assert sum(1 for r in records if str(r["message"]).startswith("burst ")) == 6 * sum(LOAD.values())
    assert value(after, "tracking_logs_queue_capacity") == 5000


def _multiproc_dir(supervisor: int) -> Path:
    """The directory the CLI made for its workers (read from a worker's environment: they are spawned)."""
    for child in _children(supervisor):
        for item in Path(f"/proc/{child}/environ").read_bytes().split(b"\0"):
            if item.startswith(b"PROMETHEUS_MULTIPROC_DIR="):
                return Path(item.split(b"=", 1)[1].decode())
    raise AssertionError("the CLI did not set PROMETHEUS_MULTIPROC_DIR")


def test_metrics_on_a_port_of_their_own_and_off(tmp_path: Path) -> None:
    from tests.support import free_port

    port = free_port()
    with ServiceProcess(tmp_path, workers=2, env={**ENV, "LOG_METRICS_PORT": str(port)}, app=APP) as service:
        _load(service, rounds=1)
        samples, records = stable_scrape(f"http://127.0.0.1:{port}/metrics", service.stdout_bytes)
        assert written_by_level(samples) == levels_in(records)
        # the app's own mount still answers on the app port; the CLI added nothing in front of it
        assert httpx.get(f"{service.base_url}/metrics").status_code == 200
    with ServiceProcess(tmp_path, env={**ENV, "LOG_METRICS": "false"}) as service:  # the demo app: no /metrics
        assert httpx.get(f"{service.base_url}/metrics").status_code == 404


def test_the_multiprocess_directory_is_removed_at_exit(tmp_path: Path) -> None:
    service = ServiceProcess(tmp_path, workers=2, env=ENV, app=APP).start()
    assert service.proc is not None
    path = _multiproc_dir(service.proc.pid)
    assert any(path.glob("counter_*.db"))
    assert service.stop() == 0
    assert not path.exists()
