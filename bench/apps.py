"""The ASGI apps the HTTP parts serve: ``build(variant)`` sets up the variant's logging and middleware.

Part 2 (``mw-*``): ``GET /pong`` is the lightest endpoint (``PlainTextResponse("pong")``, nothing logged),
so nothing hides the middleware's own cost; only the middleware differs. ``mw-floor`` is the floor: a
pure ASGI pass-through that appends one fixed header. ``GET /plain`` returns a tiny JSON body.
Part 3 and 4 (``stack-*``): ``GET /stack?n=N`` logs one handler line; with the access line that makes
two JSON lines per request on stdout. ``GET /pong`` is the lightest endpoint with the same two lines
(``PlainTextResponse("pong")``): there logging is the largest share of a request.
``GET /bench/stats`` counts the requests served.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable
from typing import Any

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MIDDLEWARE_VARIANTS = (
    "mw-bare",
    "mw-floor",
    "mw-bundle",
    "mw-bundle-quiet",
    "mw-bundle-access",
    "mw-original",
    "mw-asgi-correlation-id",
    "mw-starlette-context",
)
STACK_VARIANTS = (
    "stack-bare",
    "stack-bundle",
    "stack-bundle-no-metrics",
    "stack-original",
    "stack-structlog",
    "stack-acid-pjl",
)

#: Per stack: the response header carrying the ID and the JSON field carrying it on each line.
STACK_ID = {
    "stack-bundle": ("x-tracking-id", "tracking_id"),
    "stack-bundle-no-metrics": ("x-tracking-id", "tracking_id"),
    "stack-original": ("x-tracking-id", "tracking_id"),
    "stack-structlog": ("x-tracking-id", "tracking_id"),
    "stack-acid-pjl": ("x-request-id", "correlation_id"),
}

_hits = 0


class FixedHeaderMiddleware:
    """The floor of any response-header middleware: pure ASGI, appends one fixed header, nothing else."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), (b"x-floor", b"1")]}
            await send(message)

        await self.app(scope, receive, send_with_header)


class MinimalIDMiddleware:
    """The least any tracking-ID middleware does (for scale, in ``bench.instructions``): a ready-made ID,
    the ContextVar set and reset, the header on the response. No inbound ID, no trace context, no error
    handling, no WebSocket, no access line."""

    def __init__(self, app: ASGIApp) -> None:
        from service.context import request_context_var
        from service.ids import context_batches

        self.app = app
        self.var = request_context_var  # imported here: the other variants' processes never import service
        batches = context_batches(new_trace=True, trace_id_as_tracking_id=False)
        self.pop = batches.ready.popleft
        self.refill = batches.take

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            context = self.pop()
        except IndexError:
            context = self.refill()
        header = (b"x-tracking-id", context[0].encode("latin-1"))
        token = self.var.set(context)

        def send_header(message: Message) -> Awaitable[None]:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            return send(message)

        try:
            await self.app(scope, receive, send_header)
        finally:
            self.var.reset(token)


def _app(with_logging: bool) -> FastAPI:
    app = FastAPI()
    log: Any = logging.getLogger("bench.handler")

    @app.get("/plain")
    async def plain() -> dict[str, bool]:
        return {"ok": True}

    if with_logging and os.environ.get("BENCH_STRUCTLOG") == "1":
        import structlog

        log = structlog.get_logger("bench.handler")

    @app.get("/stack")
    async def stack(n: int = 0) -> dict[str, bool]:
        global _hits
        _hits += 1
        if with_logging:
            log.info("handled request %s", n)
        return {"ok": True}

    @app.get("/pong")
    async def pong() -> PlainTextResponse:
        global _hits
        _hits += 1
        if with_logging:
            log.info("handled request %s", 0)
        return PlainTextResponse("pong")

    @app.get("/bench/stats")
    async def stats() -> dict[str, int]:
        return {"hits": _hits}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def build(variant: str) -> tuple[Any, bool]:
    """The ASGI app for ``variant`` and whether uvicorn's own access log should be on."""
    if variant in ("mw-bare", "stack-bare"):
        return _app(with_logging=False), False

    if variant == "mw-floor":
        app = _app(with_logging=False)
        app.add_middleware(FixedHeaderMiddleware)
        return app, False

    if variant == "mw-minimal":  # for scale, in bench.paired and bench.instructions (not in Part 2)
        from service import setup_logging

        os.environ["LOG_ACCESS"] = "false"
        setup_logging()  # the process as mw-bundle's: only the middleware differs
        app = _app(with_logging=False)
        app.add_middleware(MinimalIDMiddleware)
        return app, False

    if variant in ("mw-bundle", "mw-bundle-quiet", "mw-bundle-access", "stack-bundle", "stack-bundle-no-metrics"):
        from service import TrackingIDMiddleware, setup_logging

        if variant == "mw-bundle":
            os.environ["LOG_ACCESS"] = "false"  # only the middleware is measured
        if variant == "stack-bundle-no-metrics":
            os.environ["LOG_METRICS"] = "false"  # the cost of Prometheus counting, side by side
        if variant == "mw-bundle-quiet":
            os.environ["LOG_LEVEL"] = "WARNING"  # the access line is on but below the level: it must cost nothing
        setup_logging()
        app = _app(with_logging=variant.startswith("stack-"))  # Part 2 measures the middleware alone
        app.add_middleware(TrackingIDMiddleware.from_settings)
        return app, False

    if variant in ("mw-original", "stack-original"):
        import sys

        from bench.peers import original

        original.setup_logging(sys.stdout)
        app = _app(with_logging=variant == "stack-original")
        app.add_middleware(original.TrackingIDMiddleware, access_log=variant == "stack-original")
        return app, False

    if variant == "mw-asgi-correlation-id":
        from asgi_correlation_id import CorrelationIdMiddleware

        app = _app(with_logging=False)
        app.add_middleware(CorrelationIdMiddleware)
        return app, False

    if variant == "mw-starlette-context":
        from starlette_context import plugins
        from starlette_context.middleware import RawContextMiddleware

        app = _app(with_logging=False)
        app.add_middleware(RawContextMiddleware, plugins=(plugins.RequestIdPlugin(),))
        return app, False

    if variant == "stack-structlog":
        from bench.peers import structlog_stack

        os.environ["BENCH_STRUCTLOG"] = "1"
        structlog_stack.setup_logging()
        app = _app(with_logging=True)
        app.add_middleware(structlog_stack.StructlogMiddleware)
        return app, False

    if variant == "stack-acid-pjl":
        import sys

        from asgi_correlation_id import CorrelationIdFilter, CorrelationIdMiddleware
        from pythonjsonlogger.json import JsonFormatter

        # asgi-correlation-id's README setup, with python-json-logger as the formatter and uvicorn's
        # access log going through the same handler and filter.
        handler = logging.StreamHandler(sys.stdout)
        handler.addFilter(CorrelationIdFilter())
        handler.setFormatter(JsonFormatter("{asctime}{levelname}{name}{correlation_id}{message}", style="{"))
        root = logging.getLogger()
        root.handlers[:] = [handler]
        root.setLevel(logging.INFO)
        app = _app(with_logging=True)
        app.add_middleware(CorrelationIdMiddleware)
        return app, True

    raise SystemExit(f"unknown variant {variant!r}")
