"""Cheaper ``LogRecord`` creation for stdlib loggers: the same records, built with less work.

``logger.info("user %s did %s", uid, action)`` spends most of its time before any handler runs:
``findCaller`` walks the stack through a helper per frame, and ``LogRecord.__init__`` computes ~20
attributes through a dozen calls (basename, splitext, getpid, the process and thread lookups).
``FastLogger`` takes the caller's frame directly, caches per-file names and per-process values, and
fills the very same attributes in one dict. Records are ordinary ``LogRecord`` instances, so every
handler, filter and formatter sees exactly what stdlib would have produced.

``extra=`` is applied as ``Logger.makeRecord`` does. Anything unusual — other keyword arguments
(``exc_info``, ``stack_info``, ``stacklevel``), a custom record factory, a replaced ``Logger.makeRecord``,
a call through ``logging.info()`` or a ``LoggerAdapter`` — goes through
``_log_exact``, which mirrors ``Logger._log`` step by step. ``install()`` switches only loggers of the
exact stdlib classes (a user's own Logger subclass is left alone) and only on a Python whose
``LogRecord`` has the attribute set this module fills; ``LOG_FAST_RECORDS=false`` turns it off.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any

from service.context import request_context_var
from service.logs.format import DeferredLine, dumps_line, format_message, render_fields, standard_fields
from service.logs.sinks import report_fault

__all__ = [
    "PROCESS",
    "FastLogger",
    "FastRootLogger",
    "direct_handler",
    "install",
    "installed",
    "process_name",
    "refresh_process",
    "uninstall",
]

_LOGGING_FILE: str = logging._srcfile or ""
_START_RAW: float = getattr(logging, "_startTime", 0.0)
#: When ``logging`` was imported, in seconds: 3.13 keeps it in nanoseconds (an int).
_START: float = _START_RAW / 1e9 if isinstance(_START_RAW, int) else _START_RAW
_LEVEL_NAMES: dict[int, str] = logging._levelToName
#: 3.12 added ``taskName`` (the running asyncio task's name) to every LogRecord.
_TASK_NAME = sys.version_info >= (3, 12)
_EXPECTED_KEYS = (
    *("name", "msg", "args", "levelname", "levelno", "pathname", "filename", "module", "exc_info"),
    *("exc_text", "stack_info", "lineno", "funcName", "created", "msecs", "relativeCreated", "thread"),
    *("threadName", "processName", "process"),
    *(("taskName",) if _TASK_NAME else ()),
)
#: ``extra=`` keys ``Logger.makeRecord`` refuses (KeyError): the record's own attributes.
_RECORD_KEYS = frozenset({*_EXPECTED_KEYS, "message", "asctime"})
_getframe = sys._getframe
_time = time.time
_get_ident = threading.get_ident
_current_thread = threading.current_thread
_new_record = logging.LogRecord.__new__
_DEBUG, _INFO, _WARNING, _ERROR, _CRITICAL = (
    logging.DEBUG,
    logging.INFO,
    logging.WARNING,
    logging.ERROR,
    logging.CRITICAL,
)
#: Methods that, replaced (Sentry patches ``Logger.callHandlers``), make a record observable beyond our handler.
_CALL_HANDLERS = logging.Logger.callHandlers
_MAKE_RECORD = logging.Logger.makeRecord
_LOG_RECORD = logging.LogRecord
#: ``isinstance(x, Mapping)`` is an ABC check; the usual single argument is one of these, never a mapping.
_SCALARS = frozenset({str, int, float})


def _record_factory() -> Callable[..., logging.LogRecord]:
    """``logging.getLogRecordFactory()``, read as a module attribute where it is one (3.11-3.13)."""
    return logging.getLogRecordFactory()


if "_logRecordFactory" in vars(logging):  # 3.11-3.13: read the attribute from C, no Python call per line
    _record_factory = functools.partial(vars(logging).get, "_logRecordFactory")  # type: ignore[assignment]

_names: dict[str, tuple[str, str]] = {}  # pathname -> (filename, module)
_direct_type: type[logging.Handler] | None = None  # see install(direct=...)


class _Process:
    """pid and process name, read once per process (refreshed in forked children). Public as ``PROCESS``."""

    pid = os.getpid()
    name = "MainProcess"

    @classmethod
    def refresh(cls) -> None:
        cls.pid = os.getpid()
        mp = sys.modules.get("multiprocessing")
        try:
            cls.name = mp.current_process().name if mp is not None else "MainProcess"
        except Exception:
            cls.name = "MainProcess"


PROCESS = _Process


def _split(pathname: str) -> tuple[str, str]:
    try:
        filename = os.path.basename(pathname)  # noqa: PTH119 - exactly what LogRecord.__init__ computes
        names = (filename, os.path.splitext(filename)[0])  # noqa: PTH122
    except (TypeError, ValueError, AttributeError):
        names = (pathname, "Unknown module")
    _names[pathname] = names
    return names


def _task_name() -> str | None:
    """``LogRecord.taskName`` as 3.12+ computes it: the current asyncio task's name, else None."""
    if not getattr(logging, "logAsyncioTasks", True):  # 3.12+: the switch stdlib checks
        return None
    asyncio = sys.modules.get("asyncio")
    if asyncio is None or asyncio.events._get_running_loop() is None:  # no loop: no task (and no exception)
        return None
    try:
        task = asyncio.current_task()
        return task.get_name() if task is not None else None
    except Exception:
        return None


