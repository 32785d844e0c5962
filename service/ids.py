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


# A batch is made from one string of random lowercase hex digits, shaped in place by C-level stepped
# slice assignments (a few per batch, not per value) and split on spaces: one record per value, its fields
# (a UUID4, a trace ID, a span ID) each followed by a space.
_UUID = 36
_TRACE = 32
_SPAN = 16
_VARIANT = bytes.maketrans(b"0123456789abcdef", b"89ab89ab89ab89ab")  # RFC 4122 variant from a random digit
_ZERO_TRACE, _ZERO_SPAN = "0" * _TRACE, "0" * _SPAN
_DASHES, _FOURS, _SPACES = b"-" * _BATCH, b"4" * _BATCH, b" " * _BATCH


def _random_hex(length: int) -> bytearray:
    """``length`` random lowercase hex digits (os.urandom: one system call per batch)."""
    return bytearray(os.urandom((length + 1) // 2).hex()[:length], "ascii")


def _records(width: int, uuid_at: int | None, spaces: tuple[int, ...]) -> str:
    """``_BATCH`` records of ``width`` characters: random hex, a UUID4 laid out from offset
    ``uuid_at``, a space at each offset in ``spaces`` (the last one ends the record)."""
    buf = _random_hex(width * _BATCH)
    if uuid_at is not None:
        for dash in (8, 13, 18, 23):
            buf[uuid_at + dash :: width] = _DASHES
        buf[uuid_at + 14 :: width] = _FOURS  # version 4
        buf[uuid_at + 19 :: width] = buf[uuid_at + 19 :: width].translate(_VARIANT)
    for at in spaces:
        buf[at::width] = _SPACES
    return buf.decode("ascii")


def _may_hold_zero_ids(records: str) -> bool:
    # (practically never true) maybe an all-zero trace or span ID, which the spec forbids; a UUID4 never
    # has 16 zeros in a row
    return _ZERO_SPAN in records


def _make_tracking_ids() -> list[str]:
    return _records(_UUID + 1, 0, (_UUID,)).split()


def _make_trace_contexts() -> list[TraceContext]:
    records = _records(_TRACE + 1 + _SPAN + 1, None, (_TRACE, _TRACE + 1 + _SPAN))
    fields = records.split()
    made = list(zip(fields[0::2], fields[1::2], repeat("00", _BATCH), strict=True))
    return [t for t in made if _valid(t)] if _may_hold_zero_ids(records) else made


def _valid(trace: TraceContext) -> bool:
    return trace[0] != _ZERO_TRACE and trace[1] != _ZERO_SPAN


_tracking_ids = _Batches(_make_tracking_ids)
_trace_contexts = _Batches(_make_trace_contexts)

#: A random UUID4 string (a bound method: no extra Python frame per request).
buffered_tracking_id: Callable[[], str] = _tracking_ids.take
#: A new trace: ``(trace_id, span_id, "00")``, random and never all zero; "00": nothing was recorded
#: out of band.
buffered_trace_context: Callable[[], TraceContext] = _trace_contexts.take


def _make_contexts() -> list[RequestContext]:
    # One record per request: UUID4, trace ID, span ID.
    ends = (_UUID, _UUID + 1 + _TRACE, _UUID + 1 + _TRACE + 1 + _SPAN)
    records = _records(ends[-1] + 1, 0, ends)
    fields = records.split()
    traces = zip(fields[1::3], fields[2::3], repeat("00", _BATCH), strict=True)
    made: list[RequestContext] = list(zip(fields[0::3], traces, strict=True))
    return [c for c in made if c[1] is None or _valid(c[1])] if _may_hold_zero_ids(records) else made


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
