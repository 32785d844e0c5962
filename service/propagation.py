"""Forward the current tracking ID and W3C trace context to downstream services called with httpx.

httpx.Client(event_hooks={"request": [forward_tracking_id]})
httpx.AsyncClient(event_hooks={"request": [aforward_tracking_id]})
"""

from __future__ import annotations

import httpx

from service.context import request_context_var
from service.trace import format_traceparent

__all__ = ["HEADER", "TRACEPARENT", "aforward_tracking_id", "format_traceparent", "forward_tracking_id"]

HEADER = "X-Tracking-ID"
TRACEPARENT = "traceparent"


def forward_tracking_id(request: httpx.Request) -> None:
    """httpx request hook: add ``X-Tracking-ID`` and ``traceparent`` (the request's own span as the
    parent) when a request is in context; a header the caller set (or OpenTelemetry's httpx
    instrumentation injected) is kept."""
    context = request_context_var.get()
    if context is None:
        return
    tracking_id, trace = context
    headers = request.headers
    if HEADER not in headers:
        headers[HEADER] = tracking_id
    if trace is not None and TRACEPARENT not in headers:
        headers[TRACEPARENT] = f"00-{trace[0]}-{trace[1]}-{trace[2]}"


async def aforward_tracking_id(request: httpx.Request) -> None:
    """The same hook for ``httpx.AsyncClient`` (which requires async hooks)."""
    forward_tracking_id(request)