def _is_internal(frame: FrameType) -> bool:
    filename = os.path.normcase(frame.f_code.co_filename)
    return filename == _LOGGING_FILE or ("importlib" in filename and "_bootstrap" in filename)


def _caller(frame: FrameType | None, stacklevel: int) -> FrameType | None:
    """The frame ``Logger.findCaller`` would pick, starting from the frame that called the logger."""
    while frame is not None and _is_internal(frame):
        frame = frame.f_back
    while frame is not None and stacklevel > 1:
        back = frame.f_back
        if back is None:
            break
        frame = back
        if not _is_internal(frame):
            stacklevel -= 1
    return frame


def _render_call(line: DeferredLine) -> bytes:
    """A line ``FastLogger`` queued without a record (no ``extra=``), rendered by the listener."""
    _, created, levelname, name, process_name, context, code, lineno, message = line
    pathname = code.co_filename
    loc = f"{(_names.get(pathname) or _split(pathname))[0]}:{lineno}"
    tracking_id, trace = (None, None) if context is None else context
    return dumps_line(standard_fields(created, levelname, name, process_name, tracking_id, loc, code.co_name, message,
                                      trace))  # fmt: skip


def _level_method(level: int, name: str) -> Callable[..., None]:
    """``Logger.info`` and its siblings on FastLogger's paths. The caller of the method is frame 1."""

    def method(self: FastLogger, msg: object, *args: object, **kwargs: Any) -> None:
        # isEnabledFor's answer from its own cache, read here: a Python call less per line.
        enabled = self._cache.get(level) if not self.disabled else False  # type: ignore[attr-defined]
        if enabled or (enabled is None and self.isEnabledFor(level)):
            self._record(level, msg, args, _getframe(1), kwargs)

    method.__name__ = method.__qualname__ = name
    return method


