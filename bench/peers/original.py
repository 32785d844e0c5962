"""The original design, written faithfully: the baseline the bundle replaces.

- a stdlib ``logging.Filter`` copies the tracking-ID ContextVar onto each record (on the caller's thread);
- a ``QueueHandler`` on an unbounded ``queue.Queue`` hands records to a ``QueueListener`` thread;
- the listener's ``StreamHandler`` uses a ``Formatter`` that builds the same fields and ``json.dumps`` them;
- the middleware is a Starlette ``BaseHTTPMiddleware`` that sets the ContextVar and the response header.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import logging.handlers
import queue
import time
import uuid
from contextvars import ContextVar
from typing import IO, Any

from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import Response

tracking_id_var: ContextVar[str | None] = ContextVar("original_tracking_id", default=None)
HEADER = "X-Tracking-ID"


class TrackingIdFilter(logging.Filter):
    """Copies the request's tracking ID onto the record while still on the caller's thread."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.tracking_id = tracking_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """The original field set: ``@timestamp`` (UTC, ms), level, name, processName, tracking_id, loc, func, message."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(timespec="milliseconds")
        payload: dict[str, Any] = {
            "@timestamp": stamp.replace("+00:00", "Z"),
            "level": record.levelname,
            "name": record.name,
            "processName": record.processName,
            "tracking_id": getattr(record, "tracking_id", None),
            "loc": f"{record.filename}:{record.lineno}",
            "func": record.funcName,
            "message": record.getMessage(),
        }
        if record.exc_info:
            payload["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def setup_logging(stream: IO[str]) -> logging.handlers.QueueListener:
    """Root logger -> filter -> QueueHandler(unbounded queue) -> QueueListener -> StreamHandler(JSON)."""
    records: queue.Queue[logging.LogRecord] = queue.Queue()
    queue_handler = logging.handlers.QueueHandler(records)
    queue_handler.addFilter(TrackingIdFilter())
    stream_handler = logging.StreamHandler(stream)
    stream_handler.setFormatter(JsonFormatter())
    listener = logging.handlers.QueueListener(records, stream_handler)
    root = logging.getLogger()
    root.handlers[:] = [queue_handler]
    root.setLevel(logging.INFO)
    listener.start()
    return listener


class TrackingIDMiddleware(BaseHTTPMiddleware):
    """Adopt the inbound ``X-Tracking-ID`` or make a uuid4; set the ContextVar; echo the header."""

    def __init__(self, app: Any, access_log: bool = False) -> None:
        super().__init__(app)
        self.access_log = access_log
        self.access_logger = logging.getLogger("original.access")

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        tracking_id = request.headers.get(HEADER) or str(uuid.uuid4())
        token = tracking_id_var.set(tracking_id)
        start = time.perf_counter()
        try:
            response = await call_next(request)
            response.headers[HEADER] = tracking_id
            if self.access_log:
                self.access_logger.info(
                    '%s "%s %s" %s',
                    request.client.host if request.client else "-",
                    request.method,
                    request.url.path,
                    response.status_code,
                    extra={"duration_ms": round((time.perf_counter() - start) * 1000, 3)},
                )
            return response
        finally:
            tracking_id_var.reset(token)
