"""Pure ASGI middleware: adopt a valid inbound tracking ID or make one, keep it (and the W3C trace
context) in ContextVars for the whole call, put it on every response (500s included), log one JSON
access line per request, and let exceptions propagate after logging them once with the ID."""

from __future__ import annotations

import contextlib
import dis
import logging
import re
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import trace as _trace
from service.context import RequestContext, TraceContext, request_context_var
from service.ids import buffered_trace_context, buffered_tracking_id, context_batches
from service.logs.fastlog import PROCESS, direct_handler
from service.logs.format import DeferredLine, dumps_line, standard_fields
from service.logs.pipeline import drain_logging, resume_logging
from service.trace import new_span_id, otel_trace_context, parse_traceparent

if TYPE_CHECKING:
    from service.settings import LogSettings

__all__ = ["DEFAULT_ID_HEADERS", "TrackingIDMiddleware", "escape_controls", "is_valid_tracking_id"]

_ACCESS_NAME = "service.access"
access_logger = logging.getLogger(_ACCESS_NAME)
_ACCESS_FORMAT = '%s "%s %s" %s'
_log = logging.getLogger("service.middleware")

DEFAULT_ID_HEADERS = ("X-Tracking-ID", "X-Request-ID")
DEFAULT_SKIP_PATHS = ("/healthz", "/readyz")
_VALID_ID = re.compile(r"[A-Za-z0-9._:+/=-]{8,128}")
_PREVIEW = 16
_INFO = logging.INFO
_TRACEPARENT = b"traceparent"
_REQUEST_ID = b"x-request-id"
_OTEL_CONTEXT = _trace.OTEL_CONTEXT_MODULE
_modules = sys.modules
#: Set on an exception object once it is logged with its tracking ID (see ``_AlreadyLogged``).
LOGGED_MARK = "_tracking_logged"
# C0 and C1 control characters and DEL: a forged line break or terminal escape in `jq -r .message`.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: Methods that need no escaping (any other method string is checked).
_PLAIN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "WEBSOCKET"})


def is_valid_tracking_id(value: str) -> bool:
    """Loose check: 8-128 characters of ``A-Z a-z 0-9 . _ : + / = -`` (UUIDs, nginx $request_id, ULIDs)."""
    return _VALID_ID.fullmatch(value) is not None


def escape_controls(text: str) -> str:
    """``text`` with C0/C1 control characters as ``\\xNN``: safe inside a human-read message."""
    return text if text.isprintable() else _CONTROLS.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _reason(value: str) -> str:
    if len(value) > 128:
        return f"too long ({len(value)} characters, at most 128)"
    if len(value) < 8:
        return f"too short ({len(value)} characters, at least 8)"
    return "characters outside A-Z a-z 0-9 . _ : + / = -"


def _preview(value: str) -> str:
    """A short escaped preview: never the raw value (log injection), never more than 16 characters."""
    return ascii(value[:_PREVIEW]) + ("..." if len(value) > _PREVIEW else "")


