"""W3C Trace Context: parse an inbound ``traceparent`` as the spec's processing model says, make span
and trace IDs, format the outgoing header, and read the active OpenTelemetry span when there is one.

Spec: https://www.w3.org/TR/trace-context/ (``traceparent`` header, processing model, version 00).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from random import getrandbits
from typing import Any

from service.context import TraceContext, get_trace_context

__all__ = [
    "format_traceparent",
    "new_span_id",
    "otel_trace_context",
    "parse_traceparent",
]

_HEX = frozenset("0123456789abcdef")  # lowercase only: uppercase hex is invalid (HEXDIGLC)
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
_LENGTH_00 = 55  # "00-" + 32 + "-" + 16 + "-" + 2
_MAX_LENGTH = 512  # far above any real header: a longer value is not worth parsing


def _is_hex(value: str) -> bool:
    return _HEX.issuperset(value)


def parse_traceparent(value: str) -> TraceContext | None:
    """``(trace_id, parent_id, trace_flags)`` from a ``traceparent`` value, or None when it is invalid.

    Version ``00`` must be exactly ``00-<32 lc hex>-<16 lc hex>-<2 lc hex>``. A higher version (not
    ``ff``) is read at the same fixed positions, and what follows the flags must be the end or ``-``
    (later versions may append fields). All-zero IDs are invalid. Surrounding spaces/tabs (HTTP's
    optional whitespace) are ignored. Only the sampled bit of the flags is kept, as version 00 defines
    no other; an invalid header means "start a new trace", and ``tracestate`` must then not be read.
    """
    if len(value) > _MAX_LENGTH:
        return None
    value = value.strip(" \t")
    if len(value) < _LENGTH_00 or value[2] != "-" or value[35] != "-" or value[52] != "-":
        return None
    version = value[:2]
    if version == "ff" or not _is_hex(version):
        return None
    if version == "00":
        if len(value) != _LENGTH_00:
            return None
    elif len(value) > _LENGTH_00 and value[_LENGTH_00] != "-":
        return None
    trace_id = value[3:35]
    parent_id = value[36:52]
    flags = value[53:55]
    if not (_is_hex(trace_id) and _is_hex(parent_id) and _is_hex(flags)):
        return None
    if trace_id == _ZERO_TRACE or parent_id == _ZERO_SPAN:
        return None
    return trace_id, parent_id, "01" if int(flags, 16) & 1 else "00"


def parse_traceparent_headers(values: Iterable[str]) -> TraceContext | None:
    """The trace context of a request's ``traceparent`` header values: more than one header is invalid
    (the W3C test suite expects a duplicated ``traceparent`` to restart the trace)."""
    found = list(values)
    return parse_traceparent(found[0]) if len(found) == 1 else None


# Trace and span IDs need uniqueness, not secrecy: ``random.getrandbits``, as OpenTelemetry's SDK makes
# them (CPython reseeds ``random`` in a forked child), and no system call per request. ``to_bytes().hex()``
# is several times cheaper than formatting the int with ``:032x``.
def new_span_id() -> str:
    """16 lowercase hex characters, random, never all zero."""
    return (getrandbits(64) or 1).to_bytes(8, "big").hex()


def format_traceparent(context: TraceContext | None = None) -> str | None:
    """The ``traceparent`` to send downstream (version 00) for ``context``, by default the current
    request's: its trace ID, the request's own span ID as the parent, its flags. None outside a trace."""
    if context is None:
        context = get_trace_context()
        if context is None:
            return None
    return f"00-{context[0]}-{context[1]}-{context[2]}"


#: OpenTelemetry's "current context" getter, once ``find_otel_current`` found it (the middleware reads it
#: inline: a truthy result means a context is active, maybe with a span).
otel_current: Callable[[], Any] | None = None


#: The module ``find_otel_current`` looks for: until it is imported, no OpenTelemetry context can be active.
OTEL_CONTEXT_MODULE = "opentelemetry.context"


def find_otel_current() -> Callable[[], Any] | None:
    global otel_current
    otel = sys.modules.get(OTEL_CONTEXT_MODULE)
    runtime = getattr(otel, "_RUNTIME_CONTEXT", None)  # None while the module is still being imported
    if runtime is None:
        return None
    # The default runtime keeps the context in one ContextVar: read it directly, two Python frames
    # less per request than ``opentelemetry.context.get_current()``; any other runtime goes through it.
    var = getattr(runtime, "_current_context", None)
    otel_current = var.get if isinstance(var, ContextVar) else getattr(otel, "get_current", None)
    return otel_current


def otel_trace_context() -> TraceContext | None:
    """The active OpenTelemetry span's context, if OpenTelemetry is in use and a valid span is active.

    Costs one dict lookup when OpenTelemetry was never imported (then no span can be active either):
    the package is neither required nor imported here.
    """
    current_context = otel_current
    if current_context is None:
        if OTEL_CONTEXT_MODULE not in sys.modules:  # inline: no Python call per request without OTel
            return None
        current_context = find_otel_current()
        if current_context is None:
            return None
    current = current_context()
    if not current:  # the empty context: no span (FastAPI imports OpenTelemetry even when unused)
        return None
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return None
    context = trace.get_current_span(current).get_span_context()
    if not context.is_valid:
        return None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}", f"{int(context.trace_flags) & 0xFF:02x}"
