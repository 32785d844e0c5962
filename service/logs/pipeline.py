"""Route every logger of the process through one JSON pipeline: the root handler, which handlers may stay,
uvicorn's and gunicorn's loggers, warnings, uncaught exceptions, fork and exit.

Caller side (any thread, inside the request's context): attach the tracking ID, render the JSON line with
orjson, hand it to the process's ``Pipeline`` (service.logs.listener), which writes batches on its own thread.

Handlers ``setup_logging`` removes (on the root and on the routed loggers): ``logging.StreamHandler``
instances, subclasses included, whose stream is the process's stdout or stderr, since they would print plain
text there. Every other handler stays and keeps receiving records: files, pytest's ``caplog``, OpenTelemetry's
``LoggingHandler``, Sentry's, a handler writing to a StringIO.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import warnings
from types import TracebackType
from typing import IO, Any

from service.context import get_tracking_id
from service.logs import fastlog
from service.logs.format import render
from service.logs.listener import Pipeline, State
from service.logs.sinks import Sink, StreamSink
from service.settings import LogSettings, load_settings

__all__ = ["Pipeline", "QueueLogHandler", "State", "current_pipeline", "setup_logging", "shutdown_logging"]

#: Loggers whose stdout/stderr handlers are removed and whose records propagate to the root handler.
ROUTED_LOGGERS = (
    *("uvicorn", "uvicorn.error", "uvicorn.asgi", "fastapi", "starlette", "asyncio"),
    *("gunicorn", "gunicorn.error", "gunicorn.access"),
)
#: uvicorn's plain access line is replaced by the middleware's JSON access line.
SILENCED_LOGGERS = ("uvicorn.access",)


class QueueLogHandler(logging.Handler):
    """The root handler: attach the tracking ID, render the line, hand it to the pipeline. No handler lock.

    Rendering happens here, on the caller's thread, while the record is still in the CPU cache; under the
    GIL the listener's work competes with the event loop anyway. What the queue keeps off the caller is the
    I/O: a slow or stalled stdout blocks only the listener.
    """

    def __init__(self, pipeline: Pipeline) -> None:
        super().__init__()
        self.pipeline = pipeline

    def handle(self, record: logging.LogRecord) -> bool:
        if self.filters and not self.filter(record):
            return False
        if "tracking_id" not in record.__dict__:  # an explicit extra={"tracking_id": ...} wins
            record.tracking_id = get_tracking_id()
        self.pipeline.submit(render(record))  # render never raises; the arguments are rendered now
        return True

    def emit(self, record: logging.LogRecord) -> None:
        self.handle(record)


_current: Pipeline | None = None
_setup_lock = threading.RLock()
_process_hooks_registered = False
_saved_excepthook: Any = None  # the hooks ours replaced, put back by shutdown_logging
_saved_threading_excepthook: Any = None


def current_pipeline() -> Pipeline | None:
    """The active pipeline of this process, if ``setup_logging`` ran."""
    return _current


def _build_sinks(settings: LogSettings, stream: IO[Any] | None) -> list[Sink]:
    sinks: list[Sink] = []
    if settings.mode in ("stdout", "both"):
        sinks.append(StreamSink(stream))
    if settings.mode in ("file", "both"):
        from service.logs.files import FileSink  # only file mode pays for it

        sinks.append(FileSink.from_settings(settings))
    return sinks


def _prints_plain_text(handler: logging.Handler) -> bool:
    """True for a handler that writes formatted text to this process's stdout or stderr."""
    if not isinstance(handler, logging.StreamHandler) or isinstance(handler, logging.FileHandler):
        return False
    stream = getattr(handler, "stream", None)
    return stream is not None and any(
        stream is s for s in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__) if s is not None
    )


def _remove_plain_handlers(logger: logging.Logger) -> None:
    for handler in list(logger.handlers):
        if _prints_plain_text(handler):
            logger.removeHandler(handler)


#: Loggers kept at WARNING unless their level was set: under ``uvicorn --reload`` with stdout written
#: into the watched directory, watchfiles' INFO "1 change detected" line would trigger itself forever.
QUIET_LOGGERS = ("watchfiles",)


def _route_loggers(pipeline: Pipeline) -> None:
    """Plain-text handlers off the routed loggers; records reach the bundle's handler exactly once.

    A logger that carries a bundle handler itself (gunicorn.error, and uvicorn.error, which gunicorn's
    uvicorn worker gives gunicorn.error's handlers) keeps it, pointed at ``pipeline``, and does not
    propagate; every other routed logger propagates to the root handler.
    """
    for name in QUIET_LOGGERS:
        quiet = logging.getLogger(name)
        if quiet.level == logging.NOTSET:
            quiet.setLevel(logging.WARNING)
    for name in ROUTED_LOGGERS:
        logger = logging.getLogger(name)
        ours = False
        for handler in list(logger.handlers):
            if _prints_plain_text(handler):
                logger.removeHandler(handler)
            elif isinstance(handler, QueueLogHandler):
                handler.pipeline = pipeline
                ours = True
        logger.propagate = not ours
        logger.disabled = False
        logger.setLevel(logging.NOTSET)
    for name in SILENCED_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = False  # no handlers + no propagation: uvicorn skips its access line entirely


