"""The sidecar / bare-metal pipeline for real: the service in file mode with two workers writes its
per-worker files, they are rotated to dated names while the real Fluent Bit tails them with sidecar.yaml,
and every line of every file arrives exactly once."""

from __future__ import annotations

import time
from datetime import date, timedelta
from pathlib import Path

import httpx

from tests.fluent_bit.support import (
    FluentBit,
    arrived_enough,
    assert_exactly_once,
    file_output_records,
    poll,
    requires_fluent_bit,
    stage_config,
    top_includes,
)
from tests.support import ServiceProcess, parse_json_lines

pytestmark = requires_fluent_bit

# Production: a renamed file stays followed 25 h and a file idle for 1 day is not picked up. Scaled down here,
# keeping the order that matters (ignore_older < rotate_wait): a released rotated file is never re-read.
ROTATE_WAIT = 8
IGNORE_OLDER = 5
REFRESH = 2  # sidecar.yaml's refresh_interval: how often the glob is scanned


def serve_requests(tmp_path: Path, log_dir: Path, paths: list[str]) -> dict[str, httpx.Response]:
    env = {"LOG_MODE": "both", "LOG_DIR": str(log_dir)}
    with ServiceProcess(tmp_path, workers=2, env=env) as service:
        responses = {path: httpx.get(service.base_url + path, timeout=10) for path in paths}
        service.stop()
    return responses


def rotate(log_dir: Path, day: date) -> list[Path]:
    """What file mode does at midnight: app-w1.log -> app-w1.YYYY-MM-DD.log, a new app-w1.log next."""
    rotated = []
    for live in sorted(log_dir.glob("*.log")):
        if live.stem in {"app", "app-w1"}:
            target = live.with_name(f"{live.stem}.{day.isoformat()}.log")
            live.rename(target)
            rotated.append(target)
    return rotated


def test_sidecar_pipeline_reads_rotated_per_worker_files_once(tmp_path: Path) -> None:
    """Per-worker files (app.log, app-w1.log, app-w2.log), some renamed to dated names mid-stream: each line
    of every file arrives once, as a record of the app's own keys; a rotated file is never read twice."""
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    state = tmp_path / "state"  # a volume in production: it exists before Fluent Bit starts
    state.mkdir()
    out = tmp_path / "out"
    top = stage_config(tmp_path / "etc", top_includes("sidecar", ["file"]))
    env = {
        "FLB_APP_LOGS": f"{log_dir}/*.log",
        "FLB_STATE_DIR": str(state),
        "FLB_FILE_PATH": str(out),
        "FLB_ROTATE_WAIT": str(ROTATE_WAIT),
        "FLB_IGNORE_OLDER": f"{IGNORE_OLDER}s",
    }
    with FluentBit(top, tmp_path, env) as fluent_bit:
        first = serve_requests(tmp_path, log_dir, ["/demo/dependency", "/demo/error", "/demo/background"])
        rotated = rotate(log_dir, date.today() - timedelta(days=1))
        assert len(rotated) == 2
        second = serve_requests(tmp_path, log_dir, ["/demo/sync", "/demo/error", "/demo/context"])

        files = sorted(log_dir.glob("*.log"))
        assert {p.name for p in files} >= {"app.log", "app-w1.log", "app-w2.log", *(p.name for p in rotated)}
        by_file = {path.name: parse_json_lines(path.read_bytes(), str(path)) for path in files}
        sent = [record for records in by_file.values() for record in records]
        sent_per_file = {name: len(records) for name, records in by_file.items()}
        poll(
            arrived_enough(lambda: file_output_records(out), len(sent)),
            timeout=60,
            what=lambda: (
                f"{len(sent)} records in {out} (got {len(file_output_records(out))}; sent per file:"
                f" {sent_per_file})\n{fluent_bit.stderr_tail()}"
            ),
        )
        # Past rotate_wait Fluent Bit lets go of the renamed files; a rescan must not pick them up again.
        time.sleep(ROTATE_WAIT + 2 * REFRESH + 1)
        arrived = file_output_records(out)

    assert_exactly_once(sent, arrived, "sidecar")
    assert {r["processName"] for r in arrived} >= {"SpawnProcess-1", "SpawnProcess-2"}
    for responses in (first, second):
        for path, response in responses.items():
            tracking_id = response.headers["x-tracking-id"]
            mine = [r for r in arrived if r["tracking_id"] == tracking_id]
            assert any(r["name"] == "service.access" and r["path"] == path for r in mine), path
            if path == "/demo/error":
                (error,) = [r for r in mine if "exc_info" in r]
                assert error["exc_info"].startswith("Traceback (most recent call last):")
                assert error["exc_info"].rstrip().endswith("RuntimeError: demo failure")
