"""Part 1 variants: each sets up its library the documented way and logs ``n`` records to ``path``.

``run_<variant>(path, n, warm)`` logs ``warm`` warm-up records, waits until they are written, then
times ``n`` calls of ``log.info("user %s did %s", i, "x")`` (the caller-side loop) and the wait until
the last line is written and flushed (end to end). The tracking ID is set in a ContextVar first.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import queue
import sys
import time
from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import orjson

from bench.common import PART1_ID

Timing = dict[str, float]


def _timed(loop: Callable[[], None], finish: Callable[[], object]) -> Timing:
    """Caller-side wall time of ``loop``; wall and process CPU time of ``loop`` + ``finish``."""
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    loop()
    t1 = time.perf_counter()
    finish()
    t2 = time.perf_counter()
    cpu2 = time.process_time()
    return {"caller_s": t1 - t0, "e2e_s": t2 - t0, "cpu_s": cpu2 - cpu0}


def run_bundle(path: Path, n: int, warm: int) -> Timing:
    """This project: ``setup_logging(stream=...)``, the ID in its ContextVar."""
    import service.context
    from service.logs.pipeline import setup_logging, shutdown_logging

    stream = path.open("w")
    pipeline = setup_logging(stream=stream)
    if hasattr(service.context, "request_context_var"):
        service.context.request_context_var.set((PART1_ID, None))
    else:  # a tree from before one variable held the ID and the trace (--before REV)
        service.context.tracking_id_var.set(PART1_ID)  # type: ignore[attr-defined]
    log = logging.getLogger("bench")
    for i in range(warm):
        log.info("warm-up %s", i)
    pipeline.flush(60)

    def loop() -> None:
        for i in range(n):
            log.info("user %s did %s", i, "x")

    timing = _timed(loop, lambda: pipeline.flush(600))
    shutdown_logging()
    stream.close()
    return timing


_PJL_FIELDS = "{levelname}{name}{processName}{tracking_id}{filename}{lineno}{funcName}{message}"
_pjl_var: ContextVar[str | None] = ContextVar("pjl_tracking_id", default=None)


class _ContextFilter(logging.Filter):
    """What users write (and asgi-correlation-id ships): copy the ContextVar onto the record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.tracking_id = _pjl_var.get()
        return True


def _stdlib_queue_run(
    path: Path, n: int, warm: int, formatter: logging.Formatter, log_filter: logging.Filter, var: ContextVar[str | None]
) -> Timing:
    """``log_filter`` -> QueueHandler(unbounded queue.Queue) -> QueueListener -> StreamHandler(formatter)."""
    stream = path.open("w")
    records: queue.Queue[logging.LogRecord] = queue.Queue()
    queue_handler = logging.handlers.QueueHandler(records)
    queue_handler.addFilter(log_filter)
    stream_handler = logging.StreamHandler(stream)
    stream_handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [queue_handler]
    root.setLevel(logging.INFO)
    var.set(PART1_ID)
    log = logging.getLogger("bench")

    listener = logging.handlers.QueueListener(records, stream_handler)
    listener.start()
    for i in range(warm):
        log.info("warm-up %s", i)
    listener.stop()  # the only documented way to wait for the queue to be written
    listener.start()

    def loop() -> None:
        for i in range(n):
            log.info("user %s did %s", i, "x")

    timing = _timed(loop, listener.stop)
    stream.close()
    return timing


def run_original(path: Path, n: int, warm: int) -> Timing:
    """The original design (bench/peers/original.py): Filter, QueueHandler, QueueListener, json.dumps."""
    from bench.peers.original import JsonFormatter, TrackingIdFilter, tracking_id_var

    return _stdlib_queue_run(path, n, warm, JsonFormatter(), TrackingIdFilter(), tracking_id_var)


def run_pjl_json(path: Path, n: int, warm: int) -> Timing:
    """python-json-logger's JsonFormatter (stdlib json) behind a QueueHandler, as its docs suggest."""
    from pythonjsonlogger.json import JsonFormatter

    return _stdlib_queue_run(
        path, n, warm, JsonFormatter(_PJL_FIELDS, style="{", timestamp=True), _ContextFilter(), _pjl_var
    )


def run_pjl_orjson(path: Path, n: int, warm: int) -> Timing:
    """python-json-logger's OrjsonFormatter behind a QueueHandler."""
    from pythonjsonlogger.orjson import OrjsonFormatter

    return _stdlib_queue_run(
        path, n, warm, OrjsonFormatter(_PJL_FIELDS, style="{", timestamp=True), _ContextFilter(), _pjl_var
    )


def run_structlog(path: Path, n: int, warm: int) -> Timing:
    """structlog's documented fast setup: merge_contextvars, orjson, BytesLoggerFactory (synchronous)."""
    import structlog

    from bench.peers.structlog_stack import setup_logging

    stream = path.open("wb")
    setup_logging(stream)
    structlog.contextvars.bind_contextvars(tracking_id=PART1_ID)
    log = structlog.get_logger("bench")
    for i in range(warm):
        log.info("warm-up %s", i)

    def loop() -> None:
        for i in range(n):
            log.info("user %s did %s", i, "x")

    timing = _timed(loop, stream.flush)  # BytesLogger already flushes every line
    stream.close()
    return timing