def _capture_warnings() -> None:
    """``logging.captureWarnings(True)``, re-applied if something (a test runner) replaced showwarning since."""
    if getattr(warnings.showwarning, "__module__", "") != "logging":
        logging._warnings_showwarning = None  # type: ignore[attr-defined]  # else captureWarnings is a no-op
        logging.captureWarnings(True)


def _log_uncaught(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    if not issubclass(exc_type, KeyboardInterrupt):
        logging.getLogger("service").critical("uncaught exception", exc_info=(exc_type, exc, tb))
    previous = _saved_excepthook
    if issubclass(exc_type, KeyboardInterrupt) or (previous is not None and previous is not sys.__excepthook__):
        (previous or sys.__excepthook__)(exc_type, exc, tb)  # chained: Sentry's and the like see it too


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit or args.exc_value is None:
        return
    name = args.thread.name if args.thread is not None else "?"
    logging.getLogger("service").error(
        "uncaught exception in thread %s", name, exc_info=(args.exc_type, args.exc_value, args.exc_traceback)
    )
    previous = _saved_threading_excepthook
    if previous is not None and previous is not threading.__excepthook__:
        previous(args)


def _install_exception_hooks() -> None:
    global _saved_excepthook, _saved_threading_excepthook
    if sys.excepthook is not _log_uncaught:
        _saved_excepthook = sys.excepthook
        sys.excepthook = _log_uncaught
    if threading.excepthook is not _log_uncaught_in_thread:
        _saved_threading_excepthook = threading.excepthook
        threading.excepthook = _log_uncaught_in_thread


def _restore_exception_hooks() -> None:
    global _saved_excepthook, _saved_threading_excepthook
    if sys.excepthook is _log_uncaught:
        sys.excepthook = _saved_excepthook or sys.__excepthook__
    if threading.excepthook is _log_uncaught_in_thread:
        threading.excepthook = _saved_threading_excepthook or threading.__excepthook__
    _saved_excepthook = _saved_threading_excepthook = None


def _register_process_hooks() -> None:
    global _process_hooks_registered
    if _process_hooks_registered:
        return
    _process_hooks_registered = True
    atexit.register(shutdown_logging)
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork)


def _after_fork() -> None:
    """A forked child (gunicorn --preload, os.fork): its own listener; nothing of the parent's queue."""
    if _current is not None:
        _current.after_fork_in_child()


def _attach(pipeline: Pipeline) -> None:
    """Make ``pipeline``'s handler the root's only bundle handler, drop plain-text handlers, route loggers."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if (isinstance(handler, QueueLogHandler) and handler.pipeline is not pipeline) or _prints_plain_text(handler):
            root.removeHandler(handler)
    if not any(isinstance(h, QueueLogHandler) for h in root.handlers):
        root.addHandler(QueueLogHandler(pipeline))
    root.setLevel(pipeline.settings.level)
    _route_loggers(pipeline)
    _capture_warnings()
    _install_exception_hooks()


def setup_logging(settings: LogSettings | None = None, *, stream: IO[Any] | None = None, **overrides: Any) -> Pipeline:
    """Route every logger of the process through one JSON pipeline. Safe to call again.

    Settings come from ``LOG_*`` environment variables; keyword arguments override them
    (``setup_logging(level="DEBUG")``). A second call with the same settings keeps the running pipeline and
    routes again whatever was re-configured since (a server that re-attached its handlers); with other
    settings it drains the old pipeline and replaces it. Raises SettingsError.
    """
    global _current
    if settings is None:
        settings = load_settings(**overrides)
    with _setup_lock:
        current = _current
        if current is not None and current.state is State.RUNNING and current.settings == settings and stream is None:
            _attach(current)
            return current
        pipeline = Pipeline(settings, _build_sinks(settings, stream))
        if settings.metrics:  # lazy: None without prometheus_client
            from service.metrics.observer import pipeline_observer

            pipeline.observer = pipeline_observer(len(pipeline.sinks))
        pipeline.start()
        _current = pipeline
        _attach(pipeline)
        if current is not None:
            current.close()
        if settings.fast_records:
            fastlog.install(direct=QueueLogHandler)
        else:
            fastlog.uninstall()
        _register_process_hooks()
        return pipeline


def drain_logging(timeout: float | None = None) -> int:
    """Write everything queued now (within LOG_SHUTDOWN_TIMEOUT); later records are written synchronously.

    Returns the number of lines given up because the output stayed stalled past the bound.
    """
    pipeline = _current
    return pipeline.drain(timeout) if pipeline is not None else 0


def resume_logging() -> None:
    """Undo ``drain_logging``: queue records again on a fresh listener thread."""
    pipeline = _current
    if pipeline is not None:
        pipeline.resume()


def shutdown_logging() -> None:
    """Drain the queue, stop the listener, close sinks, detach from the root logger, restore the hooks."""
    global _current
    with _setup_lock:
        pipeline = _current
        if pipeline is None:
            return
        _current = None
        pipeline.close()
        fastlog.uninstall()
        root = logging.getLogger()
        for handler in list(root.handlers):
            if isinstance(handler, QueueLogHandler) and handler.pipeline is pipeline:
                root.removeHandler(handler)
        _restore_exception_hooks()
