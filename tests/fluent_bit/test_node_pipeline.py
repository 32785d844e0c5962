"""The Kubernetes node pipeline for real: the service's stdout, written as kubelet's runtime writes it,
tailed by the real Fluent Bit with node.yaml; every app line arrives once, JSON lifted, pod metadata on."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import httpx
import pytest

from tests.fluent_bit.support import (
    FakeKubeAPI,
    FluentBit,
    ForwardReceiver,
    arrived_enough,
    assert_exactly_once,
    container_log_name,
    file_output_records,
    poll,
    requires_fluent_bit,
    runtime_lines,
    stage_config,
    top_includes,
)
from tests.support import ServiceProcess, parse_json_lines

pytestmark = requires_fluent_bit

LONG_PATH = "/demo/" + "x" * 12_000  # its access line (path twice) is longer than kubelet's 16 KiB chunk
CRASH_LINE = b"Traceback (most recent call last): plain text on stderr, not JSON"
# The opt-in label node.yaml selects pods by (the tracking-service chart sets it in collection.mode=external).
LABELS = {
    "app.kubernetes.io/name": "tracking-service",
    "app.kubernetes.io/instance": "demo",
    "tracking-logs.io/collect": "true",
}
CONTAINER_ID = "c0ffee" + "0" * 58


def run_service(tmp_path: Path) -> tuple[list[bytes], dict[str, httpx.Response]]:
    """Real requests, including a traceback and a very long line; the service's stdout lines."""
    paths = ["/demo/dependency", "/demo/error", "/demo/background", "/demo/sync", LONG_PATH]
    with ServiceProcess(tmp_path) as service:
        responses = {path: httpx.get(service.base_url + path, timeout=10) for path in paths}
        service.stop()
    return service.stdout_bytes().splitlines(), responses


def parse_time(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


@pytest.mark.parametrize("runtime", ["cri", "docker"])
def test_node_pipeline_delivers_every_app_line_once(tmp_path: Path, runtime: str) -> None:
    """Container log lines (CRI or docker json-file, with partial chunks) become one record per app line:
    the app's keys at the top level, `tracking_id` equal to the response header, the traceback intact,
    Kubernetes metadata added, the record time equal to `@timestamp`; a non-JSON line is kept as `log`."""
    lines, responses = run_service(tmp_path)
    sent = parse_json_lines(b"\n".join(lines))
    error_index = next(i for i, r in enumerate(sent) if r.get("exc_info"))
    assert max(len(line) for line in lines) > 16 * 1024, "the long request did not make a long line"

    containers = tmp_path / "containers"
    containers.mkdir()
    log_file = containers / container_log_name("tracking-service-7d9f8-abcde", "demo", "app", CONTAINER_ID)
    token = tmp_path / "token"
    token.write_text("test-token\n")
    out = tmp_path / "out"
    top = stage_config(tmp_path / "etc", top_includes("node", ["file", "forward"]))

    half = len(lines) // 2
    # The traceback line is also cut into small partial chunks (several P lines, then F).
    first = runtime_lines(lines[:half], runtime, force_split={error_index: 300} if error_index < half else None)
    rest_split = {error_index - half: 300} if error_index >= half else None
    rest = runtime_lines(lines[half:], runtime, force_split=rest_split)
    crash = runtime_lines([CRASH_LINE], runtime, stream="stderr")
    log_file.write_bytes(first)  # already there when Fluent Bit starts (read_from_head) ...

    with FakeKubeAPI(LABELS) as api, ForwardReceiver() as receiver:
        env = {
            "FLB_CONTAINER_LOGS": f"{containers}/*.log",
            "FLB_STATE_DIR": str(tmp_path / "state"),
            "FLB_KUBE_URL": api.url,
            "FLB_KUBE_TOKEN_FILE": str(token),
            "FLB_FILE_PATH": str(out),
            "FLB_FORWARD_HOST": "127.0.0.1",
            "FLB_FORWARD_PORT": str(receiver.port),
        }
        with FluentBit(top, tmp_path, env) as fluent_bit:
            with log_file.open("ab") as f:  # ... and appended while it tails
                f.write(rest)
                f.write(crash)
            expected = len(sent) + 1
            arrived = poll(
                arrived_enough(lambda: file_output_records(out), expected),
                timeout=60,
                what=lambda: f"{expected} records in {out}\n{fluent_bit.stderr_tail()}",
            )
            events = poll(arrived_enough(receiver.snapshot, expected), timeout=60, what=f"{expected} forwarded events")
        assert api.requests, "the kubernetes filter never asked the API server"
        assert all(auth == "Bearer test-token" for _, auth in api.requests)

    app_records = [r for r in arrived if "log" not in r]
    assert_exactly_once(sent, app_records, "node")

    plain = [r for r in arrived if "log" in r]
    assert len(plain) == 1
    assert plain[0]["log"].rstrip("\n") == CRASH_LINE.decode()
    assert plain[0]["stream"] == "stderr"

    for record in arrived:
        kube = record["kubernetes"]
        assert kube["pod_name"] == "tracking-service-7d9f8-abcde"
        assert kube["namespace_name"] == "demo"
        assert kube["container_name"] == "app"
        assert kube["labels"] == LABELS
        assert "_p" not in record

    for path, response in responses.items():
        tracking_id = response.headers["x-tracking-id"]
        mine = [r for r in app_records if r["tracking_id"] == tracking_id]
        assert any(r["name"] == "service.access" and r["path"] == path for r in mine), path
    error_id = responses["/demo/error"].headers["x-tracking-id"]
    (error_record,) = [r for r in app_records if r["tracking_id"] == error_id and "exc_info" in r]
    assert error_record["exc_info"] == sent[error_index]["exc_info"]
    assert "RuntimeError: demo failure" in error_record["exc_info"]

    # The record time (what Elasticsearch, Loki and forward use) is the app's @timestamp.
    forwarded = [record | {"_time": t} for _, t, record in events if "@timestamp" in record]
    assert len(forwarded) == len(sent)
    for record in forwarded:
        assert abs(record["_time"] - parse_time(record["@timestamp"])) < 0.001, record["@timestamp"]