class _AlreadyLogged(logging.Filter):
    """On ``uvicorn.error``: drop the server's "Exception in ASGI application" record when its exception
    was already logged by the middleware with the request's ID (the server logs it again, without one).
    Every other record passes untouched."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc_info = record.exc_info
        return not (exc_info and exc_info[1] is not None and getattr(exc_info[1], LOGGED_MARK, False))


def _install_server_filter() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _AlreadyLogged) for f in logger.filters):
        logger.addFilter(_AlreadyLogged())


class TrackingIDMiddleware:
    """Tracking IDs and trace context for ``http`` and ``websocket`` scopes; lifespan shutdown drains the
    log queue.

    Configured by its arguments only (the defaults below, never the environment):
    ``app.add_middleware(TrackingIDMiddleware, access_log=False)``. To use the ``LOG_*`` settings,
    ``app.add_middleware(TrackingIDMiddleware.from_settings)``. Works added with ``add_middleware`` (the
    unhandled-exception 500 is rendered by the app's own error handler through this middleware, so it
    keeps the header) or wrapping the whole app, ``app = TrackingIDMiddleware(FastAPI())``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        header_names: Iterable[str] = DEFAULT_ID_HEADERS,
        response_header: str = "X-Tracking-ID",
        validator: Callable[[str], bool] = is_valid_tracking_id,
        generator: Callable[[], str] = buffered_tracking_id,
        access_log: bool = True,
        skip_paths: Iterable[str] = DEFAULT_SKIP_PATHS,
        expose_request_id: bool | None = None,
        trace_context: bool = True,
        new_trace: bool = True,
        trace_id_as_tracking_id: bool = False,
    ) -> None:
        self.app = app
        self.header_names = [n.lower().encode("latin-1") for n in header_names]
        # The app sees the chosen ID as x-request-id: by default only when X-Request-ID is an ID header.
        if expose_request_id is None:
            expose_request_id = _REQUEST_ID in self.header_names
        self.expose_request_id = expose_request_id
        self._watched = frozenset([*self.header_names, _TRACEPARENT] if trace_context else self.header_names)
        self.response_header = response_header.lower().encode("latin-1")
        self.validator = validator
        self.generator = generator
        self.access_log = access_log
        self.skip_paths = frozenset(skip_paths)
        self.trace_context = trace_context
        self.new_trace = new_trace
        self.trace_id_as_tracking_id = trace_id_as_tracking_id
        # A request that brought no ID and no trace takes a ready-made context: one C-level popleft.
        fresh_trace = trace_context and new_trace
        batches = context_batches(new_trace=fresh_trace, trace_id_as_tracking_id=trace_id_as_tracking_id)
        if generator is buffered_tracking_id or (fresh_trace and trace_id_as_tracking_id):
            self._pop: Callable[[], RequestContext] = batches.ready.popleft
            self._refill: Callable[[], RequestContext] = batches.take  # after popleft's IndexError
        else:  # the caller's own generator: called once per request
            self._pop = self._refill = self._generated
        _install_server_filter()

    @classmethod
    def from_settings(
        cls, app: ASGIApp, /, settings: LogSettings | None = None, **overrides: Any
    ) -> TrackingIDMiddleware:
        """The middleware configured by ``LOG_*``: ``settings``, else those ``setup_logging()`` read, else
        the environment, read now (once). Keyword arguments override single options."""
        if settings is None:
            from service.logs.pipeline import current_pipeline
            from service.settings import load_settings

            pipeline = current_pipeline()
            settings = pipeline.settings if pipeline is not None else load_settings()
        options: dict[str, Any] = {
            "header_names": settings.id_headers,
            "response_header": settings.response_header,
            "access_log": settings.access,
            "skip_paths": () if settings.access_health else settings.health_paths,
            "expose_request_id": settings.expose_request_id,
            "trace_context": settings.trace_context,
            "new_trace": settings.new_trace,
            "trace_id_as_tracking_id": settings.trace_id_as_tracking_id,
        }
        return cls(app, **{**options, **overrides})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            if kind == "lifespan":
                resume_logging()  # a new lifespan after an earlier shutdown drained the queue (test clients)
                send = self._lifespan_send(send)
            await self.app(scope, receive, send)
            return
        # The request path is inline here (no helper coroutine or method for the common case): each
        # Python frame is a visible share of a light request's cost.
        headers = scope["headers"]
        watched = self._watched
        for key, _ in headers:
            if key in watched:
                context = self._resolve_slow(scope, headers)
                header = (self.response_header, context[0].encode("latin-1"))
                break
        else:  # the common case: no inbound ID, no traceparent
            context = None
            if self.trace_context:
                current = _trace.otel_current
                if current is None and _OTEL_CONTEXT in _modules:  # (a dict lookup while OTel is not imported)
                    current = _trace.find_otel_current()
                if current is not None and current():  # an OpenTelemetry context (maybe a span) is active
                    context = self._from_otel()
            if context is None:
                try:
                    context = self._pop()
                except IndexError:
                    context = self._refill()
            header = (self.response_header, context[0].encode("latin-1"))
            if self.expose_request_id:
                scope["headers"] = [*headers, (_REQUEST_ID, header[1])]
        token = request_context_var.set(context)
        # Below INFO on service.access the access line costs nothing: no clock read, no record. (The
        # logger's own level cache answers first: a Python call is a visible share of a light request.)
        log_access = False
        if self.access_log and scope.get("path") not in self.skip_paths:
            enabled = _access_cache.get(_INFO) if not access_logger.disabled else None
            log_access = enabled if enabled is not None else _access_enabled()
        if log_access or kind != "http":
            # An access line due, or a WebSocket: the wrapper keeps the status. It takes what it needs as
            # default arguments and its state in a list, so none of it is a closure cell of this function
            # (every cell is made on every call, also by the lean path below).
            state: list[Any] = [None, log_access, time.perf_counter() if log_access else 0.0]  # status, due, start

            # A plain function returning the awaitable of the server's send: one coroutine less per message
            # (the app awaits what it returns, exactly as it would await an async send).
            def send_with_id(
                message: Message, state: list[Any] = state, header: tuple[bytes, bytes] = header,
                send: Send = send, log: Callable[..., None] = self._log_access, scope: Scope = scope,
            ) -> Awaitable[None]:  # fmt: skip
                kind = message["type"]
                if kind == "http.response.start" or kind == "websocket.accept":
                    headers = message.get("headers", ())
                    for h in headers:  # as in the lean wrapper below
                        if h[0] == header[0]:
                            headers = [h for h in headers if h[0] != header[0]]
                            break
                    message["headers"] = [*headers, header]
                    state[0] = message.get("status", 101)
                elif kind == "http.response.body":
                    if state[1] and not message.get("more_body", False):
                        # The app has handed over the whole response: logged now, before its background
                        # tasks run (and without a coroutine of our own around the last send).
                        state[1] = False
                        log(scope, state[0], state[2])
                elif kind == "websocket.close" and state[0] is None:
                    state[0] = 403
                return send(message)

            try:
                await self.app(scope, receive, send_with_id)
            except Exception as exc:
                started = state[0] is not None
                if not started:
                    state[0] = 500 if kind == "http" else 1011
                await self._on_error(scope, receive, send_with_id, exc, started=started)
                raise  # as Starlette's ServerErrorMiddleware: outer middleware, tracers and test clients see it
            finally:
                try:
                    if state[1]:
                        self._log_access(scope, state[0], state[2])
                finally:
                    request_context_var.reset(token)
            return
        # No access line (the common case of a light request): the leanest send wrapper, with three
        # closure cells.
        started = False

        def send_header(message: Message) -> Awaitable[None]:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = message.get("headers", ())
                # The app's own header of this name, if any, is replaced, not duplicated (ASGI header names are
                # lowercase). Inline, here and in the access path's wrapper: no Python call per response.
                for h in headers:
                    if h[0] == header[0]:
                        headers = [h for h in headers if h[0] != header[0]]
                        break
                # A new list (the app may reuse its own), set in the message dict as Starlette's own middleware
                # does (MutableHeaders(scope=message)): a dict copy per response costs more than this line.
                message["headers"] = [*headers, header]
            return send(message)

        try:
            await self.app(scope, receive, send_header)
        except Exception as exc:
            await self._on_error(scope, receive, send_header, exc, started=started)
            raise
        finally:
            request_context_var.reset(token)

    # -- the ID and the trace context ---------------------------------------------------------
    def _generated(self) -> RequestContext:
        """A fresh context with the configured generator's ID."""
        trace = buffered_trace_context() if self.trace_context and self.new_trace else None
        return self.generator(), trace

    def _from_otel(self) -> RequestContext | None:
        """The context of the active OpenTelemetry span, or None when no valid span is active."""
        trace = otel_trace_context()
        if trace is None:
            return None
        return (trace[0] if self.trace_id_as_tracking_id else self.generator()), trace

    def _resolve_slow(self, scope: Scope, headers: Iterable[tuple[bytes, bytes]]) -> RequestContext:
        watched = self._watched
        names = self.header_names
        values: dict[bytes, list[str]] = {}
        kept: list[tuple[bytes, bytes]] = []
        for key, raw in headers:
            if key in watched:
                values.setdefault(key, []).append(raw.decode("latin-1"))
                if key == _TRACEPARENT:
                    kept.append((key, raw))  # read, never rewritten
                continue
            if key == _REQUEST_ID and self.expose_request_id:
                continue  # replaced below by the chosen ID
            kept.append((key, raw))
        trace = None
        if self.trace_context:
            parents = values.get(_TRACEPARENT, ())
            trace = self._trace(parse_traceparent(parents[0]) if len(parents) == 1 else None)
        tracking_id: str | None = None
        rejected: list[tuple[bytes, str]] = []
        for name in names:  # in priority order; among duplicates of one header the first valid one wins
            for candidate in values.get(name, ()):
                if self.validator(candidate):
                    tracking_id = candidate
                    break
                rejected.append((name, candidate))
            if tracking_id is not None:
                break
        if tracking_id is None:
            tracking_id = trace[0] if trace is not None and self.trace_id_as_tracking_id else self.generator()
        for name, bad in rejected:
            _log.warning(
                "rejected inbound %s header (%s), preview %s; using tracking id %s",
                name.decode(), _reason(bad), _preview(bad), tracking_id,
                extra={"tracking_id": tracking_id},
            )  # fmt: skip
        encoded = tracking_id.encode("latin-1")
        for name in names:  # a configured ID header the client sent: the app sees the chosen ID, once
            if name in values and not (name == _REQUEST_ID and self.expose_request_id):
                kept.append((name, encoded))
        if self.expose_request_id:
            kept.append((_REQUEST_ID, encoded))
        scope["headers"] = kept
        return tracking_id, trace

    def _trace(self, inbound: TraceContext | None) -> TraceContext | None:
        """The active OpenTelemetry span, else the caller's trace with a span of our own, else a new one."""
        active = otel_trace_context()
        if active is not None:
            return active
        if inbound is not None:
            return inbound[0], new_span_id(), inbound[2]
        return buffered_trace_context() if self.new_trace else None

    # -- errors and the access line -------------------------------------------------------------
    async def _on_error(self, scope: Scope, receive: Receive, send: Send, exc: Exception, *, started: bool) -> None:
        """Log the exception once with its tracking ID and mark it (the server's own traceback of it is
        filtered out); make sure the client gets a 500 with the header when nothing was sent yet."""
        method = escape_controls(scope.get("method", "WEBSOCKET"))
        path = escape_controls(scope.get("path", ""))
        if _log.disabled:  # a library's dictConfig({"version": 1}) must not hide tracebacks
            _log.disabled = False
        if started:
            _log.error("unhandled exception in %s %s after the response started", method, path, exc_info=exc)
        else:
            _log.error("unhandled exception in %s %s", method, path, exc_info=exc)
        with contextlib.suppress(Exception):  # e.g. an exception type with __slots__ and no __dict__
            setattr(exc, LOGGED_MARK, True)
        if started:
            return  # the response had started: the server closes the connection
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1011})
        else:
            await _render_500(scope, receive, send, exc)

    def _log_access(self, scope: Scope, status: int | None, start: float) -> None:
        duration = time.perf_counter() - start
        handler = direct_handler(access_logger, _INFO)
        if handler is None:  # another handler or a filter may see it: a real record
            fields: dict[str, Any] = {}
            args = _access_parts(
                scope.get("client"), scope.get("method", "WEBSOCKET"), scope.get("path", ""), status, duration,
                scope.get("http_version"), fields,
            )  # fmt: skip
            access_logger.info(_ACCESS_FORMAT, *args, extra=fields)
            return
        # The line FastLogger would render for the call above, without its generic checks (one per request).
        # Its values cannot change: the listener builds and renders it (see DeferredLine).
        context = request_context_var.get()  # read inline, as FastLogger does: no Python call per line
        handler.pipeline.submit(
            (_render_access, time.time(), PROCESS.name, context, scope.get("client"), scope.get("method", "WEBSOCKET"),
             scope.get("path", ""), status, duration, scope.get("http_version"))
        )  # fmt: skip

    def _lifespan_send(self, send: Send) -> Send:
        async def lifespan_send(message: Message) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                # Nothing queued may die with the process (uvicorn re-raises SIGTERM right after, so atexit
                # does not run): drain before the message is sent, on a thread of its own (a fresh limiter:
                # hung sync endpoints holding every default token cannot delay it), so the loop keeps running
                # while the drain waits up to LOG_SHUTDOWN_TIMEOUT on a stalled stdout.
                await anyio.to_thread.run_sync(drain_logging, limiter=anyio.CapacityLimiter(1))
            await send(message)

        return lifespan_send


