"""The process pipeline: root handler, listener thread, draining, routing of uvicorn's loggers."""

from __future__ import annotations

import contextvars
import io
import logging
import sys
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import orjson
import pytest

from service.context import bind_tracking_id, request_context_var
from service.logs.pipeline import QueueLogHandler, State, current_pipeline, setup_logging, shutdown_logging


@pytest.fixture
def out() -> Iterator[io.BytesIO]:
    stream = io.BytesIO()
    yield stream
    shutdown_logging()


def lines(stream: io.BytesIO) -> list[dict[str, Any]]:
    pipeline = current_pipeline()
    if pipeline is not None:
        assert pipeline.flush(10)
    return [orjson.loads(x) for x in stream.getvalue().splitlines()]


def listeners() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "log-listener"]


def test_records_reach_the_stream_with_the_tracking_id(out: io.BytesIO) -> None:
    setup_logging(stream=out)
    log = logging.getLogger("t.pipe")
    with bind_tracking_id("req-00042"):
        log.info("inside %s", "request")
    log.info("outside")
    got = lines(out)
    assert [(r["message"], r["tracking_id"]) for r in got] == [("inside request", "req-00042"), ("outside", None)]


def test_idempotent(out: io.BytesIO) -> None:
    """A second call adds no handler and no listener."""
    first = setup_logging(stream=out)
    second = setup_logging()
    assert first is second
    root = logging.getLogger()
    assert sum(isinstance(h, QueueLogHandler) for h in root.handlers) == 1
    assert len(listeners()) == 1


def test_reconfigure_replaces_and_drains(out: io.BytesIO) -> None:
    """New settings replace the pipeline; nothing logged before is lost; still one listener."""
    setup_logging(stream=out)
    logging.getLogger("t").warning("before")
    other = io.BytesIO()
    setup_logging(stream=other, level="DEBUG")
    logging.getLogger("t").debug("after")
    assert [r["message"] for r in lines(out)] == ["before"]
    assert [r["message"] for r in lines(other)] == ["after"]
    assert len(listeners()) == 1
    assert sum(isinstance(h, QueueLogHandler) for h in logging.getLogger().handlers) == 1


def test_only_handlers_printing_to_stdout_or_stderr_are_removed(out: io.BytesIO) -> None:
    """Plain-text handlers on stdout/stderr go; a handler writing elsewhere stays and keeps its records."""
    root = logging.getLogger()
    to_stderr, to_stdout = logging.StreamHandler(sys.stderr), logging.StreamHandler(sys.stdout)
    elsewhere = io.StringIO()
    kept = logging.StreamHandler(elsewhere)
    for handler in (to_stderr, to_stdout, kept):
        root.addHandler(handler)
    try:
        setup_logging(stream=out)
        assert to_stderr not in root.handlers and to_stdout not in root.handlers
        assert kept in root.handlers
        logging.getLogger("t").warning("both see it")
        assert [r["message"] for r in lines(out)] == ["both see it"]
        assert elsewhere.getvalue() == "both see it\n"
    finally:
        root.removeHandler(kept)


def test_uvicorn_loggers_are_routed(out: io.BytesIO) -> None:
    """uvicorn's own handlers are removed; its records come out as JSON; uvicorn.access is silenced."""
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).addHandler(logging.StreamHandler(io.StringIO()))
    logging.getLogger("uvicorn").propagate = False
    setup_logging(stream=out)
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 1)
    access = logging.getLogger("uvicorn.access")
    assert not access.hasHandlers(), "uvicorn only logs access lines when the logger has handlers"
    assert [r["name"] for r in lines(out)] == ["uvicorn.error"]


def test_level_filters(out: io.BytesIO) -> None:
    setup_logging(stream=out, level="WARNING")
    logging.getLogger("t").info("hidden")
    logging.getLogger("t").warning("shown")
    assert [r["message"] for r in lines(out)] == ["shown"]


def test_threads_inherit_copied_context(out: io.BytesIO) -> None:
    setup_logging(stream=out)
    with bind_tracking_id("req-thread1"):
        ctx = contextvars.copy_context()
    thread = threading.Thread(target=ctx.run, args=(logging.getLogger("t").info, "from thread"))
    thread.start()
    thread.join()
    assert lines(out)[0]["tracking_id"] == "req-thread1"


def test_broken_call_never_raises(out: io.BytesIO) -> None:
    setup_logging(stream=out)
    logging.getLogger("t").info("%d and %d", "x")
    got = lines(out)
    assert "could not be rendered" in got[0]["message"]


