"""Serving the metrics: an ASGI app for ``/metrics``, the wrapper the CLI puts around an app, a port of its own.

With ``PROMETHEUS_MULTIPROC_DIR`` set (several workers), every process writes its own files and whichever
process answers a scrape reads them all: counters of workers that died stay in the sum (totals never go
backwards), and the gauges of processes that no longer exist are removed before each scrape.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import CollectorRegistry

__all__ = [
    "MetricsApp", "WithMetrics", "endpoint", "multiprocess_dir", "reap_dead_processes", "registry", "start_server",
]  # fmt: skip

_LIVE_GAUGE_FILE = re.compile(r"^gauge_live[a-z]+_(\d+)\.db$")


def multiprocess_dir() -> str | None:
    """prometheus_client's multiprocess directory, when this process runs in that mode."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process with that pid: alive
        return True
    return True


def reap_dead_processes(path: str) -> list[int]:
    """``mark_process_dead`` for every process with live-gauge files that no longer exists.

    uvicorn's supervisor has no ``child_exit`` hook, so a worker killed by a signal would otherwise leave
    its last queue depth in the ``livemax`` gauges until the directory is cleaned.
    """
    from prometheus_client import multiprocess

    mark_dead: Callable[[int, str], None] = multiprocess.mark_process_dead
    dead = set()
    with contextlib.suppress(OSError):
        for entry in os.scandir(path):
            match = _LIVE_GAUGE_FILE.match(entry.name)
            if match and not _alive(int(match.group(1))):
                dead.add(int(match.group(1)))
    for pid in dead:
        with contextlib.suppress(OSError):
            mark_dead(pid, path)
    return sorted(dead)


def registry() -> CollectorRegistry:
    """What a scrape reads: every process's files in multiprocess mode, else this process's default registry."""
    from prometheus_client import REGISTRY, CollectorRegistry

    path = multiprocess_dir()
    if path is None:
        return REGISTRY
    merged = CollectorRegistry()
    merged.register(_LiveCollector(path))
    return merged


class _LiveCollector:
    """prometheus_client's MultiProcessCollector, after removing the live gauges of processes gone."""

    def __init__(self, path: str) -> None:
        self.path = path

    def collect(self) -> Iterable[Metric]:
        from prometheus_client.multiprocess import MultiProcessCollector

        reap_dead_processes(self.path)
        merge: Callable[..., Iterable[Metric]] = MultiProcessCollector.merge
        return merge([str(p) for p in Path(self.path).glob("*.db")], accumulate=True)


def render(accept: str = "") -> tuple[bytes, str]:
    """The exposition text (or OpenMetrics, if the scraper asks for it) and its content type."""
    from prometheus_client.exposition import choose_encoder

    encoder, content_type = choose_encoder(accept)
    return encoder(registry()), content_type


async def endpoint(request: Request) -> Response:
    """Starlette/FastAPI endpoint: ``app.add_route("/metrics", endpoint)`` (GET and HEAD)."""
    body, content_type = render(request.headers.get("accept", ""))
    return Response(body, media_type=content_type)


class MetricsApp:
    """Plain ASGI app answering every HTTP request with the metrics (for other frameworks, or to wrap an app)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1000})
            return
        accept = ",".join(v.decode("latin-1") for k, v in scope.get("headers", ()) if k.lower() == b"accept")
        if scope.get("method", "GET") not in ("GET", "HEAD"):
            body, status, headers = b"method not allowed\n", 405, [(b"allow", b"GET, HEAD")]
        else:
            body, content_type = render(accept)
            status, headers = 200, [(b"content-type", content_type.encode("latin-1"))]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope.get("method") == "HEAD" else body})


class WithMetrics:
    """Wraps an ASGI app: ``path`` answers with the metrics, everything else (lifespan included) goes to the app.

    The CLI puts this outermost, so the scrape bypasses the app's middleware: no access line, no tracking ID.
    """

    def __init__(self, app: ASGIApp, path: str = "/metrics") -> None:
        self.app = app
        self.path = path
        self.metrics = MetricsApp()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == self.path:
            await self.metrics(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def start_server(port: int, host: str) -> None:
    """Serve ``/metrics`` (any path) on a port of its own, from a daemon thread of this process."""
    from prometheus_client import start_http_server

    start_http_server(port, addr=host, registry=registry())
