"""Where the bundle's time per record goes (Part 1), measured piece by piece in one fresh process.

- ``stdlib_record_us``: ``logger.info(...)`` on a stdlib ``Logger`` down to a no-op handler (findCaller,
  LogRecord creation, handler dispatch): what any handler behind stdlib ``logging`` starts from.
- ``fast_record_us``: the same through the bundle's ``FastLogger`` (``LOG_FAST_RECORDS``), when present.
- ``handler_us``: ``QueueLogHandler.handle`` on the caller's thread, over the record creation.
- ``render_us``: ``render`` alone, on fresh records, in batches of 1000.
- ``write_us``: joining a batch of lines and one buffered write + flush to a file.
- ``gc_us``: the cyclic garbage collector's time per record during a real end-to-end run.
- ``e2e_cpu_us``: process CPU per record of that run (all threads).

``python -m bench.breakdown N PATH`` prints the numbers as JSON.
"""

from __future__ import annotations

import gc
import logging
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from bench.common import PART1_ID

BATCH = 1000


class _Keep(logging.Handler):
    """Keeps the records (for timing ``render`` on its own); ``enabled`` False makes it a no-op."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.enabled = False

    def handle(self, record: logging.LogRecord) -> bool:
        if self.enabled:
            self.records.append(record)
        return True


def _loop(log: logging.Logger, n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        log.info("user %s did %s", i, "x")
    return time.perf_counter() - start


def _fast(on: bool) -> bool:
    try:
        from service.logs import fastlog
    except ImportError:
        return False
    if on:
        return bool(fastlog.install())
    fastlog.uninstall()
    return False


def measure(n: int, path: Path) -> dict[str, float | None]:
    from service.context import request_context_var
    from service.logs.format import render
    from service.logs.pipeline import Pipeline, QueueLogHandler, State, setup_logging, shutdown_logging
    from service.settings import load_settings

    request_context_var.set((PART1_ID, None))
    log = logging.getLogger("bench")
    log.setLevel(logging.INFO)
    log.propagate = False
    rounds = max(1, n // BATCH)
    # A pipeline whose listener never runs: its queue keeps what the caller side hands over.
    idle = Pipeline(load_settings(queue_size=10_000_000), [])
    idle.state = State.RUNNING
    handler = QueueLogHandler(idle)
    keep = _Keep()
    samples: dict[str, list[float]] = {k: [] for k in ("stdlib", "fast", "handler", "render", "write")}
    fast = False
    with path.open("wb") as out:
        for _ in range(rounds):  # interleaved batches; the minimum is the least disturbed
            _fast(False)
            log.handlers[:] = [keep]
            samples["stdlib"].append(_loop(log, BATCH) / BATCH)
            fast = _fast(True)
            if fast:
                samples["fast"].append(_loop(log, BATCH) / BATCH)
            log.handlers[:] = [handler]
            samples["handler"].append(_loop(log, BATCH) / BATCH)
            queued = idle.queue.take()
            keep.enabled = True
            log.handlers[:] = [keep]
            _loop(log, BATCH)
            keep.enabled = False
            for record in keep.records:
                record.tracking_id = PART1_ID
            start = time.perf_counter()
            lines = [render(record) for record in keep.records]
            samples["render"].append((time.perf_counter() - start) / BATCH)
            keep.records.clear()
            if queued and type(queued[0]) is bytes:  # the queue carries rendered lines
                lines = queued  # type: ignore[assignment]
            start = time.perf_counter()
            out.write(b"".join(lines))
            out.flush()
            samples["write"].append((time.perf_counter() - start) / BATCH)
    log.handlers.clear()
    log.propagate = True
    creation = min(samples["fast"]) if fast else min(samples["stdlib"])

    # A real end-to-end run (setup_logging as users call it), timing the garbage collector.
    gc_time = [0.0, 0.0]

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            gc_time[1] = time.perf_counter()
        else:
            gc_time[0] += time.perf_counter() - gc_time[1]

    stream = path.open("w")
    pipeline = setup_logging(stream=stream)
    gc.callbacks.append(on_gc)
    cpu = time.process_time()
    _loop(log, n)
    pipeline.flush(600)
    cpu = time.process_time() - cpu
    gc.callbacks.remove(on_gc)
    shutdown_logging()
    stream.close()
    return {
        "stdlib_record_us": min(samples["stdlib"]) * 1e6,
        "fast_record_us": min(samples["fast"]) * 1e6 if fast else None,
        "handler_us": (min(samples["handler"]) - creation) * 1e6,
        "render_us": min(samples["render"]) * 1e6,
        "write_us": min(samples["write"]) * 1e6,
        "gc_us": gc_time[0] / n * 1e6,
        "e2e_cpu_us": cpu / n * 1e6,
    }


if __name__ == "__main__":
    result = measure(int(sys.argv[1]), Path(sys.argv[2]))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