def _access_parts(
    client: Any,
    method: str,
    path: str,
    status: int | None,
    duration: float,
    http_version: str | None,
    fields: dict[str, Any],
) -> tuple[str, str, str, object]:
    """Adds the access line's fields to ``fields``; returns its message arguments (client, method, path,
    status)."""
    client_addr = f"{client[0]}:{client[1]}" if client else None
    fields["method"], fields["path"], fields["status"] = method, path, status
    fields["duration_ms"] = round(duration * 1e6) / 1000  # to the µs; round(x, 3) costs ten times more
    fields["client"], fields["http_version"] = client_addr, http_version
    # The message is for people (escaped); the fields keep the exact values, for queries.
    if not (method in _PLAIN_METHODS and path.isprintable()):
        method, path = escape_controls(method), escape_controls(path)
    return client_addr or "-", method, path, "-" if status is None else status


def _render_access(line: DeferredLine) -> bytes:
    """The access line queued by ``_log_access``, rendered by the listener as a record of it would be."""
    _, created, process_name, context, client, method, path, status, duration, http_version = line
    tracking_id, trace = (None, None) if context is None else context
    out = standard_fields(
        created, "INFO", _ACCESS_NAME, process_name, tracking_id, _ACCESS_LOC, "_log_access", "", trace
    )  # the message, set below, keeps its place before the access fields
    client_addr, method, path, code = _access_parts(client, method, path, status, duration, http_version, out)
    out["message"] = f'{client_addr} "{method} {path}" {code}'  # _ACCESS_FORMAT, as an f-string: faster
    return dumps_line(out)