def test_arguments_are_rendered_at_the_call(out: io.BytesIO) -> None:
    """A list mutated right after logging does not change the logged line."""
    setup_logging(stream=out)
    items = [1]
    logging.getLogger("t").info("items=%s", items)
    items.append(2)
    assert lines(out)[0]["message"] == "items=[1]"


def test_drain_then_synchronous(out: io.BytesIO) -> None:
    """After drain the listener is gone and records are written at once, in order."""
    pipeline = setup_logging(stream=out)
    log = logging.getLogger("t")
    for i in range(1000):
        log.info("n%d", i)
    pipeline.drain()
    assert not listeners()
    log.info("late")
    messages = [orjson.loads(x)["message"] for x in out.getvalue().splitlines()]
    assert messages == [f"n{i}" for i in range(1000)] + ["late"]


def test_drop_policy_reports_the_count(out: io.BytesIO) -> None:
    """With LOG_OVERFLOW=drop a stalled writer loses records, and the count is logged."""
    gate = threading.Event()

    class Stalled(io.BytesIO):
        def write(self, data: Any) -> int:
            gate.wait(10)
            return super().write(data)

    stalled = Stalled()
    pipeline = setup_logging(stream=stalled, overflow="drop", queue_size=100)
    log = logging.getLogger("t")
    log.info("first")  # the listener takes it and blocks in write
    for i in range(1000):
        log.info("n%d", i)
    gate.set()
    pipeline.drain()
    got = [orjson.loads(x) for x in stalled.getvalue().splitlines()]
    reports = [r for r in got if r["name"] == "service.logs"]
    assert reports, "the drop count must be reported"
    written = len([r for r in got if r["name"] == "t"])
    assert sum(r["dropped"] for r in reports) == 1001 - written
    assert written < 1001


class Recorder:
    """A PipelineObserver that keeps every call."""

    def __init__(self) -> None:
        self.batches: list[tuple[list[bytes], float, int, int]] = []
        self.failed: list[tuple[str, int]] = []
        self.dropped: list[tuple[str, int]] = []

    def batch_written(self, lines: Sequence[bytes], seconds: float, queue_depth: int, capacity: int) -> None:
        self.batches.append((list(lines), seconds, queue_depth, capacity))

    def write_failed(self, sink: str, lines: int) -> None:
        self.failed.append((sink, lines))

    def lines_dropped(self, reason: str, count: int) -> None:
        self.dropped.append((reason, count))


def test_block_policy_loses_nothing_when_stalled(out: io.BytesIO) -> None:
    """With the output stalled, the producer waits once the queue is full; released, every line arrives."""
    gate = threading.Event()
    writing = threading.Event()

    class Stalled(io.BytesIO):
        def write(self, data: Any) -> int:
            writing.set()
            gate.wait(30)
            return super().write(data)

    stalled = Stalled()
    pipeline = setup_logging(stream=stalled, queue_size=100)
    done = threading.Event()

    def produce() -> None:
        for i in range(3000):
            logging.getLogger("t").info("n%d", i)
        done.set()

    producer = threading.Thread(target=produce)
    producer.start()
    assert writing.wait(10), "the listener is stuck in its first write"
    assert not done.wait(0.5), "the producer must wait while the queue is full, not drop"
    assert len(pipeline.queue) >= pipeline.queue.maxsize, "the queue filled up"
    gate.set()
    producer.join(30)
    assert done.is_set()
    pipeline.drain()
    messages = [orjson.loads(x)["message"] for x in stalled.getvalue().splitlines()]
    assert messages == [f"n{i}" for i in range(3000)]


def test_close_releases_blocked_producers(out: io.BytesIO) -> None:
    """A producer blocked on a full queue is released by shutdown within the bound; its line is counted."""
    gate = threading.Event()
    writing = threading.Event()

    class Stalled(io.BytesIO):
        def write(self, data: Any) -> int:
            writing.set()
            gate.wait(30)
            return super().write(data)

    pipeline = setup_logging(stream=Stalled(), queue_size=100, shutdown_timeout=0.5)
    log = logging.getLogger("t")
    log.info("first")
    assert writing.wait(10)
    for i in range(100):
        log.info("fill %d", i)
    blocked = threading.Thread(target=log.info, args=("the one that waits",))
    blocked.start()
    blocked.join(0.5)
    assert blocked.is_alive(), "the producer is blocked on the full queue"
    lost = pipeline.drain()
    blocked.join(5)
    gate.set()
    assert not blocked.is_alive(), "drain released the producer"
    assert pipeline.state is State.ABANDONED
    assert lost == pipeline.abandoned == 102, "the stuck batch, the queue and the released producer's line"


