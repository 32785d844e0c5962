"""Pure ASGI middleware: adopt a valid inbound tracking ID or make one, keep it in the ContextVar for
the whole call, put it on every response (500s included), and log one JSON access line per request."""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Callable, Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.context import new_tracking_id, tracking_id_var
from service.logs.pipeline import drain_logging, resume_logging

__all__ = ["TrackingIDMiddleware", "is_valid_tracking_id"]

access_logger = logging.getLogger("service.access")
_log = logging.getLogger("service.middleware")

_VALID_ID = re.compile(r"[A-Za-z0-9._:+/=-]{8,128}")
_PREVIEW = 16


def is_valid_tracking_id(value: str) -> bool:
    """Loose check: 8-128 characters of ``A-Z a-z 0-9 . _ : + / = -`` (UUIDs, nginx $request_id, ULIDs)."""
    return _VALID_ID.fullmatch(value) is not None


def _reason(value: str) -> str:
    if len(value) > 128:
        return f"too long ({len(value)} characters, at most 128)"
    if len(value) < 8:
        return f"too short ({len(value)} characters, at least 8)"
    return "characters outside A-Z a-z 0-9 . _ : + / = -"


def _preview(value: str) -> str:
    """A short escaped preview: never the raw value (log injection), never more than 16 characters."""
    return ascii(value[:_PREVIEW]) + ("..." if len(value) > _PREVIEW else "")


class TrackingIDMiddleware:
    """Tracking IDs for ``http`` and ``websocket`` scopes; lifespan shutdown drains the log queue.

    Works both ways: ``app.add_middleware(TrackingIDMiddleware)`` (the unhandled-exception 500 is
    rendered by the app's own error handler through this middleware, so it keeps the header) or
    wrapping the whole app, ``app = TrackingIDMiddleware(FastAPI())``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        header_names: Iterable[str] | None = None,
        response_header: str | None = None,
        validator: Callable[[str], bool] = is_valid_tracking_id,
        generator: Callable[[], str] = new_tracking_id,
        access_log: bool | None = None,
        skip_paths: Iterable[str] | None = None,
    ) -> None:
        from service.settings import load_settings  # settings are read once, at construction

        settings = load_settings()
        self.app = app
        names = list(header_names) if header_names is not None else settings.id_headers
        self.header_names = [n.lower().encode("latin-1") for n in names]
        self._watched = frozenset([*self.header_names, b"x-request-id"])
        self.response_header = (response_header or settings.response_header).lower().encode("latin-1")
        self.validator = validator
        self.generator = generator
        self.access_log = settings.access if access_log is None else access_log
        skip = settings.health_paths if skip_paths is None and not settings.access_health else skip_paths
        self.skip_paths = frozenset(skip or ())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            if kind == "lifespan":
                resume_logging()  # a new lifespan after an earlier shutdown drained the queue (test clients)
                send = self._lifespan_send(send)
            await self.app(scope, receive, send)
            return
        # The request path is inline here (not a helper coroutine): one frame less per request.
        tracking_id = self._resolve(scope)
        token = tracking_id_var.set(tracking_id)
        header = (self.response_header, tracking_id.encode("latin-1"))
        status: int | None = None
        log_access = self.access_log and scope.get("path") not in self.skip_paths
        start = time.perf_counter() if log_access else 0.0

        async def send_with_id(message: Message) -> None:
            nonlocal status, log_access
            kind = message["type"]
            if kind == "http.response.start" or kind == "websocket.accept":
                headers = [h for h in message.get("headers", ()) if h[0].lower() != header[0]]
                headers.append(header)
                message = {**message, "headers": headers}
                status = message.get("status", 101)
            elif kind == "http.response.body" and not message.get("more_body", False):
                await send(message)
                if log_access:  # logged when the response is complete, before background tasks run
                    log_access = False
                    self._log_access(scope, status, start)
                return
            elif kind == "websocket.close" and status is None:
                status = 403
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if status is None:
                status = 500 if scope["type"] == "http" else 1011
                await self._on_error(scope, receive, send_with_id, exc, started=False)
            else:
                await self._on_error(scope, receive, send_with_id, exc, started=True)
        finally:
            try:
                if log_access:
                    log_access = False
                    self._log_access(scope, status, start)
            finally:
                tracking_id_var.reset(token)

    # -- the ID ------------------------------------------------------------------------------
    def _resolve(self, scope: Scope) -> str:
        """Pick the ID and rewrite the request headers: drop invalid ID headers, expose ``x-request-id``."""
        headers = scope["headers"]
        watched = self._watched
        for key, _ in headers:
            if key in watched:
                break
        else:  # the common case: no inbound ID at all
            generated = self.generator()
            scope["headers"] = [*headers, (b"x-request-id", generated.encode("latin-1"))]
            return generated
        found: dict[bytes, bytes] = {}
        names = self.header_names
        kept: list[tuple[bytes, bytes]] = []
        for key, value in headers:
            if key in watched:
                if key not in found:
                    found[key] = value
                continue
            kept.append((key, value))
        tracking_id: str | None = None
        rejected: list[tuple[bytes, str]] = []
        for name in names:
            raw = found.get(name)
            if raw is None:
                continue
            value = raw.decode("latin-1")
            if self.validator(value):
                tracking_id = value
                break
            rejected.append((name, value))
        if tracking_id is None:
            tracking_id = self.generator()
        for name, value in rejected:
            _log.warning(
                "rejected inbound %s header (%s), preview %s; using tracking id %s",
                name.decode(), _reason(value), _preview(value), tracking_id,
                extra={"tracking_id": tracking_id},
            )  # fmt: skip
        encoded = tracking_id.encode("latin-1")
        for name in names:  # valid inbound ID headers stay visible to the app, invalid ones never do
            if name in found and name != b"x-request-id":
                kept.append((name, encoded))
        kept.append((b"x-request-id", encoded))
        scope["headers"] = kept
        return tracking_id

    async def _on_error(self, scope: Scope, receive: Receive, send: Send, exc: Exception, *, started: bool) -> None:
        """Log the exception with its tracking ID; make sure the client gets a 500 with the header.

        Not re-raised: the server would only log the traceback a second time, without the ID.
        """
        method = scope.get("method", "WEBSOCKET")
        _log.error("unhandled exception in %s %s", method, scope.get("path"), exc_info=exc)
        if started:
            return  # the response had started: the server closes the connection
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1011})
        else:
            await _render_500(scope, receive, send, exc)

    def _log_access(self, scope: Scope, status: int | None, start: float) -> None:
        duration_ms = round((time.perf_counter() - start) * 1000, 3)
        client = scope.get("client")
        client_addr = f"{client[0]}:{client[1]}" if client else None
        method = scope.get("method", "WEBSOCKET")
        path = scope.get("path", "")
        access_logger.info(
            '%s "%s %s" %s', client_addr, method, path, status,
            extra={"method": method, "path": path, "status": status, "duration_ms": duration_ms,
                   "client": client_addr, "http_version": scope.get("http_version")},
        )  # fmt: skip

    def _lifespan_send(self, send: Send) -> Send:
        async def lifespan_send(message: Message) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                drain_logging()  # nothing queued may die with the process (uvicorn re-raises SIGTERM)
            await send(message)

        return lifespan_send


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

    # It re-raises after sending, by design; the exception is already logged with its tracking ID.
    with contextlib.suppress(Exception):
        await ServerErrorMiddleware(raise_it, handler=handler, debug=debug)(scope, receive, send)
