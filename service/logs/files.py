"""File mode: one file per process named by a stable slot, midnight rotation, retention over the whole set.

With ``LOG_FILE_NAME=app`` the files in ``LOG_DIR`` are::

    app.log                        the main process (a single-process run, or uvicorn's supervisor)
    app-w1.log, app-w2.log, ...    worker slots: the lowest free slot, held with an exclusive flock
                                   on ``.app-w1.lock`` for the life of the process
    app-w1.2026-11-24.log[.gz]     rotated at midnight, named after the day its lines were written
    app-w1.2026-11-24.1.log[.gz]   a second file for the same day (clock set back, LOG_ROTATE_UTC changed)

A replacement worker claims the slot its dead predecessor held (the kernel drops a dead process's
flock), so it writes the same file; two live processes never share one. All writing, rotating and
sweeping happens in ``FileSink.write`` (the listener thread); gzip runs on a helper thread so a big
file never stalls the queue. ``FileSink.write`` never raises: a disk fault is reported once on stderr,
the lines of the outage are counted, and the file is reopened as soon as that works again.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import gzip
import multiprocessing
import os
import re
import shutil
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from functools import lru_cache
from itertools import chain, count
from pathlib import Path

from service.logs.sinks import report_fault
from service.settings import ENV_PREFIX, LogSettings, SettingsError

__all__ = ["FileSink", "LogFile", "check_log_dir", "log_files", "parse_log_name"]

_DAY = 86_400
_OPEN_FLAGS = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
_GZIP_LEVEL = 6  # ~3x faster than gzip's default 9 for a few percent more bytes


# -- names -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LogFile:
    """One file of a log set, as read from its name."""

    path: Path
    slot: int  # 0: the main process's file; N: worker slot N
    day: date | None  # None: the active (not yet rotated) file
    seq: int  # 0, or N for the N+1st rotated file of the same day
    gz: bool
    partial: bool  # an unfinished ``.gz.part`` left by an interrupted compression


@lru_cache(maxsize=16)
def _name_pattern(name: str) -> re.Pattern[str]:
    return re.compile(
        rf"^{re.escape(name)}(?:-w(?P<slot>[1-9][0-9]*))?"
        r"(?:\.(?P<day>[0-9]{4}-[0-9]{2}-[0-9]{2})(?:\.(?P<seq>[1-9][0-9]*))?)?"
        r"\.log(?:(?P<gz>\.gz)(?P<part>\.part)?)?$"
    )


def parse_log_name(filename: str, name: str, directory: Path = Path()) -> LogFile | None:
    """The ``LogFile`` a file name denotes in the log set ``name``, or None for any other file."""
    match = _name_pattern(name).match(filename)
    if match is None:
        return None
    day = match["day"]
    try:
        parsed_day = date.fromisoformat(day) if day else None
    except ValueError:
        return None
    if day is None and match["gz"]:
        return None  # an active file is never compressed: not ours
    return LogFile(
        path=directory / filename,
        slot=int(match["slot"] or 0),
        day=parsed_day,
        seq=int(match["seq"] or 0),
        gz=bool(match["gz"]),
        partial=bool(match["part"]),
    )


def log_files(directory: Path, name: str, *, partial: bool = False) -> list[LogFile]:
    """Every regular file of the log set ``name`` in ``directory`` (``.gz.part`` only when asked)."""
    found = []
    with os.scandir(directory) as entries:
        for entry in entries:
            info = parse_log_name(entry.name, name, directory)
            if info is None or (info.partial and not partial):
                continue
            with contextlib.suppress(OSError):
                if entry.is_file(follow_symlinks=False):
                    found.append(info)
    return found


def _stem(name: str, slot: int) -> str:
    return name if slot == 0 else f"{name}-w{slot}"


def _describe(exc: OSError) -> str:
    reason = exc.strerror or type(exc).__name__
    if exc.errno is not None:
        reason += f" [{errno.errorcode.get(exc.errno, exc.errno)}]"
    return reason


# -- startup check -----------------------------------------------------------------------------
def _dir_error(directory: Path, exc: OSError) -> SettingsError:
    if isinstance(exc, FileExistsError) or (directory.exists() and not directory.is_dir()):
        why = "exists and is not a directory"
    else:
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(directory) else ""
        why = f"cannot create or write the log directory: {_describe(exc)}{where}"
    return SettingsError(f"invalid setting {ENV_PREFIX}DIR={str(directory)!r}: {why}")


def check_log_dir(directory: Path) -> Path:
    """Create ``directory`` if needed and prove a file can be created in it. Raise SettingsError."""
    directory = Path(directory).absolute()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".probe-{os.getpid()}-{threading.get_ident()}"
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        os.close(fd)
        probe.unlink()
    except OSError as exc:
        raise _dir_error(directory, exc) from None
    return directory


# -- compression -------------------------------------------------------------------------------
def _gzip_file(path: Path) -> None:
    """``x.log`` -> ``x.log.gz`` via ``x.log.gz.part``, keeping the mtime (retention reads it)."""
    target = path.with_name(path.name + ".gz")
    part = path.with_name(path.name + ".gz.part")
    try:
        st = path.stat()
        with path.open("rb") as src, part.open("wb") as raw:
            with gzip.GzipFile(
                filename="", mode="wb", fileobj=raw, compresslevel=_GZIP_LEVEL, mtime=int(st.st_mtime)
            ) as gz:
                shutil.copyfileobj(src, gz, 1 << 20)
            raw.flush()
            os.fsync(raw.fileno())
        os.utime(part, (st.st_atime, st.st_mtime))
        part.replace(target)
        path.unlink()
    except FileNotFoundError:
        with contextlib.suppress(OSError):
            part.unlink()
    except OSError as exc:
        with contextlib.suppress(OSError):
            part.unlink()
        report_fault(f"cannot compress {path}: {_describe(exc)}; left uncompressed")


class _Compressor:
    """gzip rotated files on a short-lived helper thread, one at a time, in order."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._pending: deque[Path] = deque()
        self._busy = False
        self._thread: threading.Thread | None = None

    def submit(self, path: Path) -> None:
        with self._cond:
            self._pending.append(path)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="log-gzip", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._pending:
                    self._thread = None  # no idle thread lingers between midnights
                    self._cond.notify_all()
                    return
                path = self._pending.popleft()
                self._busy = True
            try:
                _gzip_file(path)
            except Exception as exc:  # never let the helper die silently
                report_fault(f"cannot compress {path}: {exc!r}")
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every submitted file is compressed. False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending and not self._busy, timeout)