def test_stalled_output_bounds_shutdown_and_reports_the_loss(
    out: io.BytesIO, capfd: pytest.CaptureFixture[str]
) -> None:
    """drain() returns within LOG_SHUTDOWN_TIMEOUT while the output is stuck, says on stderr how many
    lines were lost, and later lines are counted instead of waited on."""
    gate = threading.Event()
    writing = threading.Event()

    class Stalled(io.BytesIO):
        def write(self, data: Any) -> int:
            writing.set()
            gate.wait(30)
            return super().write(data)

    pipeline = setup_logging(stream=Stalled(), shutdown_timeout=0.3)
    recorder = Recorder()
    pipeline.observer = recorder
    log = logging.getLogger("t")
    log.info("stuck in write")
    assert writing.wait(10)
    for i in range(5):
        log.info("queued %d", i)
    started = time.monotonic()
    assert pipeline.drain() == 6
    assert time.monotonic() - started < 3
    log.info("after the bound")
    assert pipeline.abandoned == 7
    assert recorder.dropped == [("shutdown", 6), ("shutdown", 1)]
    gate.set()
    [report] = [orjson.loads(x) for x in capfd.readouterr().err.splitlines()]
    assert report["level"] == "ERROR" and report["lines_lost"] == 6 and "LOG_SHUTDOWN_TIMEOUT" in report["message"]


