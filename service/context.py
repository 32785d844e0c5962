"""The request's tracking ID and trace context: one ContextVar, read anywhere, bound explicitly for
detached work."""

from __future__ import annotations

import os
from contextvars import ContextVar, Token
from types import TracebackType

__all__ = [
    "RequestContext",
    "TraceContext",
    "bind_tracking_id",
    "get_trace_context",
    "get_tracking_id",
    "new_tracking_id",
    "request_context_var",
]

#: W3C trace context as ``(trace_id, span_id, trace_flags)``: 32, 16 and 2 lowercase hex characters.
TraceContext = tuple[str, str, str]
#: ``(tracking_id, trace_context)``; the trace context is None when the request is not traced (log lines
#: then carry no trace fields).
RequestContext = tuple[str, TraceContext | None]

#: The single source of truth: None outside a request (startup lines, idle background threads). One
#: variable for both, so a request costs one ``set``/``reset`` pair, and each log line one ``get``.
request_context_var: ContextVar[RequestContext | None] = ContextVar("request_context", default=None)


def new_tracking_id() -> str:
    """A fresh ID: a random UUID4 in its canonical 36-character form, as ``str(uuid.uuid4())`` makes it
    (16 bytes of ``os.urandom``, version 4, RFC 4122 variant), without building a ``UUID`` object."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def get_tracking_id() -> str | None:
    """The current tracking ID, or None outside a request. Also usable as ``Depends(get_tracking_id)``."""
    context = request_context_var.get()
    return None if context is None else context[0]


def get_trace_context() -> TraceContext | None:
    """The current ``(trace_id, span_id, trace_flags)``, or None outside a traced request."""
    context = request_context_var.get()
    return None if context is None else context[1]


class bind_tracking_id:
    """Bind a tracking ID (a new one when None) for detached work; restore the previous one on exit.

    Works with ``with`` and ``async with``. The bound ID is available as the ``as`` target. The current
    trace context, if any, stays bound with it.
    """

    __slots__ = ("_token", "tracking_id")

    def __init__(self, tracking_id: str | None = None) -> None:
        self.tracking_id: str = tracking_id if tracking_id is not None else new_tracking_id()
        self._token: Token[RequestContext | None] | None = None

    def __enter__(self) -> str:
        self._token = request_context_var.set((self.tracking_id, get_trace_context()))
        return self.tracking_id

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._token is not None:
            request_context_var.reset(self._token)
            self._token = None

    async def __aenter__(self) -> str:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)