class FastLogger(logging.Logger):
    """A ``logging.Logger`` whose level methods build records without the generic stack walk."""

    def _record(self, level: int, msg: object, args: Any, frame: FrameType, kwargs: dict[str, Any]) -> None:
        """Build (or render directly) the record of a call whose caller is ``frame``."""
        extra = None
        if kwargs:
            if len(kwargs) != 1 or "extra" not in kwargs:  # exc_info, stack_info, stacklevel: stdlib's way
                self._log_exact(level, msg, args, frame, **kwargs)
                return
            extra = kwargs["extra"]
        code = frame.f_code
        pathname = code.co_filename
        if (
            pathname == _LOGGING_FILE
            or type(self).makeRecord is not _MAKE_RECORD
            or _record_factory() is not _LOG_RECORD
        ):
            self._log_exact(level, msg, args, frame, extra=extra)
            return
        if args and len(args) == 1 and type(args[0]) not in _SCALARS and isinstance(args[0], Mapping) and args[0]:
            args = args[0]
        handler = self._direct_route(level)
        if handler is not None:  # nobody but the bundle's handler would see the record: skip it
            context = request_context_var.get()
            if type(msg) is str and args:  # format_message's common case, inline
                try:
                    message = msg % args
                except Exception:
                    message = format_message(msg, args)
            else:
                message = format_message(msg, args)
            if extra is None:
                # Nothing here can change before the listener renders it (the message is formatted now):
                # the listener thread renders the line, a batch at a time.
                handler.pipeline.submit(
                    (
                        _render_call,
                        _time(),
                        _LEVEL_NAMES.get(level) or logging.getLevelName(level),
                        self.name,
                        _Process.name,
                        context,
                        code,  # the listener reads the file and function names from it
                        frame.f_lineno,
                        message,
                    )
                )
                return
            for key in extra:  # as Logger.makeRecord checks it
                if key in _RECORD_KEYS:
                    raise KeyError(f"Attempt to overwrite {key!r} in LogRecord")
            # extra= values may be mutable: rendered now, as a record's would be by our handler.
            names = _names.get(pathname) or _split(pathname)
            handler.pipeline.submit(
                render_fields(
                    _time(),
                    _LEVEL_NAMES.get(level) or logging.getLevelName(level),
                    self.name,
                    _Process.name,
                    # an explicit extra={"tracking_id": ...} wins, as on a record
                    extra["tracking_id"] if "tracking_id" in extra else None if context is None else context[0],
                    f"{names[0]}:{frame.f_lineno}",
                    code.co_name,
                    message,
                    extra,
                )
            )
            return
        names = _names.get(pathname) or _split(pathname)
        created = _time()
        record = _new_record(logging.LogRecord)
        record.__dict__ = attrs = {
            "name": self.name,
            "msg": msg,
            "args": args,
            "levelname": _LEVEL_NAMES.get(level) or logging.getLevelName(level),
            "levelno": level,
            "pathname": pathname,
            "filename": names[0],
            "module": names[1],
            "exc_info": None,
            "exc_text": None,
            "stack_info": None,
            "lineno": frame.f_lineno,
            "funcName": code.co_name,
            "created": created,
            "msecs": int((created - int(created)) * 1000) + 0.0,
            "relativeCreated": (created - _START) * 1000,
            "thread": _get_ident(),
            "threadName": _current_thread().name,
            "processName": _Process.name,
            "process": _Process.pid,
        }
        if _TASK_NAME:
            attrs["taskName"] = _task_name()
        if extra is not None:  # as Logger.makeRecord does it
            for key in extra:
                if key in ("message", "asctime") or key in attrs:
                    raise KeyError(f"Attempt to overwrite {key!r} in LogRecord")
                attrs[key] = extra[key]
        self.handle(record)

    def _direct_route(self, level: int) -> Any:
        """The bundle's root handler, if it is the only handler this record would reach and no filter
        (on a logger or on it) could see the record; else None. Mirrors ``Logger.callHandlers``, and
        says None when ``callHandlers`` or ``handle`` was replaced (Sentry patches them): then only a
        real record reaches what the patch expects."""
        cls = type(self)
        direct = _direct_type
        if self.disabled or direct is None or cls.callHandlers is not _CALL_HANDLERS or cls.handle is not _HANDLE:
            return None
        found = None
        logger: logging.Logger | None = self
        while logger is not None:
            if logger.filters:
                return None
            handlers = logger.handlers
            if handlers:  # most loggers have none: no iterator for them
                for handler in handlers:
                    if found is not None or type(handler) is not direct:
                        return None
                    found = handler
            logger = logger.parent if logger.propagate else None
        if found is None or found.filters or level < found.level:
            return None
        return found

    def _log_exact(
        self,
        level: int,
        msg: object,
        args: Any,
        frame: FrameType | None,
        exc_info: Any = None,
        extra: Mapping[str, object] | None = None,
        stack_info: bool = False,
        stacklevel: int = 1,
    ) -> None:
        """``Logger._log`` with the caller found from ``frame`` (the frame that called the logger)."""
        found = _caller(frame, stacklevel)
        sinfo = None
        if found is None:
            fn, lno, func = "(unknown file)", 0, "(unknown function)"
        else:
            fn, lno, func = found.f_code.co_filename, found.f_lineno, found.f_code.co_name
            if stack_info:
                with io.StringIO() as sio:
                    sio.write("Stack (most recent call last):\n")
                    traceback.print_stack(found, file=sio)
                    sinfo = sio.getvalue().removesuffix("\n")
        if exc_info:
            if isinstance(exc_info, BaseException):
                exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
            elif not isinstance(exc_info, tuple):
                exc_info = sys.exc_info()
        record = self.makeRecord(self.name, level, fn, lno, msg, args, exc_info, func, extra, sinfo)
        self.handle(record)

    debug = _level_method(_DEBUG, "debug")
    info = _level_method(_INFO, "info")
    warning = _level_method(_WARNING, "warning")
    error = _level_method(_ERROR, "error")
    critical = _level_method(_CRITICAL, "critical")
    fatal = critical

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if not isinstance(level, int):
            if logging.raiseExceptions:
                raise TypeError("level must be an integer")
            return
        if self.isEnabledFor(level):
            self._record(level, msg, args, _getframe(1), kwargs)

    def handle(self, record: logging.LogRecord) -> None:
        """``Logger.handle``, without calling ``filter`` when the logger has no filters."""
        if not self.disabled and (not self.filters or self.filter(record)):
            self.callHandlers(record)


