"""``FileSink``: this process's slot file, rotated at midnight, swept past retention; faults never raise.

All writing, rotating and sweeping happens in ``FileSink.write`` (the listener thread); gzip runs on a
helper thread. A disk fault is reported once on stderr, the lines of the outage are counted, and the
file is reopened as soon as that works again.
"""

from __future__ import annotations

import errno
import multiprocessing
import os
import time
import weakref
from collections.abc import Callable
from pathlib import Path

from service.logs.files.active import ActiveFile
from service.logs.files.compress import Compressor
from service.logs.files.directory import log_dir_error, os_error_text, probe_log_dir
from service.logs.files.retention import sweep
from service.logs.files.rotation import Days
from service.logs.files.slot import SlotLock
from service.logs.sinks import report_fault
from service.settings import LogSettings

__all__ = ["FileSink"]

_DAY = 86_400
_live_sinks: weakref.WeakSet[FileSink] = weakref.WeakSet()


class FileSink:
    """Write batches to this process's slot file; rotate at midnight; sweep files past retention.

    ``worker`` decides the first slot tried: the main process tries ``app.log`` first, a worker
    (a process with a multiprocessing parent, or a forked child) the ``app-wN.log`` slots only. When
    no slot can be written, the main process raises SettingsError (startup stops, exit 2); a worker
    reports the fault and retries, because its supervisor would restart a worker that dies forever.
    ``clock`` returns the wall time (seconds since the epoch): tests move it instead of waiting.
    """

    name = "file"

    def __init__(
        self,
        directory: Path | str,
        name: str = "app",
        *,
        retention_days: int = 7,
        utc: bool = False,
        compress: bool = False,
        worker: bool | None = None,
        clock: Callable[[], float] = time.time,
        check_interval: float = 1.0,
    ) -> None:
        if retention_days < 1:
            raise ValueError("retention_days must be at least 1")
        self.directory = Path(directory).absolute()
        self.file_name = name
        self.retention_days = retention_days
        self.compress = compress
        self._days = Days(utc)
        self._clock = clock
        self._interval = check_interval
        self._retry_at = 0.0  # monotonic: next reopen attempt after a fault
        self._faulted = False
        self._lost = 0
        self._file = self._new_file(multiprocessing.parent_process() is not None if worker is None else worker)
        now = clock()
        try:
            probe_log_dir(self.directory)
            self._file.open(now)
        except OSError as exc:
            if not self.worker:
                self._file.slot.release()
                raise log_dir_error(self.directory, exc) from None
            self._fault(exc, b"")
        if self.slot is not None:
            self._compressor.resume(self.directory, name, self.slot, compress=compress)
        self.sweep(now)
        _live_sinks.add(self)

    def _new_file(self, worker: bool) -> ActiveFile:
        self._compressor = Compressor()
        slot = SlotLock(self.directory, self.file_name)
        compressor = self._compressor if self.compress else None
        return ActiveFile(slot, 1 if worker else 0, self._days, compressor, self._interval)

    @classmethod
    def from_settings(cls, settings: LogSettings) -> FileSink:
        """The sink ``LOG_MODE=file|both`` asks for. Raises SettingsError for an unusable LOG_DIR."""
        return cls(
            settings.dir,
            settings.file_name,
            retention_days=settings.retention_days,
            utc=settings.rotate_utc,
            compress=settings.gzip,
        )

    @property
    def worker(self) -> bool:
        return self._file.first_slot > 0

    @property
    def slot(self) -> int | None:
        return self._file.slot.slot

    @property
    def path(self) -> Path | None:
        return self._file.slot.path

    def __repr__(self) -> str:
        return f"FileSink({str(self.path or self.directory)!r})"

    def write(self, data: bytes) -> bool:
        """Append a batch of complete lines; False when they could not be written. Never raises."""
        file = self._file
        try:
            now = self._clock()
            if file.fd is None:
                if time.monotonic() < self._retry_at:
                    self._lost += data.count(b"\n")
                    return False
                file.open(now)
            elif time.monotonic() >= file.check_at:
                file.verify(now)
            if now >= file.rollover_at:
                file.rotate(now)
                self.sweep(now)
            file.append(data)
            if self._faulted:
                self._recovered()
            return True
        except OSError as exc:
            self._fault(exc, data)
        except Exception as exc:  # a bug must not take logging down with it
            self._fault(OSError(errno.EIO, f"unexpected {exc!r}"), data)
        return False

    def sweep(self, now: float | None = None) -> list[Path]:
        """Delete every file of this log set last written more than ``retention_days`` ago; return them."""
        cutoff = (self._clock() if now is None else now) - self.retention_days * _DAY
        return sweep(self.directory, self.file_name, cutoff, keep=self.path)

    def wait_compressed(self, timeout: float | None = None) -> bool:
        """Block until rotated files queued for gzip are done. False on timeout."""
        return self._compressor.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Close the file, give a running gzip ``timeout`` seconds, release the slot."""
        self._file.close()
        self._compressor.wait(timeout)  # unfinished: the next holder of the slot completes it
        self._file.slot.release()
        self._lost = 0

    def _fault(self, exc: OSError, data: bytes) -> None:
        self._file.close()
        self._lost += data.count(b"\n")
        self._retry_at = time.monotonic() + self._interval
        if not self._faulted:
            self._faulted = True
            report_fault(
                f"cannot write {self.path or self.directory}: {self._explain(exc)}; file logging is paused "
                f"and retried every {self._interval:g}s (other outputs carry on)"
            )

    def _explain(self, exc: OSError) -> str:
        culprit = Path(os.fsdecode(exc.filename)) if exc.filename else None
        if culprit == self.directory and isinstance(exc, FileExistsError | NotADirectoryError):
            return f"the log directory {self.directory} is no longer a directory"
        where = f" ({culprit})" if culprit is not None and culprit != self.path else ""
        return f"{os_error_text(exc)}{where}"

    def _recovered(self) -> None:
        self._faulted = False
        lost, self._lost = self._lost, 0
        report_fault(f"resumed writing {self.path}; {lost} lines could not be written to files meanwhile")

    def _after_fork_in_child(self) -> None:
        """A forked child must not share the parent's file or slot: drop both, claim a worker slot on write."""
        self._file.close()  # our copies only: the parent keeps its file and its flocks
        self._file.slot.release()
        self._file = self._new_file(worker=True)
        self._retry_at = 0.0


def _after_fork() -> None:
    for sink in list(_live_sinks):
        sink._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
