"""The real service: `python -m service` under uvicorn, 1 and 2 workers, every stdout line parsed as JSON."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.sync.client import connect

from tests.support import ServiceProcess, parse_json_lines

DEMO_LINES = {
    "/demo/context": {"handler sees the context"},
    "/demo/dependency": {"dependency injected the tracking id", "nested coroutine sees the context"},
    "/demo/sync": {"sync endpoint in the thread pool"},
    "/demo/background": {"background task scheduled", "background task ran after the response"},
}


async def fire(base_url: str, paths: list[str], *, concurrency: int) -> list[httpx.Response]:
    """Send every request with at most ``concurrency`` in flight; half carry their own valid ID."""
    # Idle connections are dropped by the client (2 s) before uvicorn drops them (5 s): otherwise a stall on a
    # loaded machine lets both time out together, and a request sent on the closing connection gets no response.
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency, keepalive_expiry=2.0)
    semaphore = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:

        async def one(i: int, path: str) -> httpx.Response:
            headers = {"X-Tracking-ID": f"client-{i:06d}-{uuid.uuid4().hex[:8]}"} if i % 2 else {}
            async with semaphore:
                return await client.get(path, headers=headers)

        return await asyncio.gather(*(one(i, p) for i, p in enumerate(paths)))


def by_id(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        if record["tracking_id"] is not None:
            grouped[record["tracking_id"]].append(record)
    return grouped


@pytest.mark.parametrize("workers", [1, 2])
def test_concurrent_requests_never_leak_ids(tmp_path: Path, workers: int) -> None:
    """500 concurrent requests: each ID is on exactly its own request's lines, none missing, none extra."""
    paths = [list(DEMO_LINES)[i % len(DEMO_LINES)] for i in range(500)]
    with ServiceProcess(tmp_path, workers=workers) as service:
        responses = asyncio.run(fire(service.base_url, paths, concurrency=100))
        assert service.stop() in (0, -signal.SIGTERM)
    records = service.records()  # every line parsed; raises on the first non-JSON line
    assert service.stderr_text() == ""
    grouped = by_id(records)
    seen = set()
    for response, path in zip(responses, paths, strict=True):
        assert response.status_code == 200
        tid = response.headers["x-tracking-id"]
        assert response.json()["tracking_id"] == tid
        lines = grouped[tid]
        assert {r["message"] for r in lines if r["name"] == "service.demo"} == DEMO_LINES[path]
        access = [r for r in lines if r["name"] == "service.access"]
        assert len(access) == 1 and access[0]["path"] == path and access[0]["status"] == 200
        assert len(lines) == len(DEMO_LINES[path]) + 1
        assert len({r["processName"] for r in lines}) == 1, "a request is served by one worker"
        seen.add(tid)
    assert set(grouped) == seen, "no line carries an ID that no response returned"
    if workers == 2:
        assert {r["processName"] for r in records if r["name"] == "service.access"} == {
            "SpawnProcess-1",
            "SpawnProcess-2",
        }


def test_every_path_of_the_context(tmp_path: Path) -> None:
    """Handler, dependency, thread pool, background task, downstream call, websocket: all see the ID."""
    with ServiceProcess(tmp_path) as service:

        def get(path: str, **kw: Any) -> httpx.Response:
            return httpx.get(service.base_url + path, timeout=10, **kw)

        sync = get("/demo/sync").json()
        assert sync["tracking_id"] == sync["thread_sees"]
        down = get("/demo/downstream", headers={"X-Tracking-ID": "downstream-0001"}).json()
        assert down["downstream_header"] == "downstream-0001"
        assert down["downstream_body"]["tracking_id"] == "downstream-0001"
        background = get("/demo/background")
        with connect(
            f"ws://127.0.0.1:{service.port}/ws/echo", additional_headers={"X-Tracking-ID": "websock-0001"}
        ) as ws:
            assert ws.response is not None
            assert ws.response.headers["x-tracking-id"] == "websock-0001"
            ws.send("hi")
            assert orjson.loads(ws.recv()) == {"echo": "hi", "tracking_id": "websock-0001"}
        service.stop()
    grouped = by_id(service.records())
    bg = grouped[background.headers["x-tracking-id"]]
    assert "background task ran after the response" in {r["message"] for r in bg}
    assert {r["message"] for r in grouped["downstream-0001"] if r["name"] == "service.demo"} == {
        "handler sees the context",
        "downstream call returned 200",
    }
    assert len([r for r in grouped["downstream-0001"] if r["name"] == "service.access"]) == 2
    ws_lines = {r["message"] for r in grouped["websock-0001"]}
    assert {"websocket accepted", "websocket message", "websocket closed"} <= ws_lines


