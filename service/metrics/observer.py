"""The pipeline's health as Prometheus metrics: a ``PipelineObserver`` that counts per batch.

Called on the listener thread once per written batch (never per log call). Every method is guarded:
a metrics failure is reported once on stderr and never stops the listener. Under prometheus_client's
multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``) each process writes its own files and any process
serves the sum (see ``service.metrics.exposure``).
"""

from __future__ import annotations

import importlib.metadata
import logging
import platform
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import orjson

from service.logs.observer import DropReason, PipelineObserver
from service.logs.sinks import report_fault

if TYPE_CHECKING:
    import prometheus_client

__all__ = ["LEVELS", "LogMetrics", "PipelineMetrics", "pipeline_observer"]

PREFIX = "tracking_logs_"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
REASONS: tuple[DropReason, ...] = ("queue_full", "write_error", "shutdown")
SINKS = ("stdout", "file")
#: Write-batch latency buckets (seconds): a batch to a pipe or a file usually takes microseconds; a slow
#: or stalled collector shows up in the upper buckets.
BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# Every line starts ``{"@timestamp":"YYYY-MM-DDTHH:MM:SS.mmmZ","level":"<LEVEL>","name":"`` (service.logs.format),
# so byte 50 is the level's first letter, and D, I, W, E, C tell the five standard levels apart. Reading one
# byte per line costs a fifth of slicing the whole level out (measured in instructions). Lines with another
# letter (an unregistered "Level 25", the renderer's fallback line) are parsed; when a registered custom level
# also starts with one of those letters, bytes 39..60 (the level, its closing quote, the next key) decide.
_FIRST_LETTER = itemgetter(50)
_LETTERS = {ord(name[0]): name for name in LEVELS}
_LEVEL_AT = itemgetter(slice(39, 60))
_LEVEL_KEYS = {(b'","level":"' + name.encode() + b'","name":"')[:21]: name for name in LEVELS}


class LogMetrics:
    """The seven ``tracking_logs_*`` metrics of one process (one set, whatever the number of pipelines)."""

    def __init__(self, prom: Any, registry: prometheus_client.CollectorRegistry | None = None) -> None:
        kw: dict[str, Any] = {} if registry is None else {"registry": registry}
        self.written = prom.Counter(
            PREFIX + "lines_written", "Log lines written to at least one output, by level.", ["level"], **kw
        )
        self.dropped = prom.Counter(
            PREFIX + "lines_dropped", "Log lines lost before any output had them, by reason.", ["reason"], **kw
        )
        self.write_errors = prom.Counter(
            PREFIX + "write_errors", "Log lines an output (sink) failed to write.", ["sink"], **kw
        )
        # livemax: across workers, the fullest live queue (an alert fires when any one worker is near full).
        self.depth = prom.Gauge(
            PREFIX + "queue_depth", "Lines waiting in the log queue when the last batch was written.",
            multiprocess_mode="livemax", **kw,
        )  # fmt: skip
        self.capacity = prom.Gauge(
            PREFIX + "queue_capacity", "Capacity of the log queue, in lines (LOG_QUEUE_SIZE).",
            multiprocess_mode="livemax", **kw,
        )  # fmt: skip
        self.duration = prom.Histogram(
            PREFIX + "write_batch_duration_seconds", "Time to write one batch of lines to every output.",
            buckets=BUCKETS, **kw,
        )  # fmt: skip
        self.build_info = prom.Gauge(
            PREFIX + "build_info", "Always 1; the bundle's version and the Python running it.",
            ["version", "python"], multiprocess_mode="livemax", **kw,
        )  # fmt: skip
        self.build_info.labels(_version(), platform.python_version()).set(1)
        # Every series exists from the start at 0, so increase() and rate() see the first event.
        self.by_level = {name: self.written.labels(name) for name in LEVELS}
        self.by_key = {key: self.by_level[name] for key, name in _LEVEL_KEYS.items()}
        self.by_letter = [(bytes([letter]), self.by_level[name]) for letter, name in _LETTERS.items()]
        self.by_reason = {reason: self.dropped.labels(reason) for reason in REASONS}
        self.by_sink = {sink: self.write_errors.labels(sink) for sink in SINKS}
        self._names_seen = -1
        self._letters_ambiguous = False

    def letters_ambiguous(self) -> bool:
        """Whether a registered custom level name starts like a standard one (then the first letter is not enough)."""
        names = logging.getLevelNamesMapping()
        if len(names) != self._names_seen:  # a level was added (or removed): look again
            self._names_seen = len(names)
            self._letters_ambiguous = any(
                name not in LEVELS and name not in ("NOTSET", "WARN", "FATAL") and ord(name[:1] or " ") in _LETTERS
                for name in names
            )
        return self._letters_ambiguous

    def observer(self, sinks: int) -> PipelineMetrics:
        """The observer for one pipeline with ``sinks`` outputs."""
        return PipelineMetrics(self, sinks)


