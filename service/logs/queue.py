"""A bounded, batched hand-off from logging threads to one listener thread.

Producers append to a deque (atomic under the GIL, no lock) and set an Event only when the listener
is idle, so a burst costs one wake-up per batch instead of a Condition round trip per record. Once
awake, the listener may ``linger`` (up to 20 ms, see ``listener.LINGER``) so that a trickle of records
(a web server's two lines per request) is written as one batch rather than one thread hand-off per
line; ~1k queued items (half the queue, if smaller), ``hurry()`` or ``wake()`` cut the linger short.
The bound is checked without a lock, so it may be exceeded by at most one record per producing thread.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

from service.logs.signals import stop_waiting_on_shutdown

__all__ = ["BatchQueue"]

T = TypeVar("T")


class BatchQueue(Generic[T]):
    """Bounded multi-producer, single-consumer queue. ``overflow`` is ``"block"`` or ``"drop"``."""

    def __init__(self, maxsize: int, overflow: str = "block") -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be positive")
        self.maxsize = maxsize
        self.drop = overflow == "drop"
        self.dropped = 0  # total records dropped since creation (drop policy only)
        self._items: deque[T] = deque()
        self._wake = threading.Event()
        # Mirrors "the listener was woken since its last wait()" for producers: a plain attribute read is
        # cheaper than Event.is_set(), a Python call per line.
        self._signalled = False
        self._hurry = threading.Event()  # cuts the listener's linger short
        # Wake the listener by ~1k lines: with many more rendered lines alive at once, glibc malloc slows
        # every orjson.dumps (its ~1 KB buffers are shrunk in place; see docs/benchmarks.md).
        self._high = max(1, min(maxsize // 2, 1024))
        self._space = threading.Condition(threading.Lock())
        self._blocked = 0
        self._closed = False
        #: Set by a shutdown signal (block policy): a full queue no longer makes producers wait.
        self.stopping = False
        self.shed = 0  # records not queued because the queue was full after shutdown was requested

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T) -> bool:
        """Hand ``item`` to the listener. Returns False when it was dropped."""
        items = self._items
        if len(items) >= self.maxsize and not self._make_room():
            return False
        items.append(item)
        if not self._signalled:
            self._signalled = True
            self._wake.set()
        elif len(items) >= self._high and not self._hurry.is_set():
            self._hurry.set()
        return True

    def _make_room(self) -> bool:
        if not self._hurry.is_set():
            self._hurry.set()
        if self.drop:
            with self._space:
                self.dropped += 1
            return False
        if not self.stopping:
            # On the main thread this is the event loop's: a SIGTERM must still get it to run its shutdown.
            with stop_waiting_on_shutdown(self.stop_waiting), self._space:
                self._blocked += 1
                try:
                    while len(self._items) >= self.maxsize and not self._closed and not self.stopping:
                        self._wake.set()
                        self._space.wait(0.1)
                finally:
                    self._blocked -= 1
        if len(self._items) < self.maxsize or self._closed:
            return True
        with self._space:
            self.shed += 1
        return False

    def stop_waiting(self) -> None:
        """Shutdown was requested: producers stop waiting for room (what finds the queue full is shed).

        Safe inside a signal handler (sets flags only); waiting producers notice within 0.1 s.
        """
        self.stopping = True
        self._wake.set()
        self._hurry.set()

    def wait(self, timeout: float | None = None) -> None:
        """Listener: sleep until something was put (or ``timeout``); then take the batch with ``take``."""
        self._wake.wait(timeout)
        self._wake.clear()
        # After the clear: a producer that still sees True appended before this; the take that follows has it.
        self._signalled = False

    def linger(self, seconds: float) -> None:
        """Listener: give producers up to ``seconds`` to add to the batch before ``take``.

        Returns at once when the wake mark (~1k items) is reached, or when ``hurry()``/``wake()`` was called.
        """
        if seconds > 0 and len(self._items) < self._high:
            self._hurry.wait(seconds)
        self._hurry.clear()

    def hurry(self) -> None:
        """Cut the listener's current (or next) linger short."""
        self._hurry.set()

    def take(self) -> list[T]:
        """Listener: everything queued so far, oldest first."""
        items = self._items
        popleft = items.popleft
        batch = [popleft() for _ in range(len(items))]
        if self._blocked:
            with self._space:
                self._space.notify_all()
        return batch

    def wake(self) -> None:
        self._wake.set()
        self._hurry.set()

    def close(self) -> None:
        """Release blocked producers for good (used at shutdown, after which writes are synchronous)."""
        with self._space:
            self._closed = True
            self._space.notify_all()
        self._wake.set()
        self._hurry.set()
