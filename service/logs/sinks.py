"""Where rendered lines go. A sink gets whole batches of newline-terminated JSON lines, on one thread."""

from __future__ import annotations

import contextlib
import io
import os
import select
import stat
import sys
from collections.abc import Iterator
from typing import IO, Any, Protocol

from service.logs.format import render_event

__all__ = ["Sink", "StreamSink", "report_fault"]


class Sink(Protocol):
    #: A short, bounded label for health reporting ("stdout", "file").
    name: str

    def write(self, data: bytes) -> bool:
        """Write a batch of complete lines; False when it was lost. Must not raise: report faults, carry on."""

    def close(self) -> None: ...


def report_fault(message: str, level: str = "WARNING", **fields: Any) -> None:
    """One JSON line on stderr about the logging machinery itself (it cannot log through itself)."""
    stderr = sys.__stderr__
    if stderr is None:
        return
    with contextlib.suppress(Exception):  # stderr closed too: nothing left to tell
        stderr.write(render_event(level, "service.logs", message, **fields).decode())
        stderr.flush()


def _fd_of(stream: IO[Any]) -> int | None:
    """The file descriptor behind ``stream``, when it is a real one (not pytest's capture or a BytesIO)."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    return fd if isinstance(fd, int) and fd >= 0 else None


class StreamSink:
    """A stream such as stdout, written once per batch.

    A real file descriptor is written with ``os.write``, not through ``sys.stdout.buffer``: a write stuck on
    a stalled pipe then holds no lock that the interpreter's exit (flushing stdout) or ``print`` would wait on.
    """

    name = "stdout"

    def __init__(self, stream: IO[Any] | None = None) -> None:
        self._stream = stream if stream is not None else sys.stdout
        self._fd = _fd_of(self._stream)
        self._chunk = _atomic_size(self._fd)
        self._faulted = False

    def write(self, data: bytes) -> bool:
        stream = self._stream
        try:
            if self._fd is not None:
                if self._chunk and len(data) > self._chunk:
                    for piece in _line_chunks(data, self._chunk):
                        self._write_fd(self._fd, piece)
                else:
                    self._write_fd(self._fd, data)
            else:
                buffer = getattr(stream, "buffer", None)
                if buffer is None and isinstance(stream, io.BufferedIOBase | io.RawIOBase):
                    buffer = stream
                if buffer is not None:
                    buffer.write(data)
                    buffer.flush()
                else:
                    stream.write(data.decode())
                    stream.flush()
            self._faulted = False
            return True
        except Exception as exc:  # closed or broken pipe: say so once per episode, keep the service up
            if not self._faulted:
                self._faulted = True
                report_fault(f"cannot write to {getattr(stream, 'name', stream)!s}: {exc!r}", "ERROR")
            return False

    @staticmethod
    def _write_fd(fd: int, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]

    def close(self) -> None:
        with contextlib.suppress(Exception):  # a closed or broken stream has nothing left to flush
            self._stream.flush()


def _atomic_size(fd: int | None) -> int:
    """PIPE_BUF when ``fd`` is a pipe or socket that other processes may share (uvicorn workers, a forked
    child): the kernel keeps a write of at most that size whole, so a batch is written in line-aligned
    pieces of that size and no process's line is ever torn by another's. 0 (no splitting) otherwise."""
    if fd is None:
        return 0
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return 0
    return select.PIPE_BUF if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) else 0


def _line_chunks(data: bytes, size: int) -> Iterator[memoryview]:
    """``data`` (whole lines) in pieces of at most ``size`` bytes that end at a newline; a longer line alone."""
    view = memoryview(data)
    start, end = 0, len(data)
    while start < end:
        cut = data.rfind(b"\n", start, start + size)
        if cut < 0:  # one line longer than ``size``: it cannot be atomic, but it goes out alone
            cut = data.find(b"\n", start + size)
            if cut < 0:
                cut = end - 1
        yield view[start : cut + 1]
        start = cut + 1
