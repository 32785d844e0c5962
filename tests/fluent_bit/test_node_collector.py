"""The collector's node.yaml with the real Fluent Bit: it collects the pods that opt in by label, whatever
their names, never a log collector; and with its output down its disk stays bounded."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import orjson

from tests.fluent_bit.support import (
    FakeKubeAPI,
    FluentBit,
    container_log_name,
    file_output_records,
    poll,
    requires_fluent_bit,
    runtime_lines,
    stage_config,
    top_includes,
)
from tests.support import free_port

pytestmark = requires_fluent_bit

OPT_IN = {"tracking-logs.io/collect": "true"}
CONTAINER_ID = "ab" * 32
# 63 characters: the kubelet truncates a pod's generated name, so a name glob of the release misses it.
LONG_POD = "a-release-name-of-sixty-characters-or-so-tracking-service-x7k2q"


def _app_line(tracking_id: str, message: str = "hello") -> bytes:
    return orjson.dumps(
        {"@timestamp": "2026-11-28T02:00:00.000Z", "level": "INFO", "tracking_id": tracking_id, "message": message}
    )


def _write(containers: Path, pod: str, namespace: str, container: str, lines: list[bytes]) -> None:
    name = container_log_name(pod, namespace, container, CONTAINER_ID)
    (containers / name).write_bytes(runtime_lines(lines, "cri"))


def test_only_labelled_pods_are_collected_and_collectors_never(tmp_path: Path) -> None:
    """Pods: the release (labelled), its canary (same name prefix, not labelled), a 63-character pod name
    (labelled), a Vector agent that carries the label anyway, Fluent Bit itself, and an unrelated pod."""
    pods = {
        # pod name -> (namespace, container, labels, tracking_id)
        "svc-7d9f8-abcde": ("shop", "app", {"app.kubernetes.io/name": "tracking-service", **OPT_IN}, "release"),
        "svc-canary-5c6b7-fghij": ("shop", "app", {"app.kubernetes.io/name": "tracking-service"}, "canary"),
        LONG_POD: ("shop", "app", {"app.kubernetes.io/name": "tracking-service", **OPT_IN}, "long-name"),
        "vector-q2w3e": ("logging", "vector", {"app.kubernetes.io/name": "vector", **OPT_IN}, "vector"),
        "fb-zx9cv": ("logging", "fluent-bit", {"app.kubernetes.io/name": "fluent-bit", **OPT_IN}, "fluent-bit"),
        "other-1a2b3": ("default", "web", {"app": "other"}, "other"),
    }
    containers = tmp_path / "containers"
    containers.mkdir()
    for pod, (namespace, container, _, tracking_id) in pods.items():
        _write(containers, pod, namespace, container, [_app_line(tracking_id, f"{n}") for n in range(3)])
    token = tmp_path / "token"
    token.write_text("t\n")
    out = tmp_path / "out"
    top = stage_config(tmp_path / "etc", top_includes("node", ["file"]))
    labels = {pod: spec[2] for pod, spec in pods.items()}
    with FakeKubeAPI({}, pod_labels=labels) as api:
        env = {
            "FLB_CONTAINER_LOGS": f"{containers}/*.log",
            "FLB_EXCLUDE_PATH": f"{containers}/*_fluent-bit-*.log",
            "FLB_STATE_DIR": str(tmp_path / "state"),
            "FLB_KUBE_URL": api.url,
            "FLB_KUBE_TOKEN_FILE": str(token),
            "FLB_FILE_PATH": str(out),
        }
        with FluentBit(top, tmp_path, env) as fluent_bit:
            poll(
                lambda: len(file_output_records(out)) >= 6 or None,
                timeout=60,
                what=lambda: f"the selected pods' records\n{fluent_bit.stderr_tail()}",
            )
            # every pod's metadata was looked up, so each pod's lines went through the filters by now
            poll(
                lambda: (
                    {p for p in pods if p != "fb-zx9cv"} <= {path.rsplit("/", 1)[-1] for path, _ in api.requests}
                    or None
                ),
                timeout=30,
                what="the kubernetes filter to ask for every pod that was read",
            )
            time.sleep(3)  # a flush interval (1 s) and then some: anything else selected would have arrived
        arrived = file_output_records(out)
    by_id: dict[str, list[str]] = {}
    for record in arrived:
        by_id.setdefault(record["tracking_id"], []).append(record["message"])
    assert by_id == {"release": ["0", "1", "2"], "long-name": ["0", "1", "2"]}
    assert all(r["kubernetes"]["labels"]["tracking-logs.io/collect"] == "true" for r in arrived)
    # Fluent Bit's own file was never even read (no metadata lookup for it)
    assert not [path for path, _ in api.requests if "fb-zx9cv" in path]


def _metrics(port: int) -> dict[str, float]:
    text = httpx.get(f"http://127.0.0.1:{port}/api/v2/metrics/prometheus", timeout=5).text
    values: dict[str, float] = {}
    for line in text.splitlines():
        match = re.match(r"^([a-z_]+)\{[^}]*name=\"([a-z_.0-9]+)\"[^}]*\} ([0-9.e+-]+)", line)
        if match:
            values[f"{match.group(1)}:{match.group(2)}"] = float(match.group(3))
    return values


def _buffer_bytes(state: Path) -> int:
    """Bytes of the filesystem buffer's chunks (the rejected store excluded)."""
    buffer = state / "buffer"
    return sum(p.stat().st_size for p in buffer.rglob("*.flb") if "rejected" not in p.parts)


