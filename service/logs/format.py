"""LogRecord -> one orjson-rendered JSON line.

Field order follows the original design: ``@timestamp``, ``level``, ``name``, ``processName``,
``tracking_id``, ``loc``, ``func``, ``message``; then ``exc_info`` / ``stack_info`` when present and
any ``extra=`` keys. Rendering never raises: a broken message or an unserializable value still
yields a line that says what went wrong.
"""

from __future__ import annotations

import logging
import sys
import time
import traceback
from collections.abc import Mapping
from typing import Any

import orjson

from service.context import get_tracking_id, request_context_var

__all__ = [
    "RESERVED_FIELDS",
    "DeferredLine",
    "JsonFormatter",
    "dumps_line",
    "format_message",
    "render",
    "render_deferred",
    "render_event",
    "render_fields",
    "render_line",
    "standard_fields",
]

#: Keys the formatter owns. An ``extra=`` key with one of these names is kept as ``extra_<key>``.
#: ``kubernetes``, ``stream``, ``time`` and ``_p`` are added by Fluent Bit's CRI parser and
#: kubernetes filter at the top level of the record, so the app must not emit them itself.
RESERVED_FIELDS = frozenset(
    {
        *("@timestamp", "level", "name", "processName", "tracking_id", "loc", "func", "message"),
        *("trace_id", "span_id", "trace_flags", "exc_info", "stack_info"),
        *("kubernetes", "stream", "time", "_p", "log"),
    }
)

# Attributes every LogRecord has; anything else on a record came from ``extra=`` (or another handler).
_RECORD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    *("message", "asctime", "taskName", "tracking_id", "color_message"),
}
# A record with exactly this many attributes (the standard ones plus our tracking_id) has no extras.
_PLAIN_LEN = len(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) + 1

#: The common case: str keys only. OPT_NON_STR_KEYS (an extra= dict with int keys) costs ~45 % more per
#: dumps even when every key is a str, so it is only the fallback's.
_FAST = orjson.OPT_APPEND_NEWLINE
_OPTS = orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE


def _safe_str(value: object) -> str:
    try:
        return str(value)
    except Exception as exc:  # an object whose __str__ raises must not break logging
        try:
            return f"<unprintable {type(value).__name__}: {type(exc).__name__}>"
        except Exception:
            return "<unprintable object>"


def _default(value: object) -> Any:
    """orjson fallback for values it cannot serialize natively: their ``str``, never an exception."""
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return _safe_str(value)


class _Clock:
    """RFC 3339 UTC timestamps with milliseconds; the date/time prefix is cached per second.

    The cache is one ``(second, prefix)`` tuple, replaced whole, so concurrent renderers never pair a
    second with another second's prefix.
    """

    __slots__ = ("cached",)

    def __init__(self) -> None:
        self.cached: tuple[int, str] = (-1, "")

    def prefix(self, second: int) -> str:
        cached = self.cached
        if cached[0] != second:
            cached = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
            self.cached = cached
        return cached[1]


#: ``.000Z`` ... ``.999Z``: the millisecond tail of every timestamp, formatted once.
_MILLIS = tuple(f".{ms:03d}Z" for ms in range(1000))


_clock = _Clock()


def _unrenderable(msg: object, args: object, exc: Exception) -> str:
    return (
        f"<log message could not be rendered: {type(exc).__name__}: {_safe_str(exc)}>"
        f" msg={_safe_str(repr_safe(msg))} args={_safe_str(repr_safe(args))}"
    )


def repr_safe(value: object) -> str:
    """``repr`` that never raises."""
    try:
        return repr(value)
    except Exception:
        return f"<unrepresentable {type(value).__name__}>"


def _exc_text(record: logging.LogRecord) -> str | None:
    if record.exc_text:
        return record.exc_text
    exc_info = record.exc_info
    if not exc_info:
        return None
    try:
        if not isinstance(exc_info, tuple):
            return None
        text = "".join(traceback.format_exception(*exc_info)).rstrip("\n")
    except Exception as exc:
        text = f"<traceback could not be formatted: {type(exc).__name__}>"
    record.exc_text = text  # cache, as logging.Formatter does
    return text


def _extras(record: logging.LogRecord, out: dict[str, Any]) -> None:
    for key, value in record.__dict__.items():
        if key in _RECORD_ATTRS:
            continue
        out[f"extra_{key}" if key in RESERVED_FIELDS else key] = value


def _dumps_any(out: dict[str, Any]) -> bytes:
    """``out`` with non-str keys, and values orjson cannot serialize natively as their ``str``."""
    try:
        return orjson.dumps(out, default=_default, option=_OPTS)
    except (TypeError, orjson.JSONEncodeError):
        # e.g. an int beyond 64 bits, a recursive container, or a string with a lone surrogate (a file name
        # decoded with surrogateescape): every value as text, lone surrogates as visible \udcXX escapes.
        safe = {_utf8(str(k)): _plain(v) for k, v in out.items()}
        return orjson.dumps(safe, option=_OPTS)


def _plain(value: object) -> object:
    """``value`` if JSON can carry it as it is (None, bool, float, a 64-bit int), else as text."""
    if value is None or type(value) in (bool, float) or (type(value) is int and -(2**63) <= value < 2**64):
        return value
    return _utf8(value if isinstance(value, str) else _safe_str(value))


