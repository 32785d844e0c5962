"""Where the bundle's time per record goes (Part 1), measured piece by piece in one fresh process.

- ``stdlib_record_us``: ``logger.info(...)`` down to a no-op root handler (LogRecord creation,
  findCaller, handler dispatch): the floor of anything that goes through stdlib ``logging``.
- ``capture_us``: ``QueueLogHandler.handle`` on the caller's thread (tracking ID, argument check, queue).
- ``render_us``: the listener's ``render`` of fresh records, in batches of 1000.
- ``write_us``: joining the lines of a batch and one buffered write + flush to a file.
- ``gc_us``: the cyclic garbage collector's time per record during a real end-to-end run (records
  wait in the queue, so they are traversed by young-generation collections).
- ``e2e_cpu_us``: process CPU per record of that run (both threads).

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


def _loop(log: logging.Logger, n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        log.info("user %s did %s", i, "x")
    return time.perf_counter() - start


def measure(n: int, path: Path) -> dict[str, float]:
    from service.context import tracking_id_var
    from service.logs.format import render
    from service.logs.pipeline import Pipeline, QueueLogHandler, setup_logging, shutdown_logging
    from service.settings import load_settings

    tracking_id_var.set(PART1_ID)
    log = logging.getLogger("bench")
    log.setLevel(logging.INFO)
    log.propagate = False
    rounds = max(1, n // BATCH)

    class NoOp(logging.Handler):
        def handle(self, record: logging.LogRecord) -> bool:
            return True

    # A pipeline whose listener never runs: the queue only collects what the caller side hands over.
    idle = Pipeline(load_settings(queue_size=10_000_000), [])
    idle._running = True
    capture = QueueLogHandler(idle)
    noop = NoOp()
    created: list[float] = []
    captured: list[float] = []
    rendered: list[float] = []
    written: list[float] = []
    with path.open("wb") as out:
        for _ in range(rounds):  # interleaved batches; the minimum is the least disturbed
            log.handlers[:] = [noop]
            created.append(_loop(log, BATCH) / BATCH)
            log.handlers[:] = [capture]
            captured.append(_loop(log, BATCH) / BATCH)
            records = idle.queue.take()
            start = time.perf_counter()
            lines = [render(r) for r in records]  # type: ignore[arg-type]
            rendered.append((time.perf_counter() - start) / len(records))
            start = time.perf_counter()
            out.write(b"".join(lines))
            out.flush()
            written.append((time.perf_counter() - start) / len(records))
    log.handlers.clear()
    log.propagate = True

    # A real end-to-end run, timing the garbage collector.
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
        "stdlib_record_us": min(created) * 1e6,
        "capture_us": (min(captured) - min(created)) * 1e6,
        "render_us": min(rendered) * 1e6,
        "write_us": min(written) * 1e6,
        "gc_us": gc_time[0] / n * 1e6,
        "e2e_cpu_us": cpu / n * 1e6,
    }


if __name__ == "__main__":
    result = measure(int(sys.argv[1]), Path(sys.argv[2]))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
