"""W3C Trace Context: the parser against the cases of the W3C test suite (w3c/trace-context test/test.py),
and the middleware's trace context per request: inbound, fresh, forwarded downstream, on every line."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import textwrap
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from service import TrackingIDMiddleware, aforward_tracking_id, format_traceparent, parse_traceparent
from service.context import get_trace_context
from tests.support import ROOT

TRACE = "12345678901234567890123456789012"
PARENT = "1234567890123456"
VALID = f"00-{TRACE}-{PARENT}-01"

# (case, header value, expected (trace_id, parent_id, flags) or None for "invalid: restart the trace")
CASES: list[tuple[str, str, tuple[str, str, str] | None]] = [
    ("valid", VALID, (TRACE, PARENT, "01")),
    ("not sampled", f"00-{TRACE}-{PARENT}-00", (TRACE, PARENT, "00")),
    ("unknown flag bits are not kept", f"00-{TRACE}-{PARENT}-ff", (TRACE, PARENT, "01")),
    ("leading space (OWS)", f" {VALID}", (TRACE, PARENT, "01")),
    ("trailing tab (OWS)", f"{VALID}\t", (TRACE, PARENT, "01")),
    ("version 00 with a trailing dot", f"{VALID}.", None),
    ("version 00 with more fields", f"{VALID}-what-the-future-will-be-like", None),
    ("version cc", f"cc-{TRACE}-{PARENT}-01", (TRACE, PARENT, "01")),
    ("version cc with more fields", f"cc-{TRACE}-{PARENT}-01-what-the-future-will-be-like", (TRACE, PARENT, "01")),
    ("version cc, more fields not after a dash", f"cc-{TRACE}-{PARENT}-01.what-the-future-will-be-like", None),
    ("version cc, too short", f"cc-{TRACE}-{PARENT}-0", None),
    ("version ff", f"ff-{TRACE}-{PARENT}-01", None),
    ("version with a dot first", f".0-{TRACE}-{PARENT}-01", None),
    ("version with a dot last", f"0.-{TRACE}-{PARENT}-01", None),
    ("version uppercase", f"CC-{TRACE}-{PARENT}-01", None),
    ("version too long (3)", f"000-{TRACE}-{PARENT}-01", None),
    ("version too long (4)", f"0000-{TRACE}-{PARENT}-01", None),
    ("version too short", f"0-{TRACE}-{PARENT}-01", None),
    ("trace id all zero", f"00-{'0' * 32}-{PARENT}-01", None),
    ("trace id with a dot first", f"00-.{TRACE[1:]}-{PARENT}-01", None),
    ("trace id with a dot last", f"00-{TRACE[:-1]}.-{PARENT}-01", None),
    ("trace id uppercase", f"00-{'ABCDEF' + TRACE[6:]}-{PARENT}-01", None),
    ("trace id too long", f"00-{TRACE}0-{PARENT}-01", None),
    ("trace id too short", f"00-{TRACE[:-1]}-{PARENT}-01", None),
    ("parent id all zero", f"00-{TRACE}-{'0' * 16}-01", None),
    ("parent id with a dot first", f"00-{TRACE}-.{PARENT[1:]}-01", None),
    ("parent id with a dot last", f"00-{TRACE}-{PARENT[:-1]}.-01", None),
    ("parent id uppercase", f"00-{TRACE}-ABCDEF{PARENT[6:]}-01", None),
    ("parent id too long", f"00-{TRACE}-{PARENT}0-01", None),
    ("parent id too short", f"00-{TRACE}-{PARENT[:-1]}-01", None),
    ("flags with a dot first", f"00-{TRACE}-{PARENT}-.0", None),
    ("flags with a dot last", f"00-{TRACE}-{PARENT}-0.", None),
    ("flags too long", f"00-{TRACE}-{PARENT}-001", None),
    ("flags too short", f"00-{TRACE}-{PARENT}-0", None),
    ("flags uppercase", f"00-{TRACE}-{PARENT}-0A", None),
    ("empty", "", None),
    ("huge", VALID + "-" + "a" * 10_000, None),
]


@pytest.mark.parametrize(("case", "value", "expected"), CASES, ids=[c[0] for c in CASES])
def test_parse_traceparent(case: str, value: str, expected: tuple[str, str, str] | None) -> None:
    assert parse_traceparent(value) == expected


def test_format_traceparent_round_trips() -> None:
    assert format_traceparent((TRACE, PARENT, "01")) == VALID
    assert parse_traceparent(VALID) == (TRACE, PARENT, "01")
    assert format_traceparent() is None, "outside a request"


def app_with(**options: Any) -> FastAPI:
    app = FastAPI()
    app.add_middleware(TrackingIDMiddleware, **options)

    @app.get("/trace")
    async def trace() -> dict[str, Any]:
        return {"trace": get_trace_context(), "traceparent": format_traceparent()}

    @app.get("/downstream")
    async def downstream() -> dict[str, Any]:
        sent: list[httpx.Request] = []

        def record(request: httpx.Request) -> httpx.Response:
            sent.append(request)
            return httpx.Response(204)

        transport = httpx.MockTransport(record)
        async with httpx.AsyncClient(transport=transport, event_hooks={"request": [aforward_tracking_id]}) as client:
            await client.get("http://downstream.invalid/")
        return {"trace": get_trace_context(), "sent": dict(sent[0].headers)}

    return app


def test_inbound_trace_is_continued_with_a_span_of_our_own(out: io.BytesIO) -> None:
    body = TestClient(app_with()).get("/trace", headers={"traceparent": VALID}).json()
    trace_id, span_id, flags = body["trace"]
    assert (trace_id, flags) == (TRACE, "01")
    assert re.fullmatch("[0-9a-f]{16}", span_id) and span_id != PARENT
    assert body["traceparent"] == f"00-{TRACE}-{span_id}-01"


@pytest.mark.parametrize("header", [f"00-ABCDEF{TRACE[6:]}-{PARENT}-01", f"ff-{TRACE}-{PARENT}-01"])
def test_invalid_inbound_trace_starts_a_new_one(out: io.BytesIO, header: str) -> None:
    trace_id, _, flags = TestClient(app_with()).get("/trace", headers={"traceparent": header}).json()["trace"]
    assert trace_id != TRACE and re.fullmatch("[0-9a-f]{32}", trace_id) and flags == "00"


def test_duplicated_traceparent_starts_a_new_trace(out: io.BytesIO) -> None:
    headers = [("traceparent", VALID), ("traceparent", f"00-{'a' * 32}-{PARENT}-01")]
    trace_id = TestClient(app_with()).get("/trace", headers=headers).json()["trace"][0]
    assert trace_id not in (TRACE, "a" * 32)


def test_no_trace_without_new_trace_option(out: io.BytesIO) -> None:
    client = TestClient(app_with(new_trace=False))
    assert client.get("/trace").json()["trace"] is None
    assert client.get("/trace", headers={"traceparent": VALID}).json()["trace"][0] == TRACE


def test_trace_context_off(out: io.BytesIO) -> None:
    client = TestClient(app_with(trace_context=False))
    assert client.get("/trace", headers={"traceparent": VALID}).json()["trace"] is None


def test_trace_id_as_tracking_id_only_without_a_tracking_header(out: io.BytesIO) -> None:
    client = TestClient(app_with(trace_id_as_tracking_id=True))
    assert client.get("/trace", headers={"traceparent": VALID}).headers["x-tracking-id"] == TRACE
    fresh = client.get("/trace")
    assert fresh.headers["x-tracking-id"] == fresh.json()["trace"][0]
    headers = {"traceparent": VALID, "X-Tracking-ID": "caller-id-0001"}
    assert client.get("/trace", headers=headers).headers["x-tracking-id"] == "caller-id-0001"


def test_httpx_hook_forwards_traceparent_with_our_span_as_parent(out: io.BytesIO) -> None:
    response = TestClient(app_with()).get("/downstream", headers={"traceparent": VALID})
    body = response.json()
    span_id = body["trace"][1]
    assert body["sent"]["traceparent"] == f"00-{TRACE}-{span_id}-01"
    assert body["sent"]["x-tracking-id"] == response.headers["x-tracking-id"]


LATE_OTEL_PROBE = textwrap.dedent(
    """
    import json, sys
    from service import trace
    before = trace.otel_trace_context()
    imported = "opentelemetry.context" in sys.modules
    from opentelemetry.sdk.trace import TracerProvider
    with TracerProvider().get_tracer("probe").start_as_current_span("s") as span:
        during = trace.otel_trace_context()
        c = span.get_span_context()
    expected = [f"{c.trace_id:032x}", f"{c.span_id:016x}", f"{int(c.trace_flags):02x}"]
    print(json.dumps({"before": before, "imported": imported, "during": during, "span": expected}))
    """
)


def test_opentelemetry_imported_late_is_still_seen() -> None:
    """Before OpenTelemetry is imported, reading the trace context imports nothing and finds nothing; once
    it is imported (after the bundle), the active span is found. A fresh process: nothing imported yet."""
    result = subprocess.run(
        [sys.executable, "-c", LATE_OTEL_PROBE], capture_output=True, text=True, cwd=ROOT, timeout=60, check=True
    )
    found = json.loads(result.stdout.splitlines()[-1])
    assert found["before"] is None and found["imported"] is False
    assert found["during"] == found["span"]
