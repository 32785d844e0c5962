"""The active file of this process's slot: opened, checked against its path, rotated at midnight."""

from __future__ import annotations

import contextlib
import os
import time
from datetime import date
from pathlib import Path

from service.logs.files.compress import Compressor
from service.logs.files.rotation import Days, archive
from service.logs.files.slot import SlotLock
from service.logs.sinks import report_fault

__all__ = ["ActiveFile"]

_OPEN_FLAGS = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC


def _open_append(path: Path) -> int:
    return os.open(path, _OPEN_FLAGS, 0o644)


def _repair_tail(fd: int, size: int, path: Path) -> None:
    """A process killed mid-write can leave half a line: cut it, so no line is ever corrupt."""
    if os.pread(fd, 1, size - 1) == b"\n":
        return
    end = size
    keep = 0
    while end > 0:
        start = max(0, end - 65_536)
        newline = os.pread(fd, end - start, start).rfind(b"\n")
        if newline != -1:
            keep = start + newline + 1
            break
        end = start
    os.ftruncate(fd, keep)
    report_fault(f"{path}: removed an incomplete last line ({size - keep} bytes) left by a writer that died")


class ActiveFile:
    """The file this process appends to. Every method may raise OSError: the sink handles faults."""

    def __init__(
        self, slot: SlotLock, first_slot: int, days: Days, compressor: Compressor | None, check_interval: float
    ) -> None:
        self.slot = slot
        self.first_slot = first_slot  # 0: try the main process's file first; 1: worker slots only
        self.days = days
        self.compressor = compressor  # None: rotated files stay uncompressed
        self.interval = check_interval
        self.fd: int | None = None
        self.rollover_at = 0.0
        self.check_at = 0.0  # monotonic: next check that the path still names our open file
        self._ident = (0, 0)
        self._period = date.min

    def open(self, now: float) -> None:
        """Claim the slot and open its file; cut a torn last line; archive lines of an earlier day."""
        self.slot.directory.mkdir(parents=True, exist_ok=True)
        fd = self.slot.claim(self.first_slot, _open_append)
        path = self.slot.path
        assert path is not None
        today = self.days.day_of(now)
        try:
            st = os.fstat(fd)
            if st.st_size:
                _repair_tail(fd, st.st_size, path)
                st = os.fstat(fd)
            if st.st_size and st.st_mtime < self.days.start_of(today):
                os.close(fd)  # an earlier run's lines, or idle across midnight: rotate them now
                fd = -1
                self._archive(path, self.days.day_of(st.st_mtime))
                fd = _open_append(path)
                st = os.fstat(fd)
        except BaseException:
            if fd >= 0:
                os.close(fd)
            raise
        self.fd = fd
        self._ident = (st.st_dev, st.st_ino)
        self._period = today
        self.rollover_at = self.days.end_of(today)
        self.check_at = time.monotonic() + self.interval

    def _archive(self, path: Path, day: date) -> None:
        assert self.slot.slot is not None
        target = archive(path, self.slot.name, self.slot.slot, day)
        if self.compressor is not None:
            self.compressor.submit(target)

    def rotate(self, now: float) -> None:
        """Archive the file under the day it covers (when it has lines) and open a fresh one."""
        fd, path = self.fd, self.slot.path
        assert fd is not None and path is not None
        self.fd = None
        try:
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        if size:
            self._archive(path, self._period)
        self.open(now)

    def append(self, data: bytes) -> None:
        fd = self.fd
        assert fd is not None
        view = memoryview(data)
        done = 0
        try:
            while done < len(data):
                done += os.write(fd, view[done:])
        except OSError:
            if done:  # disk full mid-batch: take the torn part back, so no line is ever half-written
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, max(0, os.fstat(fd).st_size - done))
            raise

    def verify(self, now: float) -> None:
        """Reopen (and say so) when our file is no longer at its path, or our lock no longer in the directory."""
        self.check_at = time.monotonic() + self.interval
        gone = self.slot.path
        assert gone is not None
        try:
            st = gone.stat()
            same = (st.st_dev, st.st_ino) == self._ident and self.slot.held()
        except OSError:
            same = False
        if same:
            return
        self.close()
        self.open(now)
        report_fault(f"{gone} was moved or removed by something else (or its directory was); reopened {self.slot.path}")

    def close(self) -> None:
        fd, self.fd = self.fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
