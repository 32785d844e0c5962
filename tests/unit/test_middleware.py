"""TrackingIDMiddleware on a real FastAPI app, in process (the subprocess tests cover uvicorn itself)."""

from __future__ import annotations

import io
import logging
import threading
import types
import uuid
from collections.abc import AsyncIterator
from typing import Any

import anyio
import orjson
import pytest
from fastapi import BackgroundTasks, FastAPI, Request
from fastapi.responses import PlainTextResponse, StreamingResponse
from starlette.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from service import TrackingIDMiddleware, get_tracking_id
from service.logs.pipeline import State, current_pipeline, setup_logging, shutdown_logging
from tests.support import flushed_records as records

log = logging.getLogger("t.app")


def build(**options: Any) -> FastAPI:
    app = FastAPI()
    app.add_middleware(TrackingIDMiddleware, **options)

    @app.get("/ctx")
    async def ctx(request: Request) -> dict[str, Any]:
        log.info("in handler")
        return {"id": get_tracking_id(), "x_request_id": request.headers.getlist("x-request-id")}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaput")

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            for i in range(3):
                log.info("chunk %d", i)
                yield f"{i}\n".encode()

        return StreamingResponse(body())

    @app.get("/bg")
    async def bg(tasks: BackgroundTasks) -> dict[str, str]:
        tasks.add_task(lambda: log.info("background %s", get_tracking_id()))
        return {"ok": "yes"}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


class TestIds:
    def test_generates_a_uuid4_and_returns_it(self, out: io.BytesIO) -> None:
        response = TestClient(build()).get("/ctx")
        tid = response.headers["x-tracking-id"]
        assert uuid.UUID(tid).version == 4
        assert response.json()["id"] == tid
        assert get_tracking_id() is None, "the ContextVar is reset after the request"

    @pytest.mark.parametrize(
        "value",
        ["3f2c1e9a-4b7d-4c1a-9e2f-0a1b2c3d4e5f", "8f14e45fceea167a5a36dedd4bea2543", "01HZX3K9Q2W5R7T8Y0ABCDEFGH"],
    )
    def test_adopts_valid_inbound_ids(self, out: io.BytesIO, value: str) -> None:
        """UUIDs, nginx $request_id (32 hex) and ULIDs are adopted as they are."""
        response = TestClient(build()).get("/ctx", headers={"X-Tracking-ID": value})
        assert response.headers["x-tracking-id"] == value == response.json()["id"]

    def test_falls_back_to_x_request_id(self, out: io.BytesIO) -> None:
        response = TestClient(build()).get("/ctx", headers={"X-Request-ID": "from-proxy-0001"})
        assert response.headers["x-tracking-id"] == "from-proxy-0001"

    def test_x_tracking_id_wins(self, out: io.BytesIO) -> None:
        headers = {"X-Tracking-ID": "tracking-0001", "X-Request-ID": "request-00001"}
        body = TestClient(build()).get("/ctx", headers=headers).json()
        assert body["id"] == "tracking-0001"
        assert body["x_request_id"] == ["tracking-0001"], "exposed once, as the chosen id"

    def test_exposes_x_request_id_to_the_app(self, out: io.BytesIO) -> None:
        body = TestClient(build()).get("/ctx").json()
        assert body["x_request_id"] == [body["id"]]

    def test_custom_headers_validator_generator(self, out: io.BytesIO) -> None:
        app = build(header_names=["X-Correlation-ID"], response_header="X-Correlation-ID",
                    validator=lambda v: v.startswith("ok-"), generator=lambda: "gen-00000001")  # fmt: skip
        client = TestClient(app)
        assert client.get("/ctx", headers={"X-Correlation-ID": "ok-1"}).headers["x-correlation-id"] == "ok-1"
        assert client.get("/ctx", headers={"X-Correlation-ID": "nope"}).headers["x-correlation-id"] == "gen-00000001"
        assert client.get("/ctx", headers={"X-Tracking-ID": "ok-2"}).json()["id"] == "gen-00000001"


HOSTILE = {
    "quotes-braces": '{"level":"CRITICAL","x":"y"}',
    "too-long": "a" * 10_240,
    "too-short": "abc",
    "non-ascii": "idé-ünïcødé-1234",
    "spaces": "abc def ghi jkl",
    "script": "<script>alert(1)</script>",
    "json-escape": 'abcdefgh\\"},{"x',
}