def run_loguru(path: Path, n: int, warm: int) -> Timing:
    """loguru with ``serialize=True, enqueue=True``; the ID via ``logger.contextualize``."""
    from loguru import logger

    logger.remove()
    handler = logger.add(str(path), serialize=True, enqueue=True, level="INFO")
    with logger.contextualize(tracking_id=PART1_ID):
        for i in range(warm):
            logger.info("warm-up {}", i)
        logger.complete()

        def loop() -> None:
            for i in range(n):
                logger.info("user {} did {}", i, "x")

        def finish() -> None:
            logger.complete()  # waits for the enqueued messages
            logger.remove(handler)  # flushes and closes the file

        return _timed(loop, finish)


_floor_var: ContextVar[str | None] = ContextVar("floor_tracking_id", default=None)


class FloorLogger:
    """The floor: no framework. The same fields as the bundle, a dict, ``orjson.dumps``, a buffered write."""

    def __init__(self, name: str, stream: Any) -> None:
        self.name = name
        self._write = stream.write
        self._second = -1
        self._prefix = ""
        self._process = "MainProcess"

    def info(self, msg: str, *args: object) -> None:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        frame = sys._getframe(1)
        code = frame.f_code
        record = {
            "@timestamp": f"{self._prefix}.{int((now - second) * 1000):03d}Z",
            "level": "INFO",
            "name": self.name,
            "processName": self._process,
            "tracking_id": _floor_var.get(),
            "loc": f"{code.co_filename.rpartition('/')[2]}:{frame.f_lineno}",
            "func": code.co_name,
            "message": msg % args,
        }
        self._write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))


def run_floor(path: Path, n: int, warm: int) -> Timing:
    stream = path.open("wb")
    log = FloorLogger("bench", stream)
    _floor_var.set(PART1_ID)
    for i in range(warm):
        log.info("warm-up %s", i)
    stream.flush()

    def loop() -> None:
        for i in range(n):
            log.info("user %s did %s", i, "x")

    timing = _timed(loop, stream.flush)
    stream.close()
    return timing


def run_bundle_no_metrics(path: Path, n: int, warm: int) -> Timing:
    """This project with its Prometheus counting switched off (``LOG_METRICS=false``)."""
    os.environ["LOG_METRICS"] = "false"
    return run_bundle(path, n, warm)


RUNNERS: dict[str, Callable[[Path, int, int], Timing]] = {
    "bundle": run_bundle,
    "bundle-no-metrics": run_bundle_no_metrics,
    "bundle-before": run_bundle,  # with PYTHONPATH on the old package (see records.run_variant)
    "original": run_original,
    "pjl-json": run_pjl_json,
    "pjl-orjson": run_pjl_orjson,
    "structlog": run_structlog,
    "loguru": run_loguru,
    "floor": run_floor,
}


def _func(variant: str, record: dict[str, Any]) -> Any:
    """The calling function the line names (structlog's documented fast setup adds no call-site fields)."""
    if variant == "loguru":
        return (record.get("record") or {}).get("function")
    if variant == "structlog":
        return "loop"
    return record.get("func", record.get("funcName"))


def _message_and_id(variant: str, record: dict[str, Any]) -> tuple[Any, Any]:
    if variant == "structlog":
        return record.get("event"), record.get("tracking_id")
    if variant == "loguru":
        inner = record.get("record") or {}
        return inner.get("message"), (inner.get("extra") or {}).get("tracking_id")
    return record.get("message"), record.get("tracking_id")


def verify(variant: str, path: Path, n: int, warm: int) -> list[str]:
    """Every line JSON, the right ID on each, every expected message exactly once. Returns the problems."""
    problems: list[str] = []
    expected = {f"warm-up {i}" for i in range(warm)} | {f"user {i} did x" for i in range(n)}
    seen: set[str] = set()
    lines = path.read_bytes().splitlines()
    for number, line in enumerate(lines, 1):
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            problems.append(f"line {number} is not JSON: {line[:80]!r}")
            break
        message, tracking_id = _message_and_id(variant, record)
        if tracking_id != PART1_ID:
            problems.append(f"line {number} has tracking id {tracking_id!r}")
            break
        if message not in expected:
            problems.append(f"line {number}: unexpected message {message!r}")
            break
        if message in seen:
            problems.append(f"line {number}: duplicate message {message!r}")
            break
        if message.startswith("user ") and _func(variant, record) != "loop":
            problems.append(f"line {number} names the wrong caller: {_func(variant, record)!r}")
            break
        seen.add(message)
    missing = len(expected) - len(seen)
    if missing and not problems:
        problems.append(f"{missing} messages missing")
    return problems
