"""The request's tracking ID: one ContextVar, read anywhere, bound explicitly for detached work."""

from __future__ import annotations

import os
from contextvars import ContextVar, Token
from types import TracebackType

__all__ = [
    "TraceContext",
    "bind_tracking_id",
    "get_tracking_id",
    "new_tracking_id",
    "trace_context_var",
    "tracking_id_var",
]

#: The single source of truth. ``None`` outside a request (startup lines, idle background threads).
tracking_id_var: ContextVar[str | None] = ContextVar("tracking_id", default=None)

#: W3C trace context of the current request as ``(trace_id, span_id, trace_flags)``: 32, 16 and 2
#: lowercase hex characters. ``None`` outside a traced request; log lines then carry no trace fields.
TraceContext = tuple[str, str, str]
trace_context_var: ContextVar[TraceContext | None] = ContextVar("trace_context", default=None)


def new_tracking_id() -> str:
    """A fresh ID: a random UUID4 in its canonical 36-character form, as ``str(uuid.uuid4())`` makes it
    (16 bytes of ``os.urandom``, version 4, RFC 4122 variant), without building a ``UUID`` object."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def get_tracking_id() -> str | None:
    """The current tracking ID, or None outside a request. Also usable as ``Depends(get_tracking_id)``."""
    return tracking_id_var.get()


class bind_tracking_id:
    """Bind a tracking ID (a new one when None) for detached work; restore the previous one on exit.

    Works with ``with`` and ``async with``. The bound ID is available as the ``as`` target.
    """

    __slots__ = ("_token", "tracking_id")

    def __init__(self, tracking_id: str | None = None) -> None:
        self.tracking_id: str = tracking_id if tracking_id is not None else new_tracking_id()
        self._token: Token[str | None] | None = None

    def __enter__(self) -> str:
        self._token = tracking_id_var.set(self.tracking_id)
        return self.tracking_id

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._token is not None:
            tracking_id_var.reset(self._token)
            self._token = None

    async def __aenter__(self) -> str:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)