class TestHostileIds:
    @pytest.mark.parametrize("name", sorted(HOSTILE))
    def test_replaced_never_reflected_never_logged_raw(self, out: io.BytesIO, name: str) -> None:
        value = HOSTILE[name]
        raw = value.encode("utf-8")
        response = TestClient(build()).get("/ctx", headers=[(b"X-Tracking-ID", raw)])
        tid = response.headers["x-tracking-id"]
        assert uuid.UUID(tid).version == 4
        assert raw not in response.content and value not in response.text
        assert all(value not in v for v in response.headers.values())
        got = records(out)
        warnings = [r for r in got if r["level"] == "WARNING"]
        assert len(warnings) == 1 and warnings[0]["tracking_id"] == tid
        assert "rejected inbound x-tracking-id" in warnings[0]["message"]
        text = b"\n".join(orjson.dumps(r) for r in got)
        if len(value) > 16:
            assert raw not in text, "the raw value never reaches the logs"

    def test_crlf_is_escaped_in_the_preview(self, out: io.BytesIO) -> None:
        """A CR/LF smuggled at the ASGI level (servers usually refuse it) is escaped, never raw."""
        app = build()
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "GET", "path": "/ctx", "raw_path": b"/ctx", "query_string": b"",
                 "headers": [(b"x-tracking-id", b"abc\r\nX-Evil: 1")], "http_version": "1.1",
                 "scheme": "http", "server": ("t", 80), "client": ("1.2.3.4", 5), "root_path": ""}  # fmt: skip
        import asyncio

        asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
        headers = dict(sent[0]["headers"])
        assert b"\r" not in headers[b"x-tracking-id"]
        warning = next(r for r in records(out) if r["level"] == "WARNING")
        assert "\r\n" not in warning["message"] and "\\r\\n" in warning["message"]


