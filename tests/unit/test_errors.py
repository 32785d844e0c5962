"""Unhandled exceptions propagate after the middleware logged them with the ID, as Starlette's
ServerErrorMiddleware does: test clients raise them, Sentry records them, OpenTelemetry marks the span."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import FastAPI, WebSocket
from fastapi.responses import StreamingResponse
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from starlette.testclient import TestClient

from service import TrackingIDMiddleware
from service.context import get_trace_context
from tests.support import ROOT
from tests.support import flushed_records as records


def failing_app(access_log: bool = True) -> FastAPI:
    app = FastAPI()
    app.add_middleware(TrackingIDMiddleware, access_log=access_log)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaput")

    @app.get("/midstream")
    async def midstream() -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            yield b"first\n"
            raise RuntimeError("mid-stream kaput")

        return StreamingResponse(body())

    @app.get("/trace")
    async def trace() -> dict[str, Any]:
        return {"trace": get_trace_context()}

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        raise RuntimeError("ws kaput")

    return app


def test_test_client_raises_the_apps_exception(out: io.BytesIO) -> None:
    """pytest.raises works on an app with the middleware, and the traceback was still logged with the ID."""
    with pytest.raises(RuntimeError, match="kaput"):
        TestClient(failing_app()).get("/boom")
    logged = [r for r in records(out) if "exc_info" in r]
    assert len(logged) == 1 and logged[0]["tracking_id"] and "RuntimeError: kaput" in logged[0]["exc_info"]


ACCESS = pytest.mark.parametrize("access_log", [True, False], ids=["access line", "no access line"])


@ACCESS
def test_without_raising_the_client_gets_the_500_with_the_id(out: io.BytesIO, access_log: bool) -> None:
    response = TestClient(failing_app(access_log), raise_server_exceptions=False).get("/boom")
    assert response.status_code == 500 and response.text == "Internal Server Error"
    tid = response.headers["x-tracking-id"]
    assert [r["tracking_id"] for r in records(out) if "exc_info" in r] == [tid]
    access = [r for r in records(out) if r["name"] == "service.access"]
    assert [(r["status"], r["tracking_id"]) for r in access] == ([(500, tid)] if access_log else [])


@ACCESS
def test_failure_after_the_response_started_is_logged_once_with_the_id(out: io.BytesIO, access_log: bool) -> None:
    with pytest.raises(RuntimeError, match="mid-stream kaput"):
        TestClient(failing_app(access_log)).get("/midstream")
    logged = [r for r in records(out) if "exc_info" in r]
    assert [r["message"] for r in logged] == ["unhandled exception in GET /midstream after the response started"]
    assert logged[0]["tracking_id"] and "RuntimeError: mid-stream kaput" in logged[0]["exc_info"]


def test_websocket_exception_propagates_and_is_logged(out: io.BytesIO) -> None:
    with pytest.raises(RuntimeError, match="ws kaput"), TestClient(failing_app()).websocket_connect("/ws"):
        pass
    assert [r["message"] for r in records(out) if "exc_info" in r] == ["unhandled exception in WEBSOCKET /ws"]


def test_outer_middleware_sees_the_exception(out: io.BytesIO) -> None:
    seen: list[BaseException] = []
    inner = failing_app()

    async def outer(scope: Any, receive: Any, send: Any) -> None:
        try:
            await inner(scope, receive, send)
        except Exception as exc:
            seen.append(exc)
            raise

    TestClient(outer, raise_server_exceptions=False).get("/boom")
    assert [str(e) for e in seen] == ["kaput"]


class TestOpenTelemetry:
    @pytest.fixture
    def spans(self) -> InMemorySpanExporter:
        return InMemorySpanExporter()

    def instrumented(self, exporter: InMemorySpanExporter) -> OpenTelemetryMiddleware:
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        return OpenTelemetryMiddleware(failing_app(), tracer_provider=provider)

    def server_span(self, spans: InMemorySpanExporter) -> ReadableSpan:
        server = [s for s in spans.get_finished_spans() if s.kind.name == "SERVER"]
        assert len(server) == 1
        return server[0]

    def test_asgi_instrumentation_marks_the_span_failed(self, out: io.BytesIO, spans: InMemorySpanExporter) -> None:
        """A failure after a 200 started: only the propagated exception can tell the span it failed."""
        with pytest.raises(RuntimeError, match="mid-stream kaput"):
            TestClient(self.instrumented(spans)).get("/midstream")
        span = self.server_span(spans)
        assert span.status.status_code is StatusCode.ERROR
        assert span.status.description == "RuntimeError: mid-stream kaput"
        assert [e.attributes["exception.type"] for e in span.events if e.name == "exception" and e.attributes] == [
            "RuntimeError"
        ]
        assert [r["tracking_id"] is not None for r in records(out) if "exc_info" in r] == [True]

    def test_500_before_the_response(self, out: io.BytesIO, spans: InMemorySpanExporter) -> None:
        response = TestClient(self.instrumented(spans), raise_server_exceptions=False).get("/boom")
        assert response.status_code == 500 and "x-tracking-id" in response.headers
        assert self.server_span(spans).status.status_code is StatusCode.ERROR

    def test_log_lines_carry_the_active_spans_ids(self, out: io.BytesIO, spans: InMemorySpanExporter) -> None:
        """With an OpenTelemetry span active, the middleware takes its trace and span IDs."""
        traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        body = TestClient(self.instrumented(spans)).get("/trace", headers={"traceparent": traceparent}).json()
        server = next(s for s in spans.get_finished_spans() if s.kind.name == "SERVER")
        context = server.get_span_context()
        assert context is not None
        assert body["trace"] == ["0af7651916cd43dd8448eb211c80319c", f"{context.span_id:016x}", "01"]


SENTRY_PROBE = textwrap.dedent(
    """
    import io, json
    import sentry_sdk
    from sentry_sdk.transport import Transport
    from sentry_sdk.integrations.fastapi import FastApiIntegration
    from sentry_sdk.integrations.logging import LoggingIntegration
    from sentry_sdk.integrations.starlette import StarletteIntegration
    from fastapi import FastAPI
    from starlette.testclient import TestClient
    from service import TrackingIDMiddleware, setup_logging

    events = []

    class Recording(Transport):
        def capture_envelope(self, envelope):
            events.extend(item.payload.json for item in envelope.items if item.type == "event")

    sentry_sdk.init(dsn="http://public@example.invalid/1", transport=Recording,
                    integrations=[StarletteIntegration(), FastApiIntegration()],
                    disabled_integrations=[LoggingIntegration()])
    setup_logging(stream=io.BytesIO())
    app = FastAPI()
    app.add_middleware(TrackingIDMiddleware)

    @app.get("/boom")
    async def boom():
        raise RuntimeError("kaput")

    response = TestClient(app, raise_server_exceptions=False).get("/boom")
    sentry_sdk.flush()
    exceptions = [[v["type"] + ": " + v["value"] for v in e["exception"]["values"]] for e in events]
    print(json.dumps({"status": response.status_code, "exceptions": exceptions}))
    """
)


def test_sentry_records_one_event() -> None:
    """Real sentry-sdk (its Starlette/ASGI integration, logging integration off), a recording transport:
    one event for the unhandled exception. In a subprocess: sentry_sdk.init patches Starlette for good."""
    result = subprocess.run(
        [sys.executable, "-c", SENTRY_PROBE], capture_output=True, text=True, cwd=ROOT, timeout=120, check=True
    )
    assert json.loads(result.stdout.splitlines()[-1]) == {"status": 500, "exceptions": [["RuntimeError: kaput"]]}


def test_server_filter_drops_only_records_of_exceptions_already_logged() -> None:
    """The filter on uvicorn.error is a good neighbour: any other record passes."""
    TrackingIDMiddleware(failing_app())  # installs the filter
    TrackingIDMiddleware(failing_app())  # ... once
    logger = logging.getLogger("uvicorn.error")
    logged, fresh = RuntimeError("logged"), RuntimeError("fresh")
    logged._tracking_logged = True  # type: ignore[attr-defined]

    def record(exc: BaseException | None) -> logging.LogRecord:
        info = (type(exc), exc, None) if exc is not None else None
        return logger.makeRecord(logger.name, logging.ERROR, "f", 1, "Exception in ASGI application", (), info)

    assert [bool(logger.filter(record(e))) for e in (logged, fresh, None)] == [False, True, True]
    assert sum(type(f).__name__ == "_AlreadyLogged" for f in logger.filters) == 1, "installed once"