def _call_line(function: Callable[..., Any], attribute: str) -> int:
    """The source line of ``function``'s first ``.attribute`` lookup."""
    for instruction in dis.get_instructions(function):
        if instruction.argval == attribute and instruction.positions and instruction.positions.lineno:
            return instruction.positions.lineno
    return function.__code__.co_firstlineno


# A directly rendered access line names the same place as one made through a record.
_ACCESS_LOC = f"{Path(__file__).name}:{_call_line(TrackingIDMiddleware._log_access, 'info')}"


_access_cache: dict[int, bool] = access_logger._cache  # type: ignore[attr-defined]  # stdlib's level cache, cleared on any setLevel


def _access_enabled() -> bool:
    """Is ``service.access`` on for INFO? A library's ``dictConfig({"version": 1})`` disables every
    existing logger it does not name; the access line is ours and stays on (turn it off with the
    ``access_log`` option or a level above INFO)."""
    if access_logger.disabled:
        access_logger.disabled = False
    return access_logger.isEnabledFor(_INFO)


async def _render_500(scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
    """The app's own 500 (its ``Exception``/500 handler, or debug page) sent through our ``send``."""
    from starlette.middleware.errors import ServerErrorMiddleware

    app = scope.get("app")
    handler = None
    debug = False
    handlers = getattr(app, "exception_handlers", None)
    if isinstance(handlers, dict):
        handler = handlers.get(500) or handlers.get(Exception)
        debug = bool(getattr(app, "debug", False))

    async def raise_it(scope: Scope, receive: Receive, send: Send) -> None:
        raise exc

    # It re-raises after sending, by design; the caller re-raises the original itself.
    with contextlib.suppress(Exception):
        await ServerErrorMiddleware(raise_it, handler=handler, debug=debug)(scope, receive, send)
