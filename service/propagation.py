"""Forward the current tracking ID to downstream services called with httpx.

httpx.Client(event_hooks={"request": [forward_tracking_id]})
httpx.AsyncClient(event_hooks={"request": [aforward_tracking_id]})
"""

from __future__ import annotations

import httpx

from service.context import tracking_id_var

__all__ = ["HEADER", "aforward_tracking_id", "forward_tracking_id"]

HEADER = "X-Tracking-ID"


def forward_tracking_id(request: httpx.Request) -> None:
    """httpx request hook: add ``X-Tracking-ID`` (unless the caller set one) when a request is in context."""
    tracking_id = tracking_id_var.get()
    if tracking_id is not None and HEADER not in request.headers:
        request.headers[HEADER] = tracking_id


async def aforward_tracking_id(request: httpx.Request) -> None:
    """The same hook for ``httpx.AsyncClient`` (which requires async hooks)."""
    forward_tracking_id(request)