def _utf8(text: str) -> str:
    """``text`` without lone surrogates (which UTF-8, and so JSON, cannot carry): each as ``\\udcXX``."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def render(record: logging.LogRecord) -> bytes:
    """One JSON line, newline-terminated. Never raises."""
    try:
        tail: dict[str, Any] = {}
        if record.exc_info or record.exc_text:
            tail["exc_info"] = _exc_text(record)
        if record.stack_info:
            tail["stack_info"] = record.stack_info
        if len(record.__dict__) != _PLAIN_LEN:
            _extras(record, tail)
        return render_fields(
            record.created,
            record.levelname,
            record.name,
            record.processName,
            getattr(record, "tracking_id", None),
            f"{record.filename}:{record.lineno}",
            record.funcName,
            format_message(record.msg, record.args),
            None,
            tail or None,
        )
    except Exception as exc:  # a record mangled by a third-party filter
        out = {"level": "ERROR", "name": "service.logs", "message": f"unrenderable log record: {exc!r}"}
        return dumps_line(out)


#: A line the listener renders, as ``line[0](line)``: its renderer first, then the values it needs, every
#: one a value that cannot change after the call (str, numbers, None, tuples of those), so the line is the
#: same whenever it is rendered. Rendering moves off the caller's thread, a batch at a time.
DeferredLine = tuple[Any, ...]


def standard_fields(
    created: float,
    levelname: str,
    name: str,
    process_name: str | None,
    tracking_id: object,
    loc: str | None,
    func: str | None,
    message: str,
    trace: tuple[str, str, str] | None,
) -> dict[str, Any]:
    """The fields every line starts with, in order, and the trace fields when ``trace`` is given. The
    timestamp is inline (RFC 3339 UTC with milliseconds, e.g. ``2026-01-02T03:04:05.678Z``): this runs
    for every line, and each Python call is a visible share of a line's cost."""
    second = int(created)
    cached = _clock.cached
    ms = int((created - second) * 1000)
    stamp = (cached[1] if cached[0] == second else _clock.prefix(second)) + (
        _MILLIS[ms] if 0 <= ms < 1000 else f".{ms:03d}Z"
    )
    out = {
        "@timestamp": stamp,
        "level": levelname,
        "name": name,
        "processName": process_name,
        "tracking_id": tracking_id,
        "loc": loc,
        "func": func,
        "message": message,
    }
    if trace is not None:
        out["trace_id"], out["span_id"], out["trace_flags"] = trace
    return out


def dumps_line(out: dict[str, Any]) -> bytes:
    """``out`` as one JSON line; never raises (values orjson refuses are written as text)."""
    try:
        return orjson.dumps(out, option=_FAST)  # no default= hook on the common path: cheaper
    except TypeError:
        return _dumps_any(out)


def render_fields(
    created: float,
    levelname: str,
    name: str,
    process_name: str | None,
    tracking_id: object,
    loc: str | None,
    func: str | None,
    message: str,
    extra: Mapping[str, object] | None = None,
    fields: Mapping[str, object] | None = None,
) -> bytes:
    """The line ``render`` would make for a record with these attributes, its message already formatted
    and ``extra=`` keys (no exc_info); the caller has checked ``extra`` as ``Logger.makeRecord`` does.
    ``fields``: keys the caller knows are neither record attributes nor reserved (a record's exc_info
    and extras), appended as they are. The trace fields are the current request's."""
    context = request_context_var.get()
    trace = None if context is None else context[1]
    out = standard_fields(created, levelname, name, process_name, tracking_id, loc, func, message, trace)
    if extra:
        for key, value in extra.items():
            if key not in _RECORD_ATTRS:  # as ``_extras`` does for a record's extra attributes
                out[f"extra_{key}" if key in RESERVED_FIELDS else key] = value
    if fields is not None:
        out.update(fields)
    return dumps_line(out)


def render_deferred(line: DeferredLine) -> bytes:
    """The line of a ``DeferredLine``; never raises."""
    try:
        result: bytes = line[0](line)
        return result
    except Exception as exc:  # not expected: render_fields falls back to text for what orjson refuses
        return dumps_line({"level": "ERROR", "name": "service.logs", "message": f"unrenderable log line: {exc!r}"})


def format_message(msg: object, args: Any) -> str:
    """``LogRecord.getMessage``, never raising: a broken message or argument gives a line saying so."""
    try:
        return str(msg) % args if args else (msg if type(msg) is str else str(msg))
    except Exception as exc:
        return _unrenderable(msg, args, exc)


def render_event(level: str, name: str, message: str, *, func: str | None = None, **fields: Any) -> bytes:
    """A line about the process itself, built without a LogRecord: startup errors, the pipeline's own reports.

    Same fields and order as every other line; ``fields`` come after ``message`` (reserved names get
    the ``extra_`` prefix, as ``extra=`` keys do).
    """
    mp = sys.modules.get("multiprocessing")  # imported by every server that names its processes
    return render_fields(
        time.time(),
        level,
        name,
        mp.current_process().name if mp is not None else "MainProcess",
        get_tracking_id(),
        None,
        func,
        message,
        None,
        {f"extra_{key}" if key in RESERVED_FIELDS else key: value for key, value in fields.items()},
    )


def render_line(record: logging.LogRecord) -> str:
    """``render`` as text, without the trailing newline."""
    return render(record)[:-1].decode()


class JsonFormatter(logging.Formatter):
    """A stdlib Formatter producing the bundle's JSON lines, for use with any handler."""

    def format(self, record: logging.LogRecord) -> str:
        return render_line(record)
