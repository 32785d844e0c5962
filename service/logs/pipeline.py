"""Caller-side capture, bounded batched hand-off, the listener thread, draining, and logger routing.

Caller side (any thread, inside the request's context): attach the tracking ID, render the JSON line
with orjson, append it to the queue. Listener thread: one write per batch per sink, so a slow or
stalled stdout never blocks the caller (until the bounded queue is full: then LOG_OVERFLOW decides).
After ``drain()`` (lifespan shutdown, SIGTERM path, interpreter exit) records are written
synchronously, so lines logged during the last moments of the process are never stranded.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import time
import warnings
from collections.abc import Sequence
from types import TracebackType
from typing import IO, Any, cast

from service.context import tracking_id_var
from service.logs import fastlog
from service.logs.format import render
from service.logs.observer import PipelineObserver
from service.logs.queue import BatchQueue
from service.logs.sinks import Sink, StreamSink, report_fault
from service.settings import LogSettings, load_settings

__all__ = ["Pipeline", "QueueLogHandler", "current_pipeline", "setup_logging", "shutdown_logging"]

#: Loggers whose own handlers are removed so their records reach the root handler (and only it).
ROUTED_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.asgi", "fastapi", "starlette", "asyncio")
#: Seconds the awake listener lets a batch build up: a web server's few lines per request then cost one
#: thread hand-off per batch instead of several context switches per line. Cut short when ~1k lines
#: are queued, by ``flush()`` and by ``drain()``.
LINGER = 0.005
#: uvicorn's plain access line is replaced by the middleware's JSON access line.
SILENCED_LOGGERS = ("uvicorn.access",)


class _Barrier:
    __slots__ = ("event",)

    def __init__(self) -> None:
        self.event = threading.Event()


class Pipeline:
    """One process's queue, listener thread and sinks."""

    def __init__(self, settings: LogSettings, sinks: Sequence[Sink]) -> None:
        self.settings = settings
        self.sinks = list(sinks)
        self.queue: BatchQueue[bytes | _Barrier] = BatchQueue(settings.queue_size, settings.overflow)
        self._write_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._running = False
        self._stopping = False
        self._reported_drops = 0
        self._last_drop_report = time.monotonic()
        self.observer: PipelineObserver | None = None  # pipeline health, told once per batch (service.metrics)
        self._observed_drops = 0

    # -- caller side -------------------------------------------------------------------------
    def submit(self, line: bytes) -> None:
        """Hand one rendered line to the listener (or, after ``drain``, write it at once)."""
        if self._running:
            self.queue.put(line)
        else:
            self._write_now([line])

    # -- listener side ----------------------------------------------------------------------
    def start(self) -> None:
        if self._running:
            return
        self._stopping = False
        self._running = True
        self._thread = threading.Thread(target=self._run, name="log-listener", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        queue = self.queue
        interval = self.settings.drop_report_interval
        while True:
            queue.wait(interval if queue.drop else None)
            if not self._stopping:
                queue.linger(LINGER)
            batch = queue.take()
            if batch:
                self._write(batch)
            if queue.dropped != self._reported_drops:
                self._report_drops(force=False)
            if queue.dropped != self._observed_drops:
                self._observe_drops()
            if self._stopping and not len(queue):
                return

    def _write(self, batch: list[bytes | _Barrier]) -> None:
        try:  # the common batch is lines only: one join in C, no loop over the items
            data = b"".join(batch)  # type: ignore[arg-type]
        except TypeError:  # a flush barrier is in the batch
            pass
        else:
            self._send(data, cast("list[bytes]", batch))  # no barrier: lines only
            return
        lines: list[bytes] = []
        for item in batch:
            if type(item) is bytes:
                lines.append(item)
            else:  # a flush barrier: everything before it is written first
                self._emit(lines)
                lines = []
                item.event.set()  # type: ignore[union-attr]
        self._emit(lines)

    def _emit(self, lines: list[bytes]) -> None:
        if lines:
            self._send(b"".join(lines), lines)

    def _send(self, data: bytes, lines: list[bytes]) -> None:
        if not data:
            return
        with self._write_lock:
            observer = self.observer
            if observer is None:
                for sink in self.sinks:
                    sink.write(data)
                return
            start = time.perf_counter()
            failed = 0
            for sink in self.sinks:
                if not sink.write(data):
                    failed += 1
                    observer.write_failed(sink.name, len(lines))
            seconds = time.perf_counter() - start
            if failed == len(self.sinks):
                observer.lines_dropped("write_error", len(lines))
            observer.batch_written(lines, seconds, len(self.queue), self.queue.maxsize)

    def _observe_drops(self) -> None:
        dropped = self.queue.dropped
        if self.observer is not None and dropped > self._observed_drops:
            self.observer.lines_dropped("queue_full", dropped - self._observed_drops)
        self._observed_drops = dropped

    def _write_now(self, lines: list[bytes]) -> None:
        leftovers = self.queue.take()  # anything a racing producer queued after the listener stopped
        self._write([*leftovers, *lines])

    def _report_drops(self, *, force: bool) -> None:
        now = time.monotonic()
        dropped = self.queue.dropped
        if dropped == self._reported_drops or (
            not force and now - self._last_drop_report < self.settings.drop_report_interval
        ):
            return
        record = logging.LogRecord(
            "service.logs", logging.WARNING, __file__, 0,
            "log queue full (LOG_OVERFLOW=drop): dropped %d records since the last report", (
                dropped - self._reported_drops,), None, func="listener",
        )  # fmt: skip
        record.tracking_id = None
        record.dropped = dropped - self._reported_drops
        record.dropped_total = dropped
        self._reported_drops = dropped
        self._last_drop_report = now
        self._emit([render(record)])

    # -- control ----------------------------------------------------------------------------
    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued before this call is written. False on timeout."""
        if not self._running:
            return True
        barrier = _Barrier()
        self.queue.put(barrier)
        self.queue.hurry()
        return barrier.event.wait(timeout)

    def drain(self, timeout: float = 10.0) -> None:
        """Write everything queued, stop the listener; later records are written synchronously."""
        if not self._running:
            return
        self._stopping = True
        self._running = False
        self.queue.wake()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self.queue.close()
        self._write_now([])
        self._observe_drops()
        self._report_drops(force=True)

    def close(self) -> None:
        self.drain()
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:
                report_fault(f"closing {sink!r} failed: {exc!r}")

    def restart_after_fork(self) -> None:
        """In a forked child the listener thread does not exist: give the child its own."""
        self._write_lock = threading.Lock()
        self._running = False
        self.resume()

    def resume(self) -> None:
        """Start a fresh listener after ``drain()`` (a new lifespan in the same process, a forked child)."""
        if self._running:
            return
        self.queue = BatchQueue(self.settings.queue_size, self.settings.overflow)
        self._reported_drops = 0
        self._observed_drops = 0
        self.start()


class QueueLogHandler(logging.Handler):
    """The root handler: attach the tracking ID, render the line, hand it to the listener. No handler lock.

    Rendering happens here, on the caller's thread, while the record is still in the CPU cache: measured,
    a record rendered later on the listener costs ~3x as much (thousands of queued records evict each
    other), and under the GIL the listener's work competes with the event loop anyway. What the queue
    keeps off the caller is the I/O: a slow or stalled stdout blocks only the listener.
    """

    def __init__(self, pipeline: Pipeline) -> None:
        super().__init__()
        self.pipeline = pipeline

    def handle(self, record: logging.LogRecord) -> bool:
        if self.filters and not self.filter(record):
            return False
        if "tracking_id" not in record.__dict__:  # an explicit extra={"tracking_id": ...} wins
            record.tracking_id = tracking_id_var.get()
        line = render(record)  # never raises; the message and its arguments are rendered now
        pipeline = self.pipeline
        if pipeline._running:  # Pipeline.submit, inlined
            pipeline.queue.put(line)
        else:
            pipeline.submit(line)
        return True

    def submit_line(self, line: bytes) -> None:
        """A line FastLogger rendered straight from the call (this handler was its only destination).

        Kept apart from ``handle`` on purpose: the tests tell the two routes apart by this entry point.
        """
        pipeline = self.pipeline
        if pipeline._running:
            pipeline.queue.put(line)
        else:
            pipeline.submit(line)

    def emit(self, record: logging.LogRecord) -> None:
        self.handle(record)


_current: Pipeline | None = None
_setup_lock = threading.RLock()
_hooks_installed = False


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


#: Loggers kept at WARNING unless their level was set: under ``uvicorn --reload`` with stdout written
#: into the watched directory, watchfiles' INFO "1 change detected" line would trigger itself forever.
QUIET_LOGGERS = ("watchfiles",)


def _route_loggers() -> None:
    for name in QUIET_LOGGERS:
        quiet = logging.getLogger(name)
        if quiet.level == logging.NOTSET:
            quiet.setLevel(logging.WARNING)
    for name in ROUTED_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
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
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, tb)
        return
    logging.getLogger("service").critical("uncaught exception", exc_info=(exc_type, exc, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit or args.exc_value is None:
        return
    name = args.thread.name if args.thread is not None else "?"
    logging.getLogger("service").error(
        "uncaught exception in thread %s", name, exc_info=(args.exc_type, args.exc_value, args.exc_traceback)
    )


def _install_process_hooks() -> None:
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread
    atexit.register(shutdown_logging)
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork)


def _after_fork() -> None:
    if _current is not None and _current._running:
        _current.restart_after_fork()


def setup_logging(settings: LogSettings | None = None, *, stream: IO[Any] | None = None, **overrides: Any) -> Pipeline:
    """Route every logger of the process through one JSON pipeline. Idempotent.

    Settings come from ``LOG_*`` environment variables; keyword arguments override them
    (``setup_logging(level="DEBUG")``). A second call with the same settings returns the running
    pipeline; with other settings it drains the old one and replaces it. Raises SettingsError.
    """
    global _current
    if settings is None:
        settings = load_settings(**overrides)
    with _setup_lock:
        if _current is not None and _current._running and _current.settings == settings and stream is None:
            return _current
        sinks = _build_sinks(settings, stream)
        previous = _current
        pipeline = Pipeline(settings, sinks)
        if settings.metrics:  # lazy: None without prometheus_client, and nothing else is imported
            from service.metrics.observer import pipeline_observer

            pipeline.observer = pipeline_observer(len(pipeline.sinks))
        pipeline.start()
        root = logging.getLogger()
        for handler in list(root.handlers):  # we own the root: no plain-text handler may stay
            root.removeHandler(handler)
        root.addHandler(QueueLogHandler(pipeline))
        root.setLevel(settings.level)
        _current = pipeline
        if previous is not None:
            previous.close()
        _route_loggers()
        if settings.fast_records:
            fastlog.install(direct=QueueLogHandler)
        else:
            fastlog.uninstall()
        _capture_warnings()
        _install_process_hooks()
        return pipeline


def drain_logging() -> None:
    """Write everything queued now; records logged afterwards are written synchronously."""
    pipeline = _current
    if pipeline is not None:
        pipeline.drain()


def resume_logging() -> None:
    """Undo ``drain_logging``: queue records again on a fresh listener thread."""
    pipeline = _current
    if pipeline is not None:
        pipeline.resume()


def shutdown_logging() -> None:
    """Drain the queue, stop the listener, close sinks and detach from the root logger."""
    global _current
    with _setup_lock:
        pipeline = _current
        if pipeline is None:
            return
        pipeline.close()
        fastlog.uninstall()
        root = logging.getLogger()
        for handler in list(root.handlers):
            if isinstance(handler, QueueLogHandler) and handler.pipeline is pipeline:
                root.removeHandler(handler)
        _current = None
