"""compose.yaml and fluent-bit/compose.yaml: the real Fluent Bit fed exactly what Docker's fluentd log driver
sends (no Docker needed), the compose healthcheck command, and `docker compose up` when an engine is there."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml

from tests.fluent_bit.support import (
    FluentBit,
    arrived_enough,
    assert_exactly_once,
    docker_fluentd_messages,
    file_output_records,
    fluent_bit_binary,
    poll,
    send_forward,
    skip_without_fluent_bit,
    stage_config,
)
from tests.support import ROOT, ServiceProcess, free_port, parse_json_lines

COMPOSE_FILE = ROOT / "compose.yaml"
CONTAINER_ETC = "/fluent-bit/etc"
CRASH_LINE = b"Traceback (most recent call last): plain text on stderr, not JSON"


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return data


def stage_like_compose(dest: Path) -> Path:
    """Lay out the fluent-bit service's /fluent-bit/etc as compose.yaml mounts it: the fluent-bit/ directory
    where its volume points, the inline top-level config where its `configs` entry points."""
    service = compose()["services"]["fluent-bit"]
    (mount,) = [v for v in service["volumes"] if v.startswith("./fluent-bit:")]
    target = mount.split(":")[1]
    assert target.startswith(CONTAINER_ETC + "/"), mount
    stage_config(dest, [], subdir=target.removeprefix(CONTAINER_ETC + "/"))
    (config,) = service["configs"]
    top: Path = dest / config["target"].removeprefix(CONTAINER_ETC + "/")
    top.write_text(compose()["configs"][config["source"]]["content"])
    assert service["command"] == ["-c", config["target"]]
    return top


@pytest.mark.fluentbit
@skip_without_fluent_bit
def test_compose_pipeline_delivers_every_app_line_once(tmp_path: Path) -> None:
    """The service's stdout lines, sent as Docker's fluentd driver sends them (a long line in partial
    parts), come out of both compose outputs, stdout and file, once each, JSON lifted, tracking ID on top."""
    paths = ["/demo/dependency", "/demo/error", "/demo/" + "y" * 12_000]
    with ServiceProcess(tmp_path) as service:
        responses = {path: httpx.get(service.base_url + path, timeout=10) for path in paths}
        service.stop()
    lines = service.stdout_bytes().splitlines()
    sent = parse_json_lines(b"\n".join(lines))
    assert max(map(len, lines)) > 16 * 1024

    top = stage_like_compose(tmp_path / "etc")
    out = tmp_path / "out"
    port = free_port()
    env = {
        **compose()["services"]["fluent-bit"].get("environment", {}),
        "FLB_FILE_PATH": str(out),
        "FLB_FORWARD_LISTEN": "127.0.0.1",
        "FLB_FORWARD_LISTEN_PORT": str(port),
    }
    driver = {"tag": "app.tracking-logs-app-1", "container_id": uuid.uuid4().hex * 2}
    messages = docker_fluentd_messages(lines, container_name="/tracking-logs-app-1", **driver)
    messages += docker_fluentd_messages([CRASH_LINE], container_name="/tracking-logs-app-1", source="stderr", **driver)
    assert len(messages) > len(lines) + 1, "no line was sent in partial parts"
    with FluentBit(top, tmp_path, env) as fluent_bit:
        send_forward(port, messages)
        expected = len(sent) + 1
        from_file = poll(
            arrived_enough(lambda: file_output_records(out), expected),
            timeout=60,
            what=lambda: f"{expected} records in {out}\n{fluent_bit.stderr_tail()}",
        )
        from_stdout = poll(arrived_enough(fluent_bit.stdout_records, expected), timeout=60, what="stdout records")

    for arrived in (from_file, from_stdout):
        assert_exactly_once(sent, [r for r in arrived if "log" not in r], "compose")
        (plain,) = [r for r in arrived if "log" in r]
        assert plain["log"] == CRASH_LINE.decode()
        assert plain["source"] == "stderr"
        assert not any(key.startswith("partial_") for r in arrived for key in r)
        for path, response in responses.items():
            mine = [r for r in arrived if r.get("tracking_id") == response.headers["x-tracking-id"]]
            assert any(r["name"] == "service.access" and r["path"] == path for r in mine), path
        (error,) = [r for r in arrived if "exc_info" in r]
        assert error["exc_info"].rstrip().endswith("RuntimeError: demo failure")


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


@pytest.mark.fluentbit
@skip_without_fluent_bit
def test_compose_healthcheck_reports_the_forward_listener(tmp_path: Path) -> None:
    """The fluent-bit service's healthcheck (the image has no shell) fails until the forward input listens on
    24224, then passes: the app, which depends on it being healthy, starts only then."""
    binary = fluent_bit_binary()
    assert binary is not None
    if not port_is_free(24224):
        pytest.skip("port 24224 is in use on this machine; the healthcheck looks for exactly that port")
    test = compose()["services"]["fluent-bit"]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "/fluent-bit/bin/fluent-bit"]
    command = [binary, *test[2:]]

    def healthcheck() -> int:
        return subprocess.run(command, capture_output=True, timeout=30, check=False).returncode

    assert healthcheck() == 1
    top = stage_like_compose(tmp_path / "etc")
    env = {"FLB_FILE_PATH": str(tmp_path / "out"), "FLB_FORWARD_LISTEN_PORT": "24224"}
    with FluentBit(top, tmp_path, env):
        poll(lambda: True if healthcheck() == 0 else None, timeout=30, what="a passing healthcheck")


def docker_engine() -> str | None:
    docker = shutil.which("docker")
    if docker is None:
        return None
    try:
        info = subprocess.run([docker, "info"], capture_output=True, timeout=20, check=False)
        version = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return docker if info.returncode == 0 and version.returncode == 0 else None


@pytest.mark.timeout(900)
@pytest.mark.skipif(docker_engine() is None, reason="no reachable Docker engine with the compose plugin")
def test_docker_compose_up_finds_a_request_by_tracking_id() -> None:
    """`docker compose up`, one request, and its records in `docker compose logs fluent-bit` by tracking ID."""
    docker = docker_engine()
    assert docker is not None
    project = f"tracking-logs-test-{uuid.uuid4().hex[:8]}"
    base = [docker, "compose", "-f", str(COMPOSE_FILE), "-p", project]
    try:
        subprocess.run([*base, "up", "-d", "--build", "--wait"], check=True, timeout=600, cwd=ROOT)
        response = httpx.get("http://127.0.0.1:8000/demo/dependency", timeout=10)
        tracking_id = response.headers["x-tracking-id"]

        def records() -> list[dict[str, Any]] | None:
            logs = subprocess.run(
                [*base, "logs", "--no-log-prefix", "fluent-bit"], capture_output=True, timeout=60, check=True
            ).stdout
            found = [r for r in _json_lines(logs) if r.get("tracking_id") == tracking_id]
            return found if len(found) >= 3 else None

        found = poll(records, timeout=120, what=f"records of {tracking_id} in docker compose logs", interval=2)
        assert {r["message"] for r in found} >= {"dependency injected the tracking id"}
        assert all(r["container_name"].endswith("app-1") for r in found)
    finally:
        subprocess.run([*base, "down", "-v", "--remove-orphans"], timeout=300, check=False, cwd=ROOT)


def _json_lines(data: bytes) -> list[dict[str, Any]]:
    """What `jq -R 'fromjson?'` keeps: the JSON object lines, not Fluent Bit's own log lines."""
    records = []
    for line in data.splitlines():
        if line.startswith(b"{"):
            with contextlib.suppress(orjson.JSONDecodeError):
                records.append(orjson.loads(line))
    return records