def test_buffer_stays_bounded_while_the_output_is_down(tmp_path: Path) -> None:
    """Forward to a port nobody listens on, 3 MB of storage for the output, ~30 MB of lines: the buffer stops
    at its limit, the oldest chunks are dropped and counted, Fluent Bit stays up and reports its state."""
    limit = 3 * 1024 * 1024
    containers = tmp_path / "containers"
    containers.mkdir()
    line_count = 15_000
    padding = "x" * 1800
    lines = [_app_line(f"id-{n}", padding) for n in range(line_count)]
    _write(containers, "svc-7d9f8-abcde", "shop", "app", lines)
    token = tmp_path / "token"
    token.write_text("t\n")
    state = tmp_path / "state"
    top = stage_config(tmp_path / "etc", top_includes("node", ["forward"]))
    with FakeKubeAPI({"app.kubernetes.io/name": "tracking-service", **OPT_IN}) as api:
        env = {
            "FLB_CONTAINER_LOGS": f"{containers}/*.log",
            "FLB_STATE_DIR": str(state),
            "FLB_KUBE_URL": api.url,
            "FLB_KUBE_TOKEN_FILE": str(token),
            "FLB_FORWARD_HOST": "127.0.0.1",
            "FLB_FORWARD_PORT": str(free_port()),  # nothing listens: every flush fails and is retried
            "FLB_STORAGE_LIMIT": "3M",
        }
        with FluentBit(top, tmp_path, env) as fluent_bit:
            port = fluent_bit.http_port

            def all_read() -> dict[str, float] | None:
                metrics = _metrics(port)
                return metrics if metrics.get("fluentbit_input_records_total:tail.0", 0) >= line_count else None

            poll(all_read, timeout=240, what=lambda: f"{line_count} lines read\n{fluent_bit.stderr_tail()}")

            def settled() -> dict[str, float] | None:
                metrics = _metrics(port)
                return metrics if metrics.get("fluentbit_output_dropped_records_total:forward.0", 0) > 0 else None

            metrics = poll(settled, timeout=120, what=lambda: f"dropped records counted\n{fluent_bit.stderr_tail()}")
            time.sleep(2)
            buffered = _buffer_bytes(state)
            metrics = _metrics(port)
            assert fluent_bit.proc is not None and fluent_bit.proc.poll() is None, "Fluent Bit died"
            assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200
    written = sum(len(line) for line in lines)
    assert written > 6 * limit
    # the buffer holds at most the limit plus the chunk being filled (chunks are ~2 MB)
    assert 0 < buffered <= limit + 2 * 1024 * 1024, buffered
    dropped = metrics["fluentbit_output_dropped_records_total:forward.0"]
    assert metrics["fluentbit_output_proc_records_total:forward.0"] == 0  # nothing was delivered
    # most records were dropped, and what was not dropped fits in the buffer
    assert dropped >= line_count * (1 - (limit + 2 * 1024 * 1024) / written), (dropped, line_count)
    assert dropped < line_count
    # what the buffer alert watches: the output's share of its limit still free
    assert 0 < metrics["fluentbit_output_chunk_available_capacity_percent:forward.0"] < 100


def _reload_count(base: str) -> int | None:
    """The hot-reload counter, or None while the HTTP server is down: a reload restarts it, so a probe
    that lands in that window is refused (seen once in CI on 3.13)."""
    try:
        count = httpx.get(f"{base}/api/v2/reload", timeout=5).json().get("hot_reload_count")
    except httpx.TransportError:
        return None
    return count if isinstance(count, int) else None


def test_hot_reload_applies_a_changed_config(tmp_path: Path) -> None:
    """What the collector's config-reloader does when its ConfigMap changes: POST /api/v2/reload. Fluent Bit
    (started with --enable-hot-reload, as the chart does) reloads in place, and the new output is live."""
    containers = tmp_path / "containers"
    containers.mkdir()
    log_file = containers / container_log_name("svc-7d9f8-abcde", "shop", "app", CONTAINER_ID)
    log_file.write_bytes(runtime_lines([_app_line("before")], "cri"))
    token = tmp_path / "token"
    token.write_text("t\n")
    out = tmp_path / "out"
    top = stage_config(tmp_path / "etc", top_includes("node", ["stdout"]))
    with FakeKubeAPI({"app.kubernetes.io/name": "tracking-service", **OPT_IN}) as api:
        env = {
            "FLB_CONTAINER_LOGS": f"{containers}/*.log",
            "FLB_STATE_DIR": str(tmp_path / "state"),
            "FLB_KUBE_URL": api.url,
            "FLB_KUBE_TOKEN_FILE": str(token),
            "FLB_FILE_PATH": str(out),
        }
        fluent_bit = FluentBit(top, tmp_path, env)
        fluent_bit.command.append("--enable-hot-reload")
        with fluent_bit:
            base = f"http://127.0.0.1:{fluent_bit.http_port}"
            poll(lambda: fluent_bit.stdout_records() or None, timeout=60, what="the first record on stdout")
            assert not out.exists()
            top.write_text(top.read_text() + "  - output-file.yaml\n")  # the ConfigMap changed
            assert httpx.post(f"{base}/api/v2/reload", timeout=10).status_code == 200
            poll(
                lambda: _reload_count(base) == 1 or None,
                timeout=30,
                what=lambda: f"the reload\n{fluent_bit.stderr_tail()}",
            )
            with log_file.open("ab") as f:
                f.write(runtime_lines([_app_line("after")], "cri"))
            records = poll(
                lambda: file_output_records(out) or None if out.exists() else None,
                timeout=60,
                what=lambda: f"a record through the new file output\n{fluent_bit.stderr_tail()}",
            )
            assert fluent_bit.proc is not None and fluent_bit.proc.poll() is None
    assert "after" in {r["tracking_id"] for r in records}
