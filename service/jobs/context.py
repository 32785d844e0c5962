"""What every queue integration shares: the carrier sent with a job, binding it in the worker, log fields.

Producer side: ``carrier()`` is the current tracking ID and ``traceparent``, as a small str dict that
travels in the queue's own header channel (Celery headers, taskiq labels, a side key for arq).
Worker side: ``start_job`` binds the carried ID (or the job's own ID when none came) and a child span of
the carried trace; ``end_job`` resets every ContextVar with its token. ``JobFieldsFilter`` adds the job's
``task_name`` and ``task_id`` to every line logged while it runs.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from contextvars import ContextVar, Token
from dataclasses import dataclass

from service.context import RequestContext, TraceContext, new_tracking_id, request_context_var
from service.middleware import is_valid_tracking_id
from service.trace import new_span_id

__all__ = [
    "TRACEPARENT_KEY",
    "TRACKING_KEY",
    "JobFieldsFilter",
    "carrier",
    "current_job",
    "end_job",
    "log_job_fields",
    "start_job",
]

#: Carrier keys: Celery message headers, taskiq labels, the arq side record.
TRACKING_KEY = "tracking_id"
TRACEPARENT_KEY = "traceparent"

_log = logging.getLogger("service.jobs")

# -- W3C traceparent (version 00). The one place this package formats and parses it. -----------------
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
_ZERO_TRACE, _ZERO_SPAN = "0" * 32, "0" * 16


def _format_traceparent(context: TraceContext) -> str:
    trace_id, span_id, flags = context
    return f"00-{trace_id}-{span_id}-{flags}"


def _parse_traceparent(value: object) -> TraceContext | None:
    """``(trace_id, parent span_id, flags)``, or None for anything the W3C spec says to ignore."""
    if not isinstance(value, str) or len(value) > 512:
        return None
    match = _TRACEPARENT.fullmatch(value)
    if match is None:
        return None
    version, trace_id, span_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest) or trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return trace_id, span_id, flags


# -- producer side ----------------------------------------------------------------------------------
def carrier() -> dict[str, str]:
    """The current tracking ID and traceparent, for a job enqueued now (empty outside a request)."""
    out: dict[str, str] = {}
    context = request_context_var.get()
    if context is None:
        return out
    tracking_id, trace = context
    out[TRACKING_KEY] = tracking_id
    if trace is not None:
        out[TRACEPARENT_KEY] = _format_traceparent(trace)
    return out


# -- worker side ------------------------------------------------------------------------------------
#: ``(task_name, task_id)`` of the job running in this context, for the log fields.
_job_var: ContextVar[tuple[str | None, str] | None] = ContextVar("tracking_job", default=None)


@dataclass(slots=True)
class _Scope:
    request: Token[RequestContext | None]
    job: Token[tuple[str | None, str] | None]
    outer: Token[_Scope | None] | None = None


_scope_var: ContextVar[_Scope | None] = ContextVar("tracking_job_scope", default=None)


def start_job(received: Mapping[str, object] | None, *, name: str | None, job_id: str) -> str:
    """Bind the job's tracking ID and trace context in the current context; return the ID.

    The ID is the carried one when valid; else the job's own ID (stable across retries and redelivery)
    when it is a valid tracking ID, else a fresh one; either way one line says so. The trace context
    is a new span of the carried trace. Pair every call with ``end_job()`` in the same context.
    """
    received = received or {}
    carried = received.get(TRACKING_KEY)
    if isinstance(carried, str) and is_valid_tracking_id(carried):
        tracking_id, generated = carried, False
    else:
        tracking_id, generated = (job_id if is_valid_tracking_id(job_id) else new_tracking_id()), True
    parent = _parse_traceparent(received.get(TRACEPARENT_KEY))
    trace = (parent[0], new_span_id(), parent[2]) if parent is not None else None
    scope = _Scope(request_context_var.set((tracking_id, trace)), _job_var.set((name, job_id)))
    scope.outer = _scope_var.set(scope)
    if generated:
        _log.info("no tracking ID came with the job: using %s", "its job ID" if tracking_id == job_id else "a new one")
    return tracking_id


def end_job() -> None:
    """Undo the innermost ``start_job`` of this context (a no-op when there is none)."""
    scope = _scope_var.get()
    if scope is None or scope.outer is None:
        return
    _job_var.reset(scope.job)
    request_context_var.reset(scope.request)
    _scope_var.reset(scope.outer)


def current_job() -> tuple[str | None, str] | None:
    """``(task_name, task_id)`` of the job running in this context, or None."""
    return _job_var.get()


class JobFieldsFilter(logging.Filter):
    """Adds ``task_name`` and ``task_id`` to every record logged while a job runs (never replaces extras)."""

    def filter(self, record: logging.LogRecord) -> bool:
        job = _job_var.get()
        if job is not None:
            attrs = record.__dict__
            if "task_name" not in attrs:
                attrs["task_name"] = job[0]
            if "task_id" not in attrs:
                attrs["task_id"] = job[1]
        return True


def log_job_fields() -> None:
    """Attach one ``JobFieldsFilter`` to each root handler (call after ``setup_logging``). Idempotent."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, JobFieldsFilter) for f in handler.filters):
            handler.addFilter(JobFieldsFilter())
