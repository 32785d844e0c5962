"""What the pipeline tells an observer about its health (metrics hook up here). Called on the listener
thread (or the thread that drains at shutdown), once per written batch: never once per log call."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

__all__ = ["DropReason", "PipelineObserver"]

#: Why lines were lost: the queue was full (``LOG_OVERFLOW=drop``), every sink failed to write them,
#: or the shutdown bound ran out before they could be written.
DropReason = Literal["queue_full", "write_error", "shutdown"]


class PipelineObserver(Protocol):
    def batch_written(self, lines: Sequence[bytes], seconds: float, queue_depth: int, capacity: int) -> None:
        """A batch went to the sinks: its rendered lines, how long the write took, the queue after the take."""

    def write_failed(self, sink: str, lines: int) -> None:
        """Sink ``sink`` (its ``name``) could not write ``lines`` lines of a batch."""

    def lines_dropped(self, reason: DropReason, count: int) -> None:
        """``count`` lines never reached any sink, for ``reason``."""
