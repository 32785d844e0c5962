"""Where rendered lines go. A sink gets whole batches of newline-terminated JSON lines, on one thread."""

from __future__ import annotations

import contextlib
import io
import sys
from typing import IO, Any, Protocol

__all__ = ["Sink", "StreamSink", "report_fault"]


class Sink(Protocol):
    #: A short, bounded label for health reporting ("stdout", "file").
    name: str

    def write(self, data: bytes) -> bool:
        """Write a batch of complete lines; False when it was lost. Must not raise: report faults, carry on."""

    def close(self) -> None: ...


def report_fault(message: str) -> None:
    """One plain line on stderr about the logging machinery itself (it cannot log through itself)."""
    try:
        sys.__stderr__.write(f"logging: {message}\n")  # type: ignore[union-attr]
        sys.__stderr__.flush()  # type: ignore[union-attr]
    except Exception:
        pass


class StreamSink:
    """A stream such as stdout: binary writes to its buffer, flushed once per batch."""

    name = "stdout"

    def __init__(self, stream: IO[Any] | None = None) -> None:
        self._stream = stream if stream is not None else sys.stdout
        self._faulted = False

    def write(self, data: bytes) -> bool:
        stream = self._stream
        try:
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
                report_fault(f"cannot write to {getattr(stream, 'name', stream)!s}: {exc!r}")
            return False

    def close(self) -> None:
        with contextlib.suppress(Exception):  # a closed or broken stream has nothing left to flush
            self._stream.flush()
