"""One process's log pipeline: the bounded queue, the listener thread that writes batches to the sinks, and
its life cycle (draining within a bound at shutdown, a fresh listener in a forked child).

Callers hand rendered lines to ``Pipeline.submit``; the listener writes one batch per sink per wake-up, so a
slow or stalled stdout never blocks the caller (until the bounded queue is full: then LOG_OVERFLOW decides).

Life cycle (``Pipeline.state``; every transition is listed in ``_TRANSITIONS``)::

    STOPPED --start--> RUNNING --drain--> DRAINING --all written--> STOPPED (lines then written synchronously)
                                          DRAINING --bound ran out--> ABANDONED (lines counted, not waited on)
    RUNNING --fork--> RUNNING in the child, with its own queue and listener
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Sequence
from typing import cast

from service.logs.format import DeferredLine, render_deferred, render_event
from service.logs.observer import PipelineObserver
from service.logs.queue import BatchQueue
from service.logs.sinks import Sink, report_fault
from service.settings import LogSettings

__all__ = ["Pipeline", "State"]

#: Seconds the awake listener lets a batch build up: a web server's few lines per request then cost one
#: thread hand-off per batch instead of several context switches per line. Cut short when ~1k lines
#: are queued, by ``flush()`` and by ``drain()``. What is queued dies with a SIGKILL (an OOM kill), so
#: this bounds that loss in time; SIGTERM loses nothing. Measured on /pong, paired, 3.12 (share of bare,
#: against 5 ms): 2 ms -2.2 points, 20 ms +1.0 to +1.5, 50 ms +1.2: fewer hand-offs, each disturbing the
#: event loop's thread on a shared core.
LINGER = 0.02


#: Lines rendered and written at a time. With many more rendered lines alive at once (a 1k-line batch),
#: glibc gives the listener thread's heap back to the system after every batch and page-faults it in again
#: for the next: 30-70 % more CPU per line in a tight logging loop (bench Part 1).
CHUNK = 64


class State(enum.Enum):
    STOPPED = "stopped"  # no listener: lines are written by the thread that logs them
    RUNNING = "running"  # lines are queued for the listener thread
    DRAINING = "draining"  # the listener writes what is queued, within LOG_SHUTDOWN_TIMEOUT
    ABANDONED = "abandoned"  # the bound ran out (stdout stalled): lines are counted as lost, never waited on


# The hot path compares with module constants: an enum member lookup costs more.
_RUNNING, _DRAINING = State.RUNNING, State.DRAINING

_TRANSITIONS: frozenset[tuple[State, State]] = frozenset(
    {
        (State.STOPPED, State.RUNNING),  # start, resume (a new lifespan), a forked child
        (State.RUNNING, State.RUNNING),  # a forked child gets its own listener
        (State.RUNNING, State.DRAINING),  # drain: lifespan shutdown, SIGTERM path, exit
        (State.DRAINING, State.STOPPED),  # the listener wrote everything queued; the drain takes the rest
        (State.DRAINING, State.ABANDONED),  # the shutdown bound ran out
    }
)


class _Barrier:
    __slots__ = ("event",)

    def __init__(self) -> None:
        self.event = threading.Event()


#: What the queue holds: a rendered line, a line the listener renders, or a flush barrier.
Item = bytes | DeferredLine | _Barrier


class Pipeline:
    """One process's queue, listener thread and sinks."""

    def __init__(self, settings: LogSettings, sinks: Sequence[Sink]) -> None:
        self.settings = settings
        self.sinks = list(sinks)
        #: Told about every written batch, failed write and lost line (metrics hook up here); None: nobody.
        self.observer: PipelineObserver | None = None
        self.queue: BatchQueue[Item] = BatchQueue(settings.queue_size, settings.overflow)
        self.state = State.STOPPED
        self._control = threading.RLock()  # serialises transitions
        self._write_lock = threading.Lock()  # one batch at a time reaches the sinks
        self._thread: threading.Thread | None = None
        self._deadline = float("inf")  # while DRAINING: when the shutdown bound runs out
        self._in_flight = 0  # lines of the batch the listener is writing now
        self._seen_drops = 0  # queue.dropped already told to the observer
        self._reported_drops = 0  # queue.dropped already reported as a log line
        self._last_drop_report = time.monotonic()
        self.abandoned = 0  #: lines given up at shutdown because the bound ran out

    def _move(self, new: State) -> None:
        if (self.state, new) not in _TRANSITIONS:
            raise RuntimeError(f"log pipeline: no transition {self.state.name} -> {new.name}")
        self.state = new

    # -- caller side -------------------------------------------------------------------------
    def submit(self, line: bytes | DeferredLine) -> None:
        """Hand one line to the listener (or, once it is stopped, write it now): rendered, or a
        ``DeferredLine`` (immutable values) that the listener renders."""
        state = self.state
        if state is _RUNNING or state is _DRAINING:
            if not self.queue.put(line) and not self.queue.drop:
                self._abandon(1)  # shed: the queue was full after a shutdown signal (see BatchQueue.stop_waiting)
            state = self.state
            if state is _RUNNING or state is _DRAINING:
                return
            # Stopped meanwhile: the line may sit after the final take. Write the leftovers.
            self._write_sync(())
        else:
            self._write_sync((line,))

    def _write_sync(self, lines: Sequence[bytes | DeferredLine]) -> None:
        """Write the queue's leftovers and ``lines`` on this thread; never waits past the shutdown bound."""
        if self.state is State.ABANDONED:
            self._abandon(len(lines) + self._discard_queue())
            return
        timeout = max(0.0, self._deadline - time.monotonic()) if self._deadline != float("inf") else -1
        if not self._write_lock.acquire(timeout=timeout):
            self._abandon(len(lines) + self._discard_queue())
            return
        try:
            self._write_batch([*self.queue.take(), *lines])
        finally:
            self._write_lock.release()

    # -- listener side ----------------------------------------------------------------------
    def start(self) -> None:
        with self._control:
            if self.state is State.RUNNING:
                return
            self._start_listener()

    def _start_listener(self) -> None:
        self._move(State.RUNNING)
        self._deadline = float("inf")
        self._thread = threading.Thread(target=self._run, name="log-listener", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        queue = self.queue
        interval = self.settings.drop_report_interval
        while True:
            queue.wait(interval if queue.drop else None)
            if self.state is State.RUNNING:
                queue.linger(LINGER)
            with self._write_lock:
                self._write_batch(queue.take())
                if queue.dropped != self._reported_drops:
                    self._send(self._drop_report(force=False))
            if self.state is not State.RUNNING and not len(queue):
                return

    def _write_batch(self, items: list[Item]) -> None:
        """Write ``items`` (lines, lines to render, flush barriers) in order, at most ``CHUNK`` at a time.
        Holds the write lock."""
        if len(items) <= CHUNK:  # a web server's batch: one chunk, no copy
            self._write_chunk(items)
            return
        for start in range(0, len(items), CHUNK):
            self._write_chunk(items[start : start + CHUNK])

    def _write_chunk(self, items: list[Item]) -> None:
        try:  # each deferred line's own renderer, called inline: a Python frame less per line
            rendered = [item[0](item) if type(item) is tuple else item for item in items]
        except Exception:  # not expected (renderers fall back to text): render_deferred says what broke
            rendered = [render_deferred(item) if type(item) is tuple else item for item in items]
        batch = cast("list[bytes | _Barrier]", rendered)
        try:  # the common chunk is lines only: one join in C, no loop over the items
            data = b"".join(cast("list[bytes]", batch))
        except TypeError:  # a flush barrier is in the chunk: everything before it is written first
            lines: list[bytes] = []
            for item in batch:
                if isinstance(item, _Barrier):
                    self._send(lines)
                    lines = []
                    item.event.set()
                else:
                    lines.append(item)
            self._send(lines)
        else:
            if data:
                self._send(cast("list[bytes]", batch), data)

    def _send(self, lines: list[bytes], data: bytes | None = None) -> None:
        observer = self.observer
        if observer is not None:
            self._tell_drops(observer)
        if not lines:
            return
        if data is None:
            data = b"".join(lines)
        self._in_flight = len(lines)
        started = time.perf_counter()
        failed = 0
        for sink in self.sinks:
            if sink.write(data) is False:
                failed += 1
                if observer is not None:
                    observer.write_failed(sink.name, len(lines))
        self._in_flight = 0
        if observer is not None:
            seconds = time.perf_counter() - started
            observer.batch_written(lines, seconds, len(self.queue), self.queue.maxsize)
            if failed and failed == len(self.sinks):
                observer.lines_dropped("write_error", len(lines))

    def _tell_drops(self, observer: PipelineObserver) -> None:
        dropped = self.queue.dropped
        if dropped != self._seen_drops:
            observer.lines_dropped("queue_full", dropped - self._seen_drops)
            self._seen_drops = dropped

    def _abandon(self, count: int) -> None:
        if count <= 0:
            return
        self.abandoned += count
        observer = self.observer
        if observer is not None:
            observer.lines_dropped("shutdown", count)

    def _drop_report(self, *, force: bool) -> list[bytes]:
        """The line that reports drops since the last report (at most one per LOG_DROP_REPORT_INTERVAL)."""
        now = time.monotonic()
        dropped = self.queue.dropped
        if dropped == self._reported_drops or (
            not force and now - self._last_drop_report < self.settings.drop_report_interval
        ):
            return []
        count = dropped - self._reported_drops
        self._reported_drops = dropped
        self._last_drop_report = now
        message = f"log queue full (LOG_OVERFLOW=drop): dropped {count} records since the last report"
        return [render_event("WARNING", "service.logs", message, func="listener", dropped=count, dropped_total=dropped)]

    def _discard_queue(self) -> int:
        """Give up what is queued (the output is stalled); release flush waiters. Returns the lines given up."""
        lines = 0
        for item in self.queue.take():
            if isinstance(item, _Barrier):
                item.event.set()
            else:
                lines += 1
        return lines

    # -- control ----------------------------------------------------------------------------
    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued before this call is written. False on timeout."""
        if self.state is not State.RUNNING:
            return True
        barrier = _Barrier()
        self.queue.put(barrier)
        self.queue.hurry()
        if self.state is not State.RUNNING:  # drained meanwhile: the barrier may be among the leftovers
            self._write_sync(())
        return barrier.event.wait(timeout)

    def drain(self, timeout: float | None = None) -> int:
        """Write everything queued and stop the listener; later lines are written by the thread that logs them.

        Waits at most ``timeout`` seconds (default LOG_SHUTDOWN_TIMEOUT). When that runs out (stdout stalled),
        the lines still unwritten are given up, reported on stderr in one JSON line, and later lines are
        counted instead of waited on. Returns the number of lines given up.
        """
        bound = self.settings.shutdown_timeout if timeout is None else timeout
        with self._control:
            if self.state is not State.RUNNING:
                return 0
            self._deadline = time.monotonic() + bound
            self._move(State.DRAINING)
            self.queue.close()  # blocked producers go on: the listener writes until the queue stays empty
            thread = self._thread
            if thread is not None and thread is not threading.current_thread():
                thread.join(bound)
                if thread.is_alive():
                    return self._give_up(bound)
            # A line queued from now on is written by its producer, which sees STOPPED after its append;
            # one queued before is taken here.
            self._move(State.STOPPED)
            self._write_sync(self._drop_report(force=True))
            self._deadline = float("inf")
            return self._give_up(bound) if self.abandoned else 0

    def _give_up(self, bound: float) -> int:
        if self.state is State.DRAINING:
            self._move(State.ABANDONED)
        self._abandon(self._in_flight + self._discard_queue())
        report_fault(
            f"log output stalled: {self.abandoned} lines could not be written within LOG_SHUTDOWN_TIMEOUT={bound:g}s",
            "ERROR",
            lines_lost=self.abandoned,
        )
        return self.abandoned

    def close(self) -> None:
        """Drain, then close the sinks (unless the output is stalled: closing would wait on it)."""
        self.drain()
        if self.state is State.ABANDONED:
            return
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:
                report_fault(f"closing {sink!r} failed: {exc!r}", "ERROR")

    def resume(self) -> None:
        """A fresh listener after ``drain()`` (a new lifespan in the same process). Not after ABANDONED."""
        with self._control:
            if self.state is not State.STOPPED:
                return
            self.queue = BatchQueue(self.settings.queue_size, self.settings.overflow)
            self._seen_drops = self._reported_drops = 0
            self._start_listener()

    def after_fork_in_child(self) -> None:
        """The parent's listener thread does not exist here, and its locks may have been held at the fork.

        Lines queued in the parent are the parent's to write: the child starts with an empty queue.
        """
        self._control = threading.RLock()
        self._write_lock = threading.Lock()
        self.queue = BatchQueue(self.settings.queue_size, self.settings.overflow)
        self._seen_drops = self._reported_drops = 0
        if self.state is State.RUNNING:
            self._start_listener()
