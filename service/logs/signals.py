"""Let a shutdown signal reach a producer that waits for room in a full log queue (``LOG_OVERFLOW=block``).

When the event loop's own thread waits for room, the server's SIGTERM handler (uvicorn's sets
``should_exit``) runs but the loop never gets back to act on it. While the main thread waits, and only then,
the current SIGTERM/SIGINT handler is wrapped: the wrapper tells the queue to stop waiting, then calls the
handler it wraps. The handler that was there is put back afterwards. Handling stays the server's: only a
Python handler is wrapped (never SIG_DFL/SIG_IGN, whose meaning would change), and it is always called.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

__all__ = ["stop_waiting_on_shutdown"]

_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_Handler = Callable[[int, FrameType | None], Any]


def _chain(stop: Callable[[], None], previous: _Handler) -> _Handler:
    def chained(signum: int, frame: FrameType | None) -> Any:
        stop()  # first: the handler may raise (SIGINT's default raises KeyboardInterrupt)
        return previous(signum, frame)

    return chained


def _shutdown_already_requested(handler: Any) -> bool:
    """uvicorn's handler is ``Server.handle_exit``: a signal that arrived before the wait set ``should_exit``."""
    return getattr(getattr(handler, "__self__", None), "should_exit", False) is True


@contextlib.contextmanager
def stop_waiting_on_shutdown(stop: Callable[[], None]) -> Iterator[None]:
    """While inside, SIGTERM/SIGINT on the main thread also call ``stop`` (before the handler in place).

    ``stop`` runs inside a signal handler: it must only set flags (no lock the interrupted code may hold).
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # a Python signal handler runs on the main thread only; other threads are released by close()
        return
    wrapped: dict[signal.Signals, tuple[_Handler, _Handler]] = {}
    for sig in _SIGNALS:
        current = signal.getsignal(sig)
        if not callable(current):  # SIG_DFL ends the process anyway; SIG_IGN / a C handler: not ours to alter
            continue
        if _shutdown_already_requested(current):
            stop()

        chained = _chain(stop, current)
        signal.signal(sig, chained)
        wrapped[sig] = (chained, current)
    try:
        yield
    finally:
        for signum, (ours, previous) in wrapped.items():
            if signal.getsignal(signum) is ours:  # replaced meanwhile (by a handler): the newer one stays
                signal.signal(signum, previous)