_HANDLE = FastLogger.handle


def direct_handler(logger: logging.Logger, level: int) -> Any:
    """The bundle's handler when a line of ``logger`` at ``level`` (enabled) would reach it alone, so
    that it may be rendered without a record, exactly as ``FastLogger`` does; else None."""
    if (
        not isinstance(logger, FastLogger)
        or type(logger).makeRecord is not _MAKE_RECORD
        or _record_factory() is not _LOG_RECORD
    ):
        return None
    return logger._direct_route(level)


def process_name() -> str:
    """``processName`` as FastLogger fills it (read ``PROCESS.name`` where a call is too much)."""
    return _Process.name


class FastRootLogger(FastLogger, logging.RootLogger):
    """The root logger with FastLogger's methods."""


def _usable() -> bool:
    keys = tuple(logging.LogRecord("", 0, "", 0, "", None, None).__dict__)
    return (
        keys == _EXPECTED_KEYS
        and bool(_LOGGING_FILE)
        and logging.logThreads
        and logging.logProcesses
        and logging.logMultiprocessing
    )


_said_off = False


def _say_off() -> None:
    """Once per process: one JSON line on stderr saying the fast records are off, and why."""
    global _said_off
    if _said_off:
        return
    _said_off = True
    report_fault(
        "fast records off: this Python's LogRecord differs from the one FastLogger fills; stdlib builds them",
        python=sys.version.split()[0],
    )


def installed() -> bool:
    return type(logging.getLogger()) is FastRootLogger


def install(direct: type[logging.Handler] | None = None) -> bool:
    """Switch the root and every stdlib-class logger (existing and future) to the fast methods.

    ``direct``: a handler class whose instances have ``pipeline.submit(line)``; when a record would reach
    only one such handler, no filter and no replaced ``Logger`` method could see it, the line is rendered
    straight from the call, without a LogRecord.
    """
    global _direct_type
    if not _usable():
        _say_off()
        return False
    _direct_type = direct
    _Process.refresh()
    _watch_multiprocessing()
    with _logging_lock():
        if logging.getLoggerClass() is logging.Logger:
            logging.setLoggerClass(FastLogger)
        for logger in list(logging.Logger.manager.loggerDict.values()):
            if type(logger) is logging.Logger:
                logger.__class__ = FastLogger
        root = logging.getLogger()
        if type(root) is logging.RootLogger:
            root.__class__ = FastRootLogger
    return installed()


def uninstall() -> None:
    """Back to stdlib's classes."""
    global _direct_type
    _direct_type = None
    with _logging_lock():
        if logging.getLoggerClass() is FastLogger:
            logging.setLoggerClass(logging.Logger)
        for logger in list(logging.Logger.manager.loggerDict.values()):
            if type(logger) is FastLogger:
                logger.__class__ = logging.Logger  # type: ignore[assignment]
        root = logging.getLogger()
        if type(root) is FastRootLogger:
            root.__class__ = logging.RootLogger  # type: ignore[assignment]


def _logging_lock() -> contextlib.AbstractContextManager[object]:
    """logging's module lock (``logging._lock`` on 3.11-3.13; 3.13 removed ``_acquireLock``)."""
    lock = getattr(logging, "_lock", None)
    return lock if lock is not None else contextlib.nullcontext()


def refresh_process() -> None:
    """Read the pid and process name again (a server renamed its forked worker)."""
    _Process.refresh()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_Process.refresh)


def _refresh_after_mp_fork(cls: type[_Process]) -> None:
    cls.refresh()


def _watch_multiprocessing() -> None:
    """multiprocessing names a forked child (``ForkProcess-1``) only after the fork: refresh then too."""
    if "multiprocessing" in sys.modules:
        import multiprocessing.util

        multiprocessing.util.register_after_fork(_Process, _refresh_after_mp_fork)
