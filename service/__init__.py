"""Request tracking IDs and fast JSON logging for FastAPI services.

app.add_middleware(TrackingIDMiddleware)
setup_logging()
"""

from service.context import bind_tracking_id, get_trace_context, get_tracking_id, new_tracking_id
from service.logs.format import JsonFormatter
from service.logs.pipeline import setup_logging, shutdown_logging
from service.middleware import TrackingIDMiddleware, is_valid_tracking_id
from service.propagation import aforward_tracking_id, forward_tracking_id
from service.settings import LogSettings, SettingsError
from service.trace import format_traceparent, parse_traceparent

__all__ = [
    "JsonFormatter",  # stdlib Formatter rendering the bundle's JSON line, for your own handlers
    "LogSettings",  # the LOG_* settings, validated
    "SettingsError",  # raised for a bad LOG_* value; the message names the variable
    "TrackingIDMiddleware",  # pure ASGI middleware: adopt or make the ID, header on every response
    "aforward_tracking_id",  # httpx.AsyncClient request hook forwarding the ID and traceparent downstream
    "bind_tracking_id",  # context manager binding an ID for detached work (with / async with)
    "format_traceparent",  # the W3C traceparent to send downstream for the current request (or None)
    "forward_tracking_id",  # httpx.Client request hook forwarding the ID and traceparent downstream
    "get_trace_context",  # the current (trace_id, span_id, trace_flags), None outside a traced request
    "get_tracking_id",  # the current ID (None outside a request); also a FastAPI dependency
    "is_valid_tracking_id",  # the default inbound-ID validator (8-128 safe characters)
    "new_tracking_id",  # a fresh uuid4 string
    "parse_traceparent",  # a W3C traceparent value -> (trace_id, parent_id, flags), None when invalid
    "setup_logging",  # route every logger through the JSON queue pipeline (idempotent)
    "shutdown_logging",  # drain the queue and stop the listener
]