def test_error_gives_500_with_header_and_traceback_line(tmp_path: Path) -> None:
    with ServiceProcess(tmp_path) as service:
        response = httpx.get(service.base_url + "/demo/error", timeout=10)
        service.stop()
    assert response.status_code == 500
    tid = response.headers["x-tracking-id"]
    records = service.records()
    errors = [r for r in records if "exc_info" in r]
    assert len(errors) == 1, "one traceback line, not a second one from the server without the ID"
    assert errors[0]["tracking_id"] == tid
    assert "RuntimeError: demo failure" in errors[0]["exc_info"]
    assert "Traceback (most recent call last)" in errors[0]["exc_info"]


def raw_request(port: int, header_block: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /demo/context HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + header_block + b"\r\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


INBOUND = [
    ("valid-uuid", b"X-Tracking-ID: 3f2c1e9a-4b7d-4c1a-9e2f-0a1b2c3d4e5f\r\n", "3f2c1e9a-4b7d-4c1a-9e2f-0a1b2c3d4e5f"),
    ("valid-nginx", b"X-Request-ID: 8f14e45fceea167a5a36dedd4bea2543\r\n", "8f14e45fceea167a5a36dedd4bea2543"),
    ("braces-quotes", b'X-Tracking-ID: {"level":"CRITICAL"}\r\n', None),
    ("ten-kb", b"X-Tracking-ID: " + b"A" * 10_240 + b"\r\n", None),
    ("non-ascii", "X-Tracking-ID: trackïng-ïd-ünicode\r\n".encode(), None),
    ("bare-cr", b"X-Tracking-ID: abcdefgh\rinjected: yes\r\n", None),
    ("obs-fold", b"X-Tracking-ID: abcdefgh\r\n injected-line\r\n", None),
]


@pytest.mark.parametrize(("name", "header", "adopted"), INBOUND, ids=[i[0] for i in INBOUND])
def test_inbound_ids_over_the_wire(tmp_path: Path, name: str, header: bytes, adopted: str | None) -> None:
    """Valid IDs are adopted; anything else is replaced (or refused by the server) and never reflected."""
    with ServiceProcess(tmp_path) as service:
        reply = raw_request(service.port, header)
        service.stop()
    head, _, _body = reply.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    value = header.split(b": ", 1)[1].rstrip(b"\r\n")
    if adopted is not None:
        assert status == 200 and f"x-tracking-id: {adopted}".encode() in head.lower()
        return
    assert status in (200, 400), reply[:200]
    for part in (value, value[:40], b"injected"):
        assert part not in reply, f"{part[:40]!r} reflected"
    records = service.records()
    dumped = b"\n".join(orjson.dumps(r) for r in records)
    assert value not in dumped and b"injected-line" not in dumped
    if status == 200:
        tid = next(h for h in head.split(b"\r\n") if h.lower().startswith(b"x-tracking-id:")).split(b": ")[1]
        assert uuid.UUID(tid.decode()).version == 4


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_right_after_a_burst_loses_no_line(tmp_path: Path, workers: int) -> None:
    """Every request that got a response has all its lines on stdout, even with SIGTERM right after."""
    with ServiceProcess(tmp_path, workers=workers) as service:
        responses = asyncio.run(fire(service.base_url, ["/demo/dependency"] * 1500, concurrency=50))
        service.stop(signal.SIGTERM)  # at once, while the listener may still hold queued records
    records = service.records()
    grouped = by_id(records)
    missing = [r.headers["x-tracking-id"] for r in responses if len(grouped[r.headers["x-tracking-id"]]) != 3]
    assert not missing, f"{len(missing)} requests lost lines"
    finished = [r for r in records if r["message"].startswith("Finished server process")]
    assert len(finished) == workers, "uvicorn's last line of every worker is written, as JSON"


def test_startup_and_shutdown_lines_are_json(tmp_path: Path) -> None:
    """From the first byte to the last, stdout is JSON: uvicorn's own lines included."""
    with ServiceProcess(tmp_path, workers=2) as service:
        httpx.get(service.base_url + "/demo/context", timeout=10)
        service.stop()
    records = service.records()
    messages = [r["message"] for r in records]
    assert any(m.startswith("Started parent process") for m in messages)
    assert any(m.startswith("Uvicorn running on") for m in messages)
    assert messages.count("Application startup complete.") == 2
    assert any(m.startswith("Stopping parent process") for m in messages)
    assert {r["processName"] for r in records} == {"MainProcess", "SpawnProcess-1", "SpawnProcess-2"}
    assert service.stderr_text() == ""


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"LOG_MODE": "syslog"}, "LOG_MODE"),
        ({"LOG_QUEUE_SIZE": "-1"}, "LOG_QUEUE_SIZE"),
        ({"LOG_OVERFLOW": "sometimes"}, "LOG_OVERFLOW"),
    ],
)
def test_bad_settings_stop_startup(tmp_path: Path, env: dict[str, str], variable: str) -> None:
    """A bad value: non-zero exit, one JSON line on stderr naming the variable, nothing on stdout."""
    import os

    result = subprocess.run(
        [sys.executable, "-m", "service", "--port", "1"],
        env={**os.environ, **env},
        capture_output=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stdout == b""
    lines = parse_json_lines(result.stderr, "stderr")
    assert len(lines) == 1
    assert variable in lines[0]["message"] and lines[0]["level"] == "CRITICAL"


def test_downstream_never_connects_where_the_host_header_says(tmp_path: Path) -> None:
    """SSRF: a Host header naming another local server must not make the demo call it."""
    with socket.socket() as trap, ServiceProcess(tmp_path) as service:
        trap.bind(("127.0.0.1", 0))
        trap.listen(8)
        trap.settimeout(0.5)
        host = f"127.0.0.1:{trap.getsockname()[1]}"
        response = httpx.get(f"{service.base_url}/demo/downstream", headers={"Host": host}, timeout=10)
        assert response.status_code == 200
        assert response.json()["downstream_body"]["tracking_id"] == response.headers["x-tracking-id"]
        with pytest.raises(TimeoutError):
            trap.accept()  # nothing ever connected to the server the Host header named


def test_demo_routes_can_be_switched_off(tmp_path: Path) -> None:
    with ServiceProcess(tmp_path, env={"LOG_DEMO_ROUTES": "false"}) as service:
        assert httpx.get(f"{service.base_url}/demo/context", timeout=10).status_code == 404
        assert httpx.get(f"{service.base_url}/readyz", timeout=10).status_code == 200


def test_the_runtime_dependencies_bring_a_websocket_server() -> None:
    """/ws/echo must work in a plain install (and so in the image): uvicorn[standard] brings websockets."""
    from importlib.metadata import requires

    runtime = [r for r in requires("fastapi-tracking-logs") or [] if "extra ==" not in r]
    assert any(r.replace(" ", "").startswith("uvicorn[standard]") for r in runtime), runtime
