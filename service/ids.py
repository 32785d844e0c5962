"""Fresh IDs for the middleware, made in batches so a request costs no system call and almost no
Python of its own: tracking IDs (random UUID4 strings, as ``service.context.new_tracking_id`` makes
them), new W3C trace contexts, and whole request contexts (both at once, one ``popleft`` per request).
``deque.popleft`` is atomic, so threads never share one."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from itertools import repeat
from typing import Generic, TypeVar

from service.context import RequestContext, TraceContext

__all__ = ["ContextBatches", "buffered_trace_context", "buffered_tracking_id", "context_batches"]

T = TypeVar("T")

_BATCH = 256


class _Batches(Generic[T]):
    """Values made a batch at a time by ``make``, handed out one by one; ``deque.popleft`` is atomic."""

    __slots__ = ("make", "ready")

    def __init__(self, make: Callable[[], list[T]]) -> None:
        self.make = make
        self.ready: deque[T] = deque()

    def take(self) -> T:
        while True:
            try:
                return self.ready.popleft()
            except IndexError:
                self.ready.extend(self.make())


# A UUID4 string built for a whole batch by C-level slice assignment instead of one f-string each:
# every hex digit comes from the low nibble of one random byte, the variant digit from two bits.
_HEX = bytes(b"0123456789abcdef"[x & 15] for x in range(256))
_VARIANT = bytes(b"89ab"[x & 3] for x in range(256))
_WIDTH = 37  # 36 characters and a space to split on
_DIGITS = [(i, at) for i, at in enumerate(at for at in range(36) if at not in (8, 13, 18, 23))]


def _make_tracking_ids() -> list[str]:
    raw = os.urandom(32 * _BATCH)
    digits = raw.translate(_HEX)
    out = bytearray(b"-" * (_WIDTH * _BATCH))
    for i, at in _DIGITS:
        out[at::_WIDTH] = digits[i::32]
    out[14::_WIDTH] = b"4" * _BATCH  # version 4
    out[19::_WIDTH] = raw[16::32].translate(_VARIANT)  # RFC 4122 variant: 8, 9, a or b
    out[36::_WIDTH] = b" " * _BATCH
    return out.decode("ascii").split()


def _make_trace_contexts() -> list[TraceContext]:
    # hex(" ", n) puts a space after every n random bytes, so one split yields the batch's IDs.
    trace_ids = os.urandom(16 * _BATCH).hex(" ", 16).split()
    span_ids = os.urandom(8 * _BATCH).hex(" ", 8).split()
    made = list(zip(trace_ids, span_ids, repeat("00", _BATCH), strict=True))
    if _ZERO_TRACE in trace_ids or _ZERO_SPAN in span_ids:  # (practically never) all zero: the spec forbids it
        made = [t for t in made if t[0] != _ZERO_TRACE and t[1] != _ZERO_SPAN]
    return made


_ZERO_TRACE, _ZERO_SPAN = "0" * 32, "0" * 16
_tracking_ids = _Batches(_make_tracking_ids)
_trace_contexts = _Batches(_make_trace_contexts)

#: A random UUID4 string (a bound method: no extra Python frame per request).
buffered_tracking_id: Callable[[], str] = _tracking_ids.take
#: A new trace: ``(trace_id, span_id, "00")``, random and never all zero; "00": nothing was recorded
#: out of band.
buffered_trace_context: Callable[[], TraceContext] = _trace_contexts.take


def _make_contexts() -> list[RequestContext]:
    traces = _make_trace_contexts()
    return list(zip(_make_tracking_ids()[: len(traces)], traces, strict=True))


def _make_id_contexts() -> list[RequestContext]:
    return list(zip(_make_tracking_ids(), repeat(None)))


def _make_trace_id_contexts() -> list[RequestContext]:
    return [(trace[0], trace) for trace in _make_trace_contexts()]


#: Request contexts for a request that brought no ID and no trace: ``(uuid4, new trace)``;
#: ``(uuid4, None)`` when no new trace is wanted; ``(trace_id, new trace)`` when the trace ID serves as
#: the tracking ID.
ContextBatches = _Batches[RequestContext]
_contexts = {"id+trace": _Batches(_make_contexts), "id": _Batches(_make_id_contexts),
             "trace-as-id": _Batches(_make_trace_id_contexts)}  # fmt: skip


def context_batches(*, new_trace: bool, trace_id_as_tracking_id: bool) -> ContextBatches:
    """The shared batches of fresh request contexts for one middleware configuration."""
    if not new_trace:
        return _contexts["id"]
    return _contexts["trace-as-id" if trace_id_as_tracking_id else "id+trace"]


def _forget() -> None:
    _tracking_ids.ready.clear()
    _trace_contexts.ready.clear()
    for batches in _contexts.values():
        batches.ready.clear()


if hasattr(os, "register_at_fork"):  # a forked worker must never hand out its parent's IDs
    os.register_at_fork(after_in_child=_forget)