class TestResponses:
    def test_unhandled_exception_gives_500_with_header_and_one_traceback(self, out: io.BytesIO) -> None:
        """add_middleware puts us inside Starlette's error middleware; the 500 still carries the ID."""
        response = TestClient(build(), raise_server_exceptions=False).get("/boom")
        assert response.status_code == 500
        tid = response.headers["x-tracking-id"]
        got = [r for r in records(out) if "exc_info" in r]
        assert len(got) == 1
        assert got[0]["tracking_id"] == tid and "RuntimeError: kaput" in got[0]["exc_info"]

    def test_apps_own_500_handler_is_used(self, out: io.BytesIO) -> None:
        app = build()

        @app.exception_handler(Exception)
        async def custom(request: Request, exc: Exception) -> PlainTextResponse:
            return PlainTextResponse("custom oops", status_code=503)

        response = TestClient(app, raise_server_exceptions=False).get("/boom")
        assert (response.status_code, response.text) == (503, "custom oops")
        assert "x-tracking-id" in response.headers

    def test_wrapping_the_whole_app_also_works(self, out: io.BytesIO) -> None:
        inner = FastAPI()

        @inner.get("/boom")
        async def boom() -> None:
            raise RuntimeError("outer")

        response = TestClient(TrackingIDMiddleware(inner), raise_server_exceptions=False).get("/boom")
        assert response.status_code == 500 and "x-tracking-id" in response.headers
        assert sum("exc_info" in r for r in records(out)) == 1

    def test_streaming_response_has_header_and_context(self, out: io.BytesIO) -> None:
        response = TestClient(build()).get("/stream")
        tid = response.headers["x-tracking-id"]
        chunks = [r for r in records(out) if r["message"].startswith("chunk")]
        assert len(chunks) == 3 and {r["tracking_id"] for r in chunks} == {tid}

    def test_existing_response_header_is_not_duplicated(self, out: io.BytesIO) -> None:
        app = build()

        @app.get("/dup")
        async def dup() -> PlainTextResponse:
            return PlainTextResponse("x", headers={"X-Tracking-ID": "spoofed-by-app"})

        response = TestClient(app).get("/dup")
        assert response.headers.get_list("x-tracking-id") == [response.headers["x-tracking-id"]]
        assert response.headers["x-tracking-id"] != "spoofed-by-app"

    @pytest.mark.parametrize("access_log", [False, True])
    def test_an_app_reusing_its_messages_and_response_gets_one_header_per_request(
        self, out: io.BytesIO, access_log: bool
    ) -> None:
        """The header goes into a new list set in the start message: an app that sends the same message dict
        (or returns the same Response object) every time never sees its own header list grow or change, and
        each response carries exactly its own request's ID."""
        own_headers = [(b"content-type", b"text/plain"), (b"content-length", b"2")]
        start: Message = {"type": "http.response.start", "status": 200, "headers": own_headers}
        body: Message = {"type": "http.response.body", "body": b"ok"}
        shared = PlainTextResponse("ok")
        shared_headers = list(shared.raw_headers)

        async def raw(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["path"] == "/shared":
                await shared(scope, receive, send)
                return
            await send(start)
            await send(body)

        client = TestClient(TrackingIDMiddleware(raw, access_log=access_log))
        for path in ("/raw", "/shared"):
            ids = []
            for _ in range(3):
                response = client.get(path)
                assert response.text == "ok"
                assert len(response.headers.get_list("x-tracking-id")) == 1
                ids.append(response.headers["x-tracking-id"])
            assert len(set(ids)) == 3, "each response carries its own request's ID"
        assert own_headers == [(b"content-type", b"text/plain"), (b"content-length", b"2")]
        assert shared.raw_headers == shared_headers


class TestAccessLine:
    def test_one_access_line_with_fields(self, out: io.BytesIO) -> None:
        response = TestClient(build()).get("/ctx", headers={"X-Tracking-ID": "access-0001"})
        access = [r for r in records(out) if r["name"] == "service.access"]
        assert len(access) == 1
        line = access[0]
        assert line["tracking_id"] == "access-0001" == response.headers["x-tracking-id"]
        assert (line["method"], line["path"], line["status"]) == ("GET", "/ctx", 200)
        assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
        assert "client" in line

    def test_background_task_runs_after_access_line_with_the_id(self, out: io.BytesIO) -> None:
        tid = TestClient(build()).get("/bg").headers["x-tracking-id"]
        got = [r for r in records(out) if r["tracking_id"] == tid]
        assert [r["name"] for r in got] == ["service.access", "t.app"]
        assert got[1]["message"] == f"background {tid}"

    def test_health_paths_are_not_logged(self, out: io.BytesIO) -> None:
        TestClient(build()).get("/healthz")
        assert not [r for r in records(out) if r["name"] == "service.access"]

    def test_health_paths_logged_when_configured(self, out: io.BytesIO) -> None:
        TestClient(build(skip_paths=())).get("/healthz")
        assert [r["path"] for r in records(out) if r["name"] == "service.access"] == ["/healthz"]

    def test_access_line_can_be_turned_off(self, out: io.BytesIO) -> None:
        TestClient(build(access_log=False)).get("/ctx")
        assert not [r for r in records(out) if r["name"] == "service.access"]

    def test_500_access_line(self, out: io.BytesIO) -> None:
        TestClient(build(), raise_server_exceptions=False).get("/boom")
        assert [r["status"] for r in records(out) if r["name"] == "service.access"] == [500]


def test_lifespan_shutdown_drains_and_a_new_lifespan_resumes(out: io.BytesIO) -> None:
    """Lifespan end writes everything out (sync afterwards); the next lifespan queues again."""
    app = build()
    with TestClient(app) as client:
        client.get("/ctx")
        pipeline = current_pipeline()
        assert pipeline is not None and pipeline.state is State.RUNNING
    assert current_pipeline() is pipeline and pipeline.state.name == "STOPPED", "drained at lifespan shutdown"
    assert len([r for r in records(out) if r["name"] == "service.access"]) == 1
    with TestClient(app) as client:
        assert pipeline.state is State.RUNNING, "a new lifespan brings the listener back"
        client.get("/ctx")
    assert len([r for r in records(out) if r["name"] == "service.access"]) == 2


def test_the_lifespan_drain_keeps_the_event_loop_running() -> None:
    """With the output stalled the drain waits up to LOG_SHUTDOWN_TIMEOUT: on a thread of its own, so the
    loop goes on meanwhile; and it is over (bound run out) before lifespan.shutdown.complete is sent."""
    gate = threading.Event()

    class Stalled(io.BytesIO):
        def write(self, data: Any) -> int:
            gate.wait(30)
            return super().write(data)

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})

    sent: list[tuple[str, State]] = []
    ticks = 0

    async def main() -> None:
        nonlocal ticks
        incoming: list[Message] = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
        done = anyio.Event()

        async def receive() -> Message:
            return incoming.pop(0)

        async def send(message: Message) -> None:
            sent.append((message["type"], pipeline.state))

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await anyio.sleep(0.01)

        async with anyio.create_task_group() as group:
            group.start_soon(ticker)
            await TrackingIDMiddleware(inner)({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
            done.set()

    try:
        pipeline = setup_logging(stream=Stalled(), shutdown_timeout=1.0)
        logging.getLogger("t").info("stuck in the stalled write")
        anyio.run(main)
    finally:
        gate.set()
        shutdown_logging()
    assert sent[-1] == ("lifespan.shutdown.complete", State.ABANDONED), sent
    assert ticks >= 10, f"the loop ran {ticks} times during a 1 s drain"


def echo_headers_app(**options: Any) -> FastAPI:
    app = FastAPI()
    app.add_middleware(TrackingIDMiddleware, **options)

    @app.get("/headers")
    async def headers(request: Request) -> list[list[str]]:
        return [[k, v] for k, v in request.headers.items()]

    return app


def seen(app: FastAPI, headers: list[tuple[str, str]]) -> tuple[str, dict[str, list[str]]]:
    response = TestClient(app).get("/headers", headers=headers)
    grouped: dict[str, list[str]] = {}
    for key, value in response.json():
        grouped.setdefault(key, []).append(value)
    return response.headers["x-tracking-id"], grouped


class TestHeaderPolicy:
    """Only the configured ID headers are rewritten; x-request-id is exposed only when asked."""

    def test_a_load_balancers_request_id_survives_other_id_headers(self, out: io.BytesIO) -> None:
        app = echo_headers_app(header_names=["X-Correlation-ID"])
        tid, headers = seen(app, [("X-Request-ID", "lb-request-0001"), ("X-Correlation-ID", "corr-00000001")])
        assert tid == "corr-00000001"
        assert headers["x-request-id"] == ["lb-request-0001"], "not ours to rewrite"
        assert headers["x-correlation-id"] == ["corr-00000001"]

    def test_no_x_request_id_is_invented_unless_asked(self, out: io.BytesIO) -> None:
        _, headers = seen(echo_headers_app(header_names=["X-Correlation-ID"]), [])
        assert "x-request-id" not in headers
        tid, headers = seen(echo_headers_app(header_names=["X-Correlation-ID"], expose_request_id=True), [])
        assert headers["x-request-id"] == [tid]

    def test_default_exposes_the_chosen_id_as_x_request_id(self, out: io.BytesIO) -> None:
        tid, headers = seen(echo_headers_app(), [("X-Request-ID", "bad id!"), ("X-Tracking-ID", "track-000001")])
        assert tid == "track-000001" and headers["x-request-id"] == [tid]

    def test_among_duplicates_the_first_valid_value_wins(self, out: io.BytesIO) -> None:
        tid, headers = seen(echo_headers_app(), [("X-Tracking-ID", "bad"), ("X-Tracking-ID", "second-valid-1")])
        assert tid == "second-valid-1"
        assert headers["x-tracking-id"] == [tid], "the app sees the chosen ID once, never the invalid one"
        warnings = [r for r in records(out) if r["level"] == "WARNING"]
        assert len(warnings) == 1 and "too short" in warnings[0]["message"]
        tid, _ = seen(echo_headers_app(), [("X-Tracking-ID", "first-valid-1"), ("X-Tracking-ID", "second-valid")])
        assert tid == "first-valid-1"

    def test_other_headers_are_untouched(self, out: io.BytesIO) -> None:
        headers = [("X-Tracking-ID", "track-000002"), ("traceparent", f"00-{'a' * 32}-{'b' * 16}-01"), ("X-Y", "z")]
        _, got = seen(echo_headers_app(), headers)
        assert got["traceparent"] == [headers[1][1]] and got["x-y"] == ["z"]


class TestExplicitConfiguration:
    def test_arguments_only_the_environment_is_never_read(
        self, out: io.BytesIO, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Broken LOG_* values cannot matter: the middleware does not read settings at all."""
        for name, value in {"LOG_LEVEL": "loud", "LOG_ACCESS": "perhaps", "LOG_ID_HEADERS": "X-Other"}.items():
            monkeypatch.setenv(name, value)
        client = TestClient(build())
        response = client.get("/ctx", headers={"X-Tracking-ID": "explicit-0001"})
        assert response.headers["x-tracking-id"] == "explicit-0001"
        assert [r["path"] for r in records(out) if r["name"] == "service.access"] == ["/ctx"]

    def test_from_settings_uses_the_settings_setup_logging_read(self) -> None:
        stream = io.BytesIO()
        setup_logging(stream=stream, access=False, id_headers=["X-Correlation-ID"])
        try:
            app = FastAPI()
            app.add_middleware(TrackingIDMiddleware.from_settings)

            @app.get("/x")
            async def x() -> None:
                return None

            response = TestClient(app).get("/x", headers={"X-Correlation-ID": "corr-00000002"})
            assert response.headers["x-tracking-id"] == "corr-00000002"
            assert not [r for r in records(stream) if r["name"] == "service.access"]
        finally:
            shutdown_logging()

    def test_from_settings_with_explicit_settings_and_overrides(self, out: io.BytesIO) -> None:
        from service.settings import load_settings

        middleware = TrackingIDMiddleware.from_settings(build(), load_settings(access_health=True), access_log=False)
        assert middleware.skip_paths == frozenset() and middleware.access_log is False


class TestAccessMessage:
    def call(self, path: str, client: tuple[str, int] | None, *, fail_body: bool = False) -> None:
        app = build()

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if fail_body and message["type"] == "http.response.body":
                raise OSError("client went away")  # as a server's send does when the peer reset

        scope: dict[str, Any] = {
            "type": "http", "method": "GET", "path": path, "raw_path": path.encode(), "query_string": b"",
            "headers": [], "http_version": "1.1", "scheme": "http", "server": ("t", 80), "client": client,
            "root_path": "",
        }  # fmt: skip
        import asyncio

        asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]

    def test_control_characters_are_escaped_in_the_message_kept_in_the_field(self, out: io.BytesIO) -> None:
        path = '/x\n{"level":"CRITICAL"}\x1b[31m\x85'
        self.call(path, ("1.2.3.4", 5))
        access = next(r for r in records(out) if r["name"] == "service.access")
        assert access["path"] == path, "the field keeps the exact value"
        assert access["message"] == '1.2.3.4:5 "GET /x\\x0a{"level":"CRITICAL"}\\x1b[31m\\x85" 404'
        assert access["message"].isprintable()

    def test_direct_and_record_routes_give_the_same_access_line(self, out: io.BytesIO) -> None:
        """The access line is rendered without a record when only the bundle's handler would see it;
        with a filter on ``service.access`` a real record is made. Both lines are the same."""
        seen: list[logging.LogRecord] = []
        access = logging.getLogger("service.access")
        self.call("/x%0a\u00e9", ("1.2.3.4", 5))

        def spy(record: logging.LogRecord) -> bool:
            seen.append(record)
            return True

        access.addFilter(spy)
        try:
            self.call("/x%0a\u00e9", ("1.2.3.4", 5))
        finally:
            access.filters.clear()
        direct, via_record = [r for r in records(out) if r["name"] == "service.access"]
        assert len(seen) == 1 and seen[0].getMessage() == via_record["message"]
        for line in (direct, via_record):
            line.pop("@timestamp"), line.pop("duration_ms"), line.pop("tracking_id")
            line.pop("trace_id"), line.pop("span_id")
        assert direct == via_record and direct["loc"].startswith("middleware.py:")

    def test_a_failed_last_send_still_gets_one_access_line(self, out: io.BytesIO) -> None:
        """The access line is written after the last body message is sent, and also when that send fails."""
        with pytest.raises(OSError, match="client went away"):
            self.call("/ctx", ("127.0.0.1", 5555), fail_body=True)
        access = [r for r in records(out) if r["name"] == "service.access"]
        assert [(r["path"], r["status"]) for r in access] == [("/ctx", 200)]

    def test_a_level_raised_after_requests_silences_the_access_line(self, out: io.BytesIO) -> None:
        """The middleware reads the logger's level cache: setLevel clears it, so the next request obeys."""
        client = TestClient(build())
        client.get("/ctx")
        access = logging.getLogger("service.access")
        access.setLevel(logging.WARNING)
        try:
            client.get("/ctx")
        finally:
            access.setLevel(logging.NOTSET)
        client.get("/ctx")
        assert len([r for r in records(out) if r["name"] == "service.access"]) == 2

    def test_unknown_client_is_a_dash_not_none(self, out: io.BytesIO) -> None:
        """After a client RST the server may not know the peer: the message must not start with None."""
        self.call("/ctx", None)
        access = next(r for r in records(out) if r["name"] == "service.access")
        assert access["message"] == '- "GET /ctx" 200' and access["client"] is None

    def test_below_info_the_access_line_costs_no_clock_read(
        self, out: io.BytesIO, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        calls: list[int] = []
        import time

        import service.middleware as middleware

        def counting() -> float:
            calls.append(1)
            return time.perf_counter()

        monkeypatch.setattr(middleware, "time", types.SimpleNamespace(perf_counter=counting, time=time.time))
        logging.getLogger("service.access").setLevel(logging.WARNING)
        try:
            TestClient(build()).get("/ctx")
        finally:
            logging.getLogger("service.access").setLevel(logging.NOTSET)
        assert calls == [] and not [r for r in records(out) if r["name"] == "service.access"]
        TestClient(build()).get("/ctx")
        assert len(calls) == 2