def test_no_producer_stranded_by_a_concurrent_drain(out: io.BytesIO) -> None:
    """Lines logged by many threads while the pipeline drains are all written, none left in the queue."""
    pipeline = setup_logging(stream=out)
    start = threading.Barrier(5)

    def produce(n: int) -> None:
        start.wait()
        for i in range(2000):
            logging.getLogger("t").info("p%d-%d", n, i)

    threads = [threading.Thread(target=produce, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    start.wait()
    pipeline.drain()
    for thread in threads:
        thread.join(30)
    assert len(pipeline.queue) == 0
    got = [orjson.loads(x)["message"] for x in out.getvalue().splitlines()]
    assert len(got) == 8000 and len(set(got)) == 8000


def test_a_line_queued_as_the_drain_ends_is_written(out: io.BytesIO, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worst interleaving, forced: a producer saw RUNNING, then the whole drain ran, then it appended."""
    pipeline = setup_logging(stream=out)
    put = pipeline.queue.put

    def drain_first(item: Any) -> bool:
        pipeline.drain()
        return put(item)

    monkeypatch.setattr(pipeline.queue, "put", drain_first)
    logging.getLogger("t").info("last words")
    assert pipeline.state is State.STOPPED and len(pipeline.queue) == 0
    assert [r["message"] for r in lines(out)] == ["last words"]


def test_observer_sees_every_written_line(out: io.BytesIO) -> None:
    pipeline = setup_logging(stream=out, queue_size=500)
    recorder = Recorder()
    pipeline.observer = recorder
    for i in range(50):
        logging.getLogger("t").info("n%d", i)
    lines(out)
    written = [orjson.loads(line)["message"] for batch in recorder.batches for line in batch[0]]
    assert written == [f"n{i}" for i in range(50)]
    assert all(
        seconds >= 0 and capacity == 500 and 0 <= depth <= 500 for _, seconds, depth, capacity in recorder.batches
    )
    assert recorder.failed == [] and recorder.dropped == []


def test_a_large_batch_is_written_in_order_a_chunk_at_a_time(out: io.BytesIO) -> None:
    """The listener renders and writes at most CHUNK lines at a time (bounded memory per write), in order,
    and a flush barrier inside the batch is released once everything before it is written."""
    from service.logs.listener import CHUNK

    pipeline = setup_logging(stream=out, queue_size=2000)
    recorder = Recorder()
    pipeline.observer = recorder
    log = logging.getLogger("t.chunks")
    flushed: list[int] = []
    with pipeline._write_lock:  # the listener waits: everything below becomes one batch
        for i in range(300):
            log.info("n%d", i)
        flusher = threading.Thread(
            target=lambda: flushed.append(len(out.getvalue().splitlines())) if pipeline.flush(10) else None
        )
        flusher.start()
        while len(pipeline.queue) < 301:  # the barrier is queued
            time.sleep(0.001)
        for i in range(300, 400):
            log.info("n%d", i)
    flusher.join(10)
    assert [r["message"] for r in lines(out)] == [f"n{i}" for i in range(400)]
    assert flushed and flushed[0] >= 300, "the barrier waited for the lines before it"
    sizes = [len(batch[0]) for batch in recorder.batches]
    assert sum(sizes) == 400 and max(sizes) <= CHUNK


def test_observer_hears_of_failed_writes_and_full_queue() -> None:
    """A sink that fails: write_failed and write_error drops; drop policy: queue_full with the exact count."""
    gate = threading.Event()

    class Broken(io.BytesIO):
        def write(self, data: Any) -> int:
            gate.wait(10)
            raise OSError("disk on fire")

    try:
        pipeline = setup_logging(stream=Broken(), overflow="drop", queue_size=100)
        recorder = Recorder()
        pipeline.observer = recorder
        log = logging.getLogger("t")
        log.info("first")
        for i in range(300):
            log.info("n%d", i)
        gate.set()
        pipeline.drain()
    finally:
        shutdown_logging()
    reasons = {reason for reason, _ in recorder.dropped}
    queue_full = sum(count for reason, count in recorder.dropped if reason == "queue_full")
    write_error = sum(count for reason, count in recorder.dropped if reason == "write_error")
    assert queue_full == pipeline.queue.dropped > 0
    assert reasons == {"queue_full", "write_error"}
    assert write_error == sum(n for _, n in recorder.failed) == sum(len(b[0]) for b in recorder.batches)
    assert write_error + queue_full >= 301
    assert {sink for sink, _ in recorder.failed} == {"stdout"}


def test_trace_fields_follow_the_message_on_both_routes(out: io.BytesIO) -> None:
    """With a trace context bound, every line carries trace_id, span_id, trace_flags right after message."""
    setup_logging(stream=out)
    log = logging.getLogger("t")
    token = request_context_var.set(("trace-test-1", ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", "01")))
    try:
        log.info("direct route")
        log.info("record route", extra={"user": 1})
    finally:
        request_context_var.reset(token)
    log.info("no trace")
    first, second, third = lines(out)
    for line in (first, second):
        keys = list(line)
        at = keys.index("message")
        assert keys[at + 1 : at + 4] == ["trace_id", "span_id", "trace_flags"]
        assert (line["trace_id"], line["span_id"], line["trace_flags"]) == (
            "0af7651916cd43dd8448eb211c80319c",
            "b7ad6b7169203331",
            "01",
        )
    assert second["user"] == 1
    assert first["tracking_id"] == second["tracking_id"] == "trace-test-1"
    assert "trace_id" not in third and third["tracking_id"] is None


def test_setup_again_reroutes_what_was_reconfigured(out: io.BytesIO) -> None:
    """A server that re-attaches its plain handlers after setup_logging(): calling it again routes them back."""
    first = setup_logging(stream=out)
    error = logging.getLogger("uvicorn.error")
    plain = logging.StreamHandler(sys.stderr)
    error.addHandler(plain)
    error.propagate = False
    assert setup_logging() is first
    assert plain not in error.handlers and error.propagate
    error.info("routed again")
    assert [r["message"] for r in lines(out)] == ["routed again"]


def test_excepthooks_are_chained_and_restored(out: io.BytesIO) -> None:
    """The previous sys/threading excepthooks still run after ours; shutdown puts them back."""
    seen: list[str] = []
    before = sys.excepthook, threading.excepthook

    def mine(exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
        seen.append(f"sys:{exc}")

    def mine_in_thread(args: threading.ExceptHookArgs) -> None:
        seen.append(f"thread:{args.exc_value}")

    sys.excepthook, threading.excepthook = mine, mine_in_thread
    try:
        setup_logging(stream=out)
        try:
            raise ValueError("main")
        except ValueError as exc:
            sys.excepthook(ValueError, exc, exc.__traceback__)

        def fail() -> None:
            raise RuntimeError("worker")

        thread = threading.Thread(target=fail)
        thread.start()
        thread.join()
        assert [r["message"] for r in lines(out)] == [
            "uncaught exception",
            f"uncaught exception in thread {thread.name}",
        ]
        assert seen == ["sys:main", "thread:worker"]
        shutdown_logging()
        assert (sys.excepthook, threading.excepthook) == (mine, mine_in_thread)
    finally:
        sys.excepthook, threading.excepthook = before


def test_warnings_are_routed_to_logging(out: io.BytesIO) -> None:
    """warnings.warn goes through logging (py.warnings) instead of plain text on stderr."""
    setup_logging(stream=out)
    assert warnings.showwarning.__module__ == "logging"
    warnings.showwarning("careful", UserWarning, "x.py", 1)
    got = lines(out)
    assert got[0]["name"] == "py.warnings" and "careful" in got[0]["message"]


def test_shutdown_detaches(out: io.BytesIO) -> None:
    setup_logging(stream=out)
    shutdown_logging()
    assert current_pipeline() is None
    assert not any(isinstance(h, QueueLogHandler) for h in logging.getLogger().handlers)
    assert not listeners()
