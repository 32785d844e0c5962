"""A shutdown signal reaches a producer waiting for room in a full queue (LOG_OVERFLOW=block), without
taking over the process's signal handling: the handler in place is chained, always called, and put back."""

from __future__ import annotations

import io
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import orjson
import pytest

from service.logs.pipeline import setup_logging, shutdown_logging
from service.logs.queue import BatchQueue


@pytest.fixture
def sigterm_calls() -> Iterator[list[int]]:
    """A Python SIGTERM handler of the application's (as uvicorn installs one), recording its calls."""
    calls: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        calls.append(signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield calls
    finally:
        signal.signal(signal.SIGTERM, previous)


def later(seconds: float, action: Callable[[], Any]) -> threading.Thread:
    thread = threading.Timer(seconds, action)
    thread.start()
    return thread


def test_sigterm_releases_the_main_thread_and_calls_the_handler_in_place(sigterm_calls: list[int]) -> None:
    handler = signal.getsignal(signal.SIGTERM)
    q: BatchQueue[int] = BatchQueue(1, "block")
    assert q.put(0)
    killer = later(0.3, lambda: os.kill(os.getpid(), signal.SIGTERM))
    assert q.put(1) is False, "shed: the queue stayed full after the signal"
    killer.join()
    assert sigterm_calls == [signal.SIGTERM], "the application's handler ran, once"
    assert signal.getsignal(signal.SIGTERM) is handler, "its handler is back in place"
    assert q.stopping and q.shed == 1
    assert q.put(2) is False and q.shed == 2, "after a shutdown request a full queue no longer waits"
    assert q.take() == [0]
    assert q.put(3), "room: queued as usual"


def test_without_a_signal_block_waits_and_the_handler_is_wrapped_only_meanwhile(sigterm_calls: list[int]) -> None:
    handler = signal.getsignal(signal.SIGTERM)
    q: BatchQueue[int] = BatchQueue(1, "block")
    assert q.put(0)
    seen: list[Any] = []

    def consume() -> None:
        seen.append(signal.getsignal(signal.SIGTERM))
        seen.append(q.take())

    consumer = later(0.3, consume)
    assert q.put(1), "nothing lost: the producer waited for room"
    consumer.join()
    assert callable(seen[0]) and seen[0] is not handler, "wrapped while the main thread waited"
    assert seen[1] == [0] and q.take() == [1]
    assert signal.getsignal(signal.SIGTERM) is handler and not sigterm_calls and q.shed == 0


@pytest.mark.parametrize("disposition", [signal.SIG_IGN, signal.SIG_DFL])
def test_ignored_or_default_dispositions_are_never_replaced(disposition: signal.Handlers) -> None:
    previous = signal.signal(signal.SIGTERM, disposition)
    try:
        q: BatchQueue[int] = BatchQueue(1, "block")
        assert q.put(0)
        seen: list[Any] = []

        def consume() -> None:
            seen.append(signal.getsignal(signal.SIGTERM))
            q.take()

        consumer = later(0.3, consume)
        assert q.put(1)
        consumer.join()
        assert seen == [disposition]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_producer_off_the_main_thread_installs_nothing(sigterm_calls: list[int]) -> None:
    handler = signal.getsignal(signal.SIGTERM)
    q: BatchQueue[int] = BatchQueue(1, "block")
    assert q.put(0)
    producer = threading.Thread(target=q.put, args=(1,))
    producer.start()
    producer.join(0.3)
    assert producer.is_alive() and signal.getsignal(signal.SIGTERM) is handler
    q.close()  # the drain at shutdown releases it
    producer.join(5)
    assert not producer.is_alive()


class Recorder:
    def __init__(self) -> None:
        self.dropped: list[tuple[str, int]] = []

    def batch_written(self, lines: Any, seconds: float, queue_depth: int, capacity: int) -> None:
        pass

    def write_failed(self, sink: str, lines: int) -> None:
        pass

    def lines_dropped(self, reason: str, count: int) -> None:
        self.dropped.append((reason, count))


def test_lines_shed_at_shutdown_are_counted_and_reported(
    sigterm_calls: list[int], capfd: pytest.CaptureFixture[str]
) -> None:
    """Stalled output, block mode, the main thread logging: SIGTERM lets it finish; what could not be
    written is counted (observer reason "shutdown") and reported on stderr by the bounded drain."""
    gate = threading.Event()

    class Stalled(io.BytesIO):
        def write(self, data: Any) -> int:
            gate.wait(30)
            return super().write(data)

    killer = None
    try:
        pipeline = setup_logging(stream=Stalled(), overflow="block", queue_size=100, shutdown_timeout=0.5)
        recorder = Recorder()
        pipeline.observer = recorder
        log = logging.getLogger("t")
        killer = later(0.5, lambda: os.kill(os.getpid(), signal.SIGTERM))
        for i in range(1000):
            log.info("n%d", i)
        lost = pipeline.drain()
    finally:
        gate.set()
        if killer is not None:
            killer.join()
        shutdown_logging()
    assert sigterm_calls == [signal.SIGTERM]
    assert lost == pipeline.abandoned == sum(n for reason, n in recorder.dropped if reason == "shutdown")
    assert lost >= 1000 - 100 - 2, "all but the queued lines (and one the stalled write holds) were lost"
    [report] = [orjson.loads(line) for line in capfd.readouterr().err.splitlines() if "lines_lost" in line]
    assert report["lines_lost"] == lost
