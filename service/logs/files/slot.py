"""The slot claim: a process writes the lowest free slot whose file it can write, held by an exclusive flock.

A replacement worker claims the slot its dead predecessor held (the kernel drops a dead process's
flock), so it appends to the same file; two live processes never share one. A slot whose file this
process cannot write (``app-w1.log`` left read-only by another user) is reported once and passed
over; its lock stays held, so sibling workers pass it over silently instead of reporting it again.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import sys
from collections.abc import Callable
from itertools import chain, count
from pathlib import Path

from service.logs.files.directory import os_error_text
from service.logs.files.names import active_name, lock_name
from service.logs.format import render

__all__ = ["SlotLock"]

# An existing file we may not write: another slot will do. The same error on a path that does not
# exist yet means the directory itself refuses new files, and no slot would do.
_NOT_OURS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})


def _passable(exc: OSError, path: Path) -> bool:
    return exc.errno in _NOT_OURS and os.path.lexists(path)


def _same_file(path: Path, fd: int) -> bool:
    on_disk, held = path.stat(), os.fstat(fd)
    return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)


def _report_passed(path: Path, exc: OSError, chosen: Path) -> None:
    """One JSON line on stderr: the pipeline is not running yet when a slot is claimed at startup."""
    message = f"cannot write {path}: {os_error_text(exc)}; writing {chosen} instead"
    record = logging.LogRecord("service.logs.files", logging.WARNING, __file__, 0, message, None, None, "claim")
    record.tracking_id = None
    record.path = str(path)
    stream = sys.__stderr__
    if stream is not None:
        with contextlib.suppress(Exception):
            stream.write(render(record).decode())
            stream.flush()


class SlotLock:
    """This process's slot in ``directory`` for the log set ``name``: its number, file and lock."""

    def __init__(self, directory: Path, name: str) -> None:
        self.directory = directory
        self.name = name
        self.slot: int | None = None
        self._fd: int | None = None
        self._passed: list[int] = []  # locks of slots we cannot write, held so siblings skip them
        self._reported: set[Path] = set()

    @property
    def path(self) -> Path | None:
        """The slot's active file (None before the first claim)."""
        return None if self.slot is None else self.directory / active_name(self.name, self.slot)

    def held(self) -> bool:
        """Do we hold a lock, and is its file still the one in the directory (not removed or replaced)?"""
        if self._fd is None or self.slot is None:
            return False
        try:
            return _same_file(self.directory / lock_name(self.name, self.slot), self._fd)
        except OSError:
            return False

    def claim(self, first: int, open_file: Callable[[Path], int]) -> int:
        """Hold our slot (our previous one first, else the lowest free from ``first``); return ``open_file(path)``.

        Raises OSError when no slot can be written: the directory refuses new files.
        """
        held = self._fd if self.held() else None
        if held is None:
            self._close_lock()  # the directory was removed or replaced under us
        previous = [] if self.slot is None else [self.slot]
        passed: list[tuple[Path, OSError]] = []
        for slot in chain(previous, count(first)):
            fd = held if held is not None and slot == self.slot else self._lock(slot, passed)
            if fd is None:
                continue
            self._fd, self.slot = fd, slot  # ours from here on: a fault names this slot's file
            path = self.directory / active_name(self.name, slot)
            try:
                opened = open_file(path)
            except OSError as exc:
                if not _passable(exc, path):
                    raise
                self._passed.append(fd)
                self._fd = held = None
                self.slot = None  # until a slot works, faults name the directory
                passed.append((path, exc))
                continue
            for where, error in passed:
                if where not in self._reported:
                    self._reported.add(where)
                    _report_passed(where, error, path)
            return opened
        raise AssertionError("unreachable: count() never ends")

    def _lock(self, slot: int, passed: list[tuple[Path, OSError]]) -> int | None:
        """An fd holding ``slot``'s lock, or None when another process holds it (or we cannot open it)."""
        path = self.directory / lock_name(self.name, slot)
        writable = True
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            if not _passable(exc, path):
                raise
            try:  # a lock file left by another user still locks when opened read-only
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as again:
                if not _passable(again, path):
                    raise
                passed.append((path, again))
                return None
            writable = False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if not _same_file(path, fd):
                raise BlockingIOError  # replaced between open and lock: not a lock anyone sees
            if writable:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())  # who holds the slot, for people
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _close_lock(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def release(self) -> None:
        """Give up the slot and every passed-over lock (the kernel does the same when we die)."""
        self._close_lock()
        passed, self._passed = self._passed, []
        for fd in passed:
            with contextlib.suppress(OSError):
                os.close(fd)
