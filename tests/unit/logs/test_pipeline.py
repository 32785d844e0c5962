"""The process pipeline: root handler, listener thread, draining, routing of uvicorn's loggers."""

from __future__ import annotations

import contextvars
import io
import logging
import sys
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from service.context import bind_tracking_id
from service.logs.pipeline import QueueLogHandler, current_pipeline, setup_logging, shutdown_logging


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


def test_block_policy_loses_nothing_when_stalled(out: io.BytesIO) -> None:
    gate = threading.Event()

    class Slow(io.BytesIO):
        def write(self, data: Any) -> int:
            gate.wait(0.5)
            return super().write(data)

    slow = Slow()
    pipeline = setup_logging(stream=slow, queue_size=100)

    def produce() -> None:
        for i in range(3000):
            logging.getLogger("t").info("n%d", i)

    producer = threading.Thread(target=produce)
    producer.start()
    gate.set()
    producer.join(30)
    pipeline.drain()
    messages = [orjson.loads(x)["message"] for x in slow.getvalue().splitlines()]
    assert messages == [f"n{i}" for i in range(3000)]


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