class PipelineMetrics:
    """A ``PipelineObserver`` updating ``LogMetrics``; its calls come from one thread at a time."""

    def __init__(self, metrics: LogMetrics, sinks: int) -> None:
        self.metrics = metrics
        self.sinks = sinks
        self._failed = 0  # sinks that failed the batch being written: when all did, its lines were not written
        self._capacity = -1
        self._faulted = False

    def batch_written(self, lines: Sequence[bytes], seconds: float, queue_depth: int, capacity: int) -> None:
        try:
            metrics = self.metrics
            metrics.duration.observe(seconds)
            metrics.depth.set(queue_depth)
            if capacity != self._capacity:
                self._capacity = capacity
                metrics.capacity.set(capacity)
            failed, self._failed = self._failed, 0
            if failed < self.sinks:  # at least one output has these lines
                self._count_levels(lines)
        except Exception as exc:
            self._fault(exc)

    def write_failed(self, sink: str, lines: int) -> None:
        try:
            self._failed += 1  # told before batch_written, for each failing sink of that batch
            by_sink = self.metrics.by_sink
            child = by_sink.get(sink)
            if child is None:  # a sink of someone else's: its name is code, not data, so still bounded
                child = by_sink[sink] = self.metrics.write_errors.labels(sink)
            child.inc(lines)
        except Exception as exc:
            self._fault(exc)

    def lines_dropped(self, reason: DropReason, count: int) -> None:
        try:
            self.metrics.by_reason[reason].inc(count)
        except Exception as exc:
            self._fault(exc)

    def _count_levels(self, lines: Sequence[bytes]) -> None:
        """Per batch: one C-level pass reading each line's level letter, then a count per level."""
        metrics = self.metrics
        try:
            letters = b"" if metrics.letters_ambiguous() else bytes(map(_FIRST_LETTER, lines))
        except IndexError:  # a line shorter than the standard prefix
            letters = b""
        if not letters:
            self._count_exactly(lines)
            return
        counted = 0
        for letter, child in metrics.by_letter:
            count = letters.count(letter)
            if count:
                child.inc(count)
                counted += count
        if counted != len(lines):  # lines not in the standard shape, or an unregistered level: parse them
            self._count_odd([line for line in lines if len(line) <= 50 or line[50] not in _LETTERS])

    def _count_exactly(self, lines: Sequence[bytes]) -> None:
        by_key = self.metrics.by_key
        odd = 0
        for key, count in Counter(map(_LEVEL_AT, lines)).items():
            child = by_key.get(key)
            if child is None:
                odd += count
            else:
                child.inc(count)
        if odd:
            self._count_odd([line for line in lines if _LEVEL_AT(line) not in by_key])

    def _count_odd(self, lines: Iterable[bytes]) -> None:
        by_level = self.metrics.by_level
        for name, count in Counter(_odd_levels(lines)).items():
            child = by_level.get(name)
            if child is None:
                child = by_level[name] = self.metrics.written.labels(name)
            child.inc(count)

    def _fault(self, exc: Exception) -> None:
        if not self._faulted:
            self._faulted = True
            report_fault(f"metrics: {exc!r}; pipeline metrics may be incomplete")


def _odd_levels(lines: Iterable[bytes]) -> Iterable[str]:
    """The level label of lines off the fast path: a registered level name, else ``unknown`` (bounded)."""
    known = logging.getLevelNamesMapping()
    for line in lines:
        try:
            level = orjson.loads(line).get("level")
        except (orjson.JSONDecodeError, AttributeError):
            level = None
        yield level if isinstance(level, str) and level in known else "unknown"


def _version() -> str:
    try:
        return importlib.metadata.version("fastapi-tracking-logs")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


_metrics: LogMetrics | None = None
_lock = threading.Lock()


def pipeline_observer(sinks: int) -> PipelineObserver | None:
    """An observer for a pipeline with ``sinks`` outputs, counting into this process's metrics.

    The metrics are created once per process, in prometheus_client's default registry. None when
    prometheus_client is not installed: the pipeline then runs exactly as without metrics.
    """
    global _metrics
    with _lock:
        if _metrics is None:
            try:
                import prometheus_client
            except ImportError:
                return None
            _metrics = LogMetrics(prometheus_client)
        return _metrics.observer(sinks)