# -- the sink ----------------------------------------------------------------------------------
_live_sinks: weakref.WeakSet[FileSink] = weakref.WeakSet()


class FileSink:
    """Write batches to this process's slot file; rotate at midnight; sweep files past retention.

    ``worker`` decides the first slot tried: the main process tries ``app.log`` first, a worker
    (a process with a multiprocessing parent, or a forked child) the ``app-wN.log`` slots only.
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
        self.name = name
        self.retention_days = retention_days
        self.utc = utc
        self.compress = compress
        self.worker = multiprocessing.parent_process() is not None if worker is None else worker
        self._clock = clock
        self._interval = check_interval
        self.slot: int | None = None
        self.path: Path | None = None
        self._lock_fd: int | None = None
        self._fd: int | None = None
        self._ident = (0, 0)
        self._period = date.min
        self._rollover_at = 0.0
        self._check_at = 0.0  # monotonic: next check that the path still names our open file
        self._retry_at = 0.0  # monotonic: next reopen attempt after a fault
        self._faulted = False
        self._lost = 0
        self._compressor = _Compressor()
        now = clock()
        try:
            check_log_dir(self.directory)
            self._open(now)
        except OSError as exc:
            self._close_fds()
            raise _dir_error(self.directory, exc) from None
        self._compress_leftovers()
        self.sweep(now)
        _live_sinks.add(self)

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

    def __repr__(self) -> str:
        return f"FileSink({str(self.path or self.directory)!r})"

    # -- days ----------------------------------------------------------------------------------
    def _day_of(self, ts: float) -> date:
        return (datetime.fromtimestamp(ts, UTC) if self.utc else datetime.fromtimestamp(ts)).date()

    def _start_of(self, day: date) -> float:
        """The epoch time of ``day``'s midnight, local (DST-aware, via mktime) or UTC."""
        return datetime.combine(day, dtime(), UTC if self.utc else None).timestamp()

    # -- slot ----------------------------------------------------------------------------------
    def _lock_path(self, slot: int) -> Path:
        return self.directory / f".{_stem(self.name, slot)}.lock"

    def _holds_current_lock(self) -> bool:
        if self._lock_fd is None or self.slot is None:
            return False
        try:
            on_disk = self._lock_path(self.slot).stat()
        except OSError:
            return False
        held = os.fstat(self._lock_fd)
        return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)

    def _claim(self) -> None:
        """Hold the lowest free slot (our previous one first), by an exclusive non-blocking flock."""
        if self._holds_current_lock():
            return
        if self._lock_fd is not None:  # the directory was removed or replaced under us
            os.close(self._lock_fd)
            self._lock_fd = None
        previous = [self.slot] if self.slot is not None else []
        for slot in chain(previous, count(1 if self.worker else 0)):
            lock_path = self._lock_path(slot)
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                on_disk = lock_path.stat()
                held = os.fstat(fd)
                if (on_disk.st_dev, on_disk.st_ino) != (held.st_dev, held.st_ino):
                    raise BlockingIOError  # replaced between open and lock: not a lock anyone sees
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())  # who holds the slot, for people
            except BlockingIOError:
                os.close(fd)
                continue
            except BaseException:
                os.close(fd)
                raise
            self._lock_fd = fd
            self.slot = slot
            self.path = self.directory / f"{_stem(self.name, slot)}.log"
            return

    # -- open, rotate, sweep -------------------------------------------------------------------
    def _open(self, now: float) -> None:
        """Claim the slot, open its file, clean a torn last line, and archive a previous day's file."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._claim()
        path = self.path
        assert path is not None
        today = self._day_of(now)
        fd = os.open(path, _OPEN_FLAGS, 0o644)
        try:
            st = os.fstat(fd)
            if st.st_size:
                self._repair_tail(fd, st.st_size, path)
                st = os.fstat(fd)
            if st.st_size and st.st_mtime < self._start_of(today):
                # Lines of an earlier day (a previous run, or idle across midnight): rotate them now.
                os.close(fd)
                fd = -1
                self._archive(path, self._day_of(st.st_mtime))
                fd = os.open(path, _OPEN_FLAGS, 0o644)
                st = os.fstat(fd)
        except BaseException:
            if fd >= 0:
                os.close(fd)
            raise
        self._fd = fd
        self._ident = (st.st_dev, st.st_ino)
        self._period = today
        self._rollover_at = self._start_of(today + timedelta(days=1))
        self._check_at = time.monotonic() + self._interval

    @staticmethod
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

    def _archive(self, path: Path, day: date) -> None:
        """Rename the active file to its dated name (never over an existing one); queue the gzip."""
        assert self.slot is not None
        stem = _stem(self.name, self.slot)
        for seq in count():
            suffix = f".{seq}" if seq else ""
            target = self.directory / f"{stem}.{day.isoformat()}{suffix}.log"
            if not target.exists() and not target.with_name(target.name + ".gz").exists():
                break
        path.rename(target)
        if self.compress:
            self._compressor.submit(target)

    def _rotate(self, now: float) -> None:
        fd = self._fd
        assert fd is not None and self.path is not None
        self._fd = None
        try:
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        if size:
            self._archive(self.path, self._period)
        self._open(now)
        self.sweep(now)

    def sweep(self, now: float | None = None) -> list[Path]:
        """Delete every file of this log set last written more than ``retention_days`` ago.

        Every slot's files count, current or orphaned (a worker count lowered, an earlier run, a
        different host's clock), rotated or not, gzipped or not. Other files are never touched.
        Returns the paths removed.
        """
        cutoff = (self._clock() if now is None else now) - self.retention_days * _DAY
        removed: list[Path] = []
        try:
            candidates = log_files(self.directory, self.name, partial=True)
        except OSError:
            return removed  # the directory is gone: the write path reports that
        for info in candidates:
            if info.path == self.path:
                continue  # our own open file holds the current day, whatever its mtime says
            try:
                if info.path.stat(follow_symlinks=False).st_mtime < cutoff:
                    info.path.unlink()
                    removed.append(info.path)
            except FileNotFoundError:
                continue  # another process's sweep got there first
            except OSError as exc:
                report_fault(f"retention: cannot remove {info.path}: {_describe(exc)}")
        return removed

    def _compress_leftovers(self) -> None:
        """Finish what an earlier holder of this slot left: rotated but uncompressed files, ``.part`` files."""
        if self.slot is None:
            return
        try:
            mine = [f for f in log_files(self.directory, self.name, partial=True) if f.slot == self.slot]
        except OSError:
            return
        for info in mine:
            if info.partial:
                with contextlib.suppress(OSError):
                    info.path.unlink()
        if self.compress:
            for info in sorted(mine, key=lambda f: (f.day or date.max, f.seq)):
                if info.day is not None and not info.gz:
                    self._compressor.submit(info.path)

    # -- the Sink protocol -----------------------------------------------------------------------
    def write(self, data: bytes) -> bool:
        """Append a batch of complete lines; False when they could not be written. Never raises."""
        try:
            now = self._clock()
            if self._fd is None:
                if time.monotonic() < self._retry_at:
                    self._lost += data.count(b"\n")
                    return False
                self._open(now)
            elif time.monotonic() >= self._check_at:
                self._verify(now)
            if now >= self._rollover_at:
                self._rotate(now)
            self._append(data)
            if self._faulted:
                self._recovered()
            return True
        except OSError as exc:
            self._fault(exc, data)
        except Exception as exc:  # a bug must not take logging down with it
            self._fault(OSError(errno.EIO, f"unexpected {exc!r}"), data)
        return False

    def _append(self, data: bytes) -> None:
        fd = self._fd
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

    def _verify(self, now: float) -> None:
        """Once a second: is our file still at its path, and our lock still in the directory?"""
        self._check_at = time.monotonic() + self._interval
        assert self.path is not None
        try:
            st = self.path.stat()
            same = (st.st_dev, st.st_ino) == self._ident and self._holds_current_lock()
        except OSError:
            same = False
        if same:
            return
        gone = self.path
        self._close_file()
        self._open(now)  # raises when that fails: the caller reports a fault
        report_fault(f"{gone} was moved or removed by something else (or its directory was); reopened {self.path}")

    def _fault(self, exc: OSError, data: bytes) -> None:
        self._close_file()
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
        return f"{_describe(exc)}{where}"

    def _recovered(self) -> None:
        self._faulted = False
        lost, self._lost = self._lost, 0
        report_fault(f"resumed writing {self.path}; {lost} lines could not be written to files meanwhile")

    def _close_file(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def _close_fds(self) -> None:
        self._close_file()
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)  # releases the slot

    def wait_compressed(self, timeout: float | None = None) -> bool:
        """Block until rotated files queued for gzip are done. False on timeout."""
        return self._compressor.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Close the file, give a running gzip ``timeout`` seconds, release the slot."""
        self._close_file()
        self._compressor.wait(timeout)  # unfinished: the next holder of the slot completes it
        self._close_fds()
        self._lost = 0

    def _after_fork_in_child(self) -> None:
        """A forked child must not share the parent's file or slot: drop both, claim a worker slot on write."""
        for fd in (self._fd, self._lock_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)  # our copy only: the parent keeps its flock
        self._fd = None
        self._lock_fd = None
        self.slot = None
        self.path = None
        self.worker = True
        self._retry_at = 0.0
        self._compressor = _Compressor()


def _after_fork() -> None:
    for sink in list(_live_sinks):
        sink._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
