"""Helpers for the Fluent Bit tests: stage the fluent-bit/ files with a top-level file as the chart and
compose do, run the real binary, and stand in for what sits around it (kubelet log files, the Kubernetes
API, Docker's fluentd log driver, a forward receiver)."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import signal
import socket
import socketserver
import ssl
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import msgpack
import orjson
import pytest

from tests.support import ROOT, free_port

FLUENT_BIT_DIR = ROOT / "fluent-bit"
FLUENT_BIT_VERSION = "5.1.1"
ENTRY_CONFIGS = ("node", "sidecar", "compose")
OUTPUTS = ("stdout", "file", "forward", "es", "opensearch", "loki")
# Keys the pipeline adds beside the app's own, per entry config.
ADDED_KEYS = {
    "node": frozenset({"time", "stream", "kubernetes"}),
    "sidecar": frozenset(),
    "compose": frozenset({"container_id", "container_name", "source"}),
}
# kubelet and dockerd split a line longer than this into partial chunks.
RUNTIME_CHUNK = 16 * 1024

T = TypeVar("T")


def fluent_bit_binary() -> str | None:
    return shutil.which("fluent-bit")


skip_without_fluent_bit = pytest.mark.skipif(
    fluent_bit_binary() is None,
    reason=f"no `fluent-bit` on PATH (install Fluent Bit {FLUENT_BIT_VERSION}, or put its bin directory on PATH)",
)
requires_fluent_bit = [pytest.mark.fluentbit, skip_without_fluent_bit]


def stage_config(dest: Path, includes: Sequence[str], *, subdir: str = "") -> Path:
    """Copy fluent-bit/*.yaml into ``dest/subdir`` and write ``dest/fluent-bit.yaml`` including ``includes``
    (names relative to ``dest``): what the chart's ConfigMap and compose's mounts produce."""
    target = dest / subdir if subdir else dest
    target.mkdir(parents=True, exist_ok=True)
    for path in FLUENT_BIT_DIR.glob("*.yaml"):
        shutil.copy(path, target / path.name)
    top = dest / "fluent-bit.yaml"
    top.write_text("includes:\n" + "".join(f"  - {name}\n" for name in includes))
    return top


def top_includes(entry: str, outputs: Iterable[str]) -> list[str]:
    return [f"{entry}.yaml", *(f"output-{name}.yaml" for name in outputs)]


def dry_run(top: Path, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    binary = fluent_bit_binary()
    assert binary is not None
    return subprocess.run(
        [binary, "--dry-run", "-c", str(top)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


def poll(probe: Callable[[], T | None], *, timeout: float, what: str | Callable[[], str], interval: float = 0.2) -> T:
    """Call ``probe`` until it returns something other than None; fail naming ``what`` after ``timeout``
    (a callable is asked at the failure, so Fluent Bit's stderr in it is what it said by then)."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what() if callable(what) else what}")
        time.sleep(interval)


class FluentBit:
    """The real ``fluent-bit -c top`` in a subprocess; stdout and stderr to files; health on a free port."""

    def __init__(self, top: Path, workdir: Path, env: Mapping[str, str] | None = None) -> None:
        binary = fluent_bit_binary()
        assert binary is not None
        self.http_port = free_port()
        self.env = {**os.environ, "FLB_HTTP_PORT": str(self.http_port), **(env or {})}
        self.command = [binary, "-c", str(top)]
        self.stdout_path = workdir / "fluent-bit.stdout"
        self.stderr_path = workdir / "fluent-bit.stderr"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> FluentBit:
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(self.command, stdout=out, stderr=err, env=self.env)
        poll(
            self._healthy, timeout=timeout, what=lambda: f"fluent-bit health on :{self.http_port}\n{self.stderr_tail()}"
        )
        return self

    def _healthy(self) -> bool | None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"fluent-bit exited ({self.proc.returncode}):\n{self.stderr_tail()}")
        try:
            response = httpx.get(f"http://127.0.0.1:{self.http_port}/api/v2/health", timeout=1)
        except httpx.TransportError:
            return None
        return True if response.status_code == 200 else None

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def stdout_records(self) -> list[dict[str, Any]]:
        """The JSON lines of stdout (output-stdout.yaml); anything else there is not a record."""
        records = []
        for line in self.stdout_path.read_bytes().splitlines():
            if line.startswith(b"{"):
                records.append(orjson.loads(line))
        return records

    def stderr_tail(self, size: int = 4000) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")[-size:]
        except FileNotFoundError:
            return ""

    def __enter__(self) -> FluentBit:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def file_output_records(directory: Path) -> list[dict[str, Any]]:
    """Every record output-file.yaml wrote (records-YYYY-MM-DD.jsonl), whole lines only."""
    records = []
    for path in sorted(directory.glob("records-*.jsonl")):
        for line in path.read_bytes().splitlines(keepends=True):
            if line.endswith(b"\n"):
                records.append(orjson.loads(line))
    return records


# -- comparing what the app printed with what arrived ------------------------------------------------


def canonical(record: Mapping[str, Any], drop: Iterable[str] = ()) -> str:
    dropped = set(drop)
    return json.dumps({k: v for k, v in record.items() if k not in dropped}, sort_keys=True)


def assert_exactly_once(sent: Sequence[Mapping[str, Any]], arrived: Sequence[Mapping[str, Any]], entry: str) -> None:
    """Each line the app printed arrived as exactly one record: the app's keys and values unchanged at the
    top level, plus only the keys this entry config adds; and nothing else arrived."""
    added = ADDED_KEYS[entry]
    want = Counter(canonical(r) for r in sent)
    got = Counter(canonical(r, added) for r in arrived)
    missing = want - got
    extra = got - want
    assert not missing and not extra, (
        f"{sum(missing.values())} app lines missing, {sum(extra.values())} unexpected records"
        f"\nmissing: {list(missing)[:3]}\nunexpected: {list(extra)[:3]}"
    )


def arrived_enough(load: Callable[[], list[T]], count: int) -> Callable[[], list[T] | None]:
    def probe() -> list[T] | None:
        records = load()
        return records if len(records) >= count else None

    return probe


# -- container runtime log files (what kubelet's runtime writes) -----------------------------------


def container_log_name(pod: str, namespace: str, container: str, container_id: str) -> str:
    """/var/log/containers/<pod>_<namespace>_<container>-<64 hex>.log"""
    assert len(container_id) == 64
    return f"{pod}_{namespace}_{container}-{container_id}.log"


def _runtime_time(offset_ns: int) -> str:
    now = time.time_ns() + offset_ns
    seconds, nanos = divmod(now, 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"


def split_chunks(line: bytes, size: int) -> list[bytes]:
    return [line[i : i + size] for i in range(0, len(line), size)] or [b""]


def runtime_lines(
    lines: Sequence[bytes], runtime: str, *, stream: str = "stdout", force_split: Mapping[int, int] | None = None
) -> bytes:
    """``lines`` as a container runtime writes them: CRI (``<time> <stream> <P|F> <text>``) or docker
    json-file (``{"log": ..., "stream": ..., "time": ...}``). Lines longer than 16 KiB are split into
    partial chunks as the runtimes do; ``force_split`` maps a line index to a smaller chunk size."""
    out = bytearray()
    for index, line in enumerate(lines):
        size = (force_split or {}).get(index, RUNTIME_CHUNK)
        chunks = split_chunks(line, size)
        for number, chunk in enumerate(chunks):
            last = number == len(chunks) - 1
            stamp = _runtime_time(index * 1000 + number)
            if runtime == "cri":
                out += f"{stamp} {stream} {'F' if last else 'P'} ".encode() + chunk + b"\n"
            elif runtime == "docker":
                text = chunk.decode() + ("\n" if last else "")
                out += orjson.dumps({"log": text, "stream": stream, "time": stamp}) + b"\n"
            else:
                raise ValueError(runtime)
    return bytes(out)


# -- a Kubernetes API server that knows one pod --------------------------------------------------


class FakeKubeAPI:
    """Answers GET /api/v1/namespaces/<ns>/pods/<pod> for any pod, like the API server the kubernetes
    filter asks; requests are recorded."""

    def __init__(
        self,
        labels: Mapping[str, str],
        node: str = "node-1",
        pod_labels: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        self.labels = dict(labels)
        self.pod_labels = {name: dict(value) for name, value in (pod_labels or {}).items()}  # by pod name
        self.node = node
        self.requests: list[tuple[str, str | None]] = []
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                api.requests.append((self.path, self.headers.get("Authorization")))
                parts = self.path.split("?")[0].strip("/").split("/")
                if len(parts) != 6 or parts[:3] != ["api", "v1", "namespaces"] or parts[4] != "pods":
                    self.send_error(404)
                    return
                body = json.dumps(api.pod(parts[3], parts[5])).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def pod(self, namespace: str, name: str) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{namespace}/{name}")),
                "labels": self.pod_labels.get(name, self.labels),
                "creationTimestamp": "2026-01-01T00:00:00Z",
            },
            "spec": {"nodeName": self.node, "containers": [{"name": "app", "image": "fastapi-tracking-logs:test"}]},
            "status": {"hostIP": "127.0.0.1", "podIP": "127.0.0.2", "containerStatuses": []},
        }

    def __enter__(self) -> FakeKubeAPI:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- the forward protocol --------------------------------------------------------------------------


def _event_time(code: int, data: bytes) -> float | msgpack.ExtType:
    if code == 0 and len(data) == 8:
        seconds, nanos = int.from_bytes(data[:4], "big"), int.from_bytes(data[4:], "big")
        return seconds + nanos / 1e9
    return msgpack.ExtType(code, data)


class ForwardReceiver:
    """A Fluentd forward endpoint: collects (tag, time, record) from Message, Forward and PackedForward
    mode messages (what out_forward sends)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, float, dict[str, Any]]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                unpacker = msgpack.Unpacker(ext_hook=_event_time, raw=False, strict_map_key=False)
                while data := self.request.recv(65536):
                    unpacker.feed(data)
                    for message in unpacker:
                        receiver._accept(message)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _accept(self, message: list[Any]) -> None:
        tag, body = message[0], message[1]
        entries: list[Any]
        if isinstance(body, bytes):  # PackedForward: a msgpack stream of [time, record]
            unpacker = msgpack.Unpacker(ext_hook=_event_time, raw=False, strict_map_key=False)
            unpacker.feed(body)
            entries = list(unpacker)
        elif isinstance(body, list):  # Forward
            entries = body
        else:  # Message
            entries = [[body, message[2]]]
        with self.lock:
            for stamp, record in entries:
                if isinstance(stamp, list):  # [[time, metadata], record]
                    stamp = stamp[0]
                self.events.append((tag, float(stamp), record))

    def snapshot(self) -> list[tuple[str, float, dict[str, Any]]]:
        with self.lock:
            return list(self.events)

    def __enter__(self) -> ForwardReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def docker_fluentd_messages(
    lines: Sequence[bytes], *, tag: str, container_id: str, container_name: str, source: str = "stdout"
) -> list[bytes]:
    """What Docker's fluentd log driver sends for these lines: Message mode [tag, time, record] with
    string fields, lines over 16 KiB split into partial_message parts (moby daemon/logger/fluentd)."""
    messages = []
    for line in lines:
        chunks = split_chunks(line, RUNTIME_CHUNK)
        partial_id = uuid.uuid4().hex
        for ordinal, chunk in enumerate(chunks, 1):
            record = {
                "container_id": container_id,
                "container_name": container_name,
                "source": source,
                "log": chunk.decode(),
            }
            if len(chunks) > 1:
                record |= {
                    "partial_message": "true",
                    "partial_id": partial_id,
                    "partial_ordinal": str(ordinal),
                    "partial_last": str(ordinal == len(chunks)).lower(),
                }
            messages.append(msgpack.packb([tag, int(time.time()), record]))
    return messages


def send_forward(port: int, messages: Sequence[bytes]) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for message in messages:
            sock.sendall(message)


# -- HTTP backends (Elasticsearch/OpenSearch bulk, Loki push) ---------------------------------------


class RecordingHTTPServer:
    """Accepts every POST, keeps (path, headers, body), answers like the backend it stands in for."""

    def __init__(self, status: int = 200, body: bytes = b"", tls: ssl.SSLContext | None = None) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with recorder.lock:
                    recorder.requests.append((self.path, dict(self.headers.items()), data))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:  # HTTPS with the given server certificate
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def snapshot(self) -> list[tuple[str, dict[str, str], bytes]]:
        with self.lock:
            return list(self.requests)

    def __enter__(self) -> RecordingHTTPServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
