"""Compression of rotated files: gzip on a short-lived helper thread, so a big file never stalls the queue."""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import threading
from collections import deque
from pathlib import Path

from service.logs.files.directory import os_error_text
from service.logs.files.names import log_files, oldest_first
from service.logs.sinks import report_fault

__all__ = ["Compressor", "gzip_file"]

_GZIP_LEVEL = 6  # much faster than gzip's default 9 for a few percent more bytes


def gzip_file(path: Path) -> None:
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
        report_fault(f"cannot compress {path}: {os_error_text(exc)}; left uncompressed")


class Compressor:
    """gzip rotated files on a helper thread, one at a time, in order; the thread ends when idle."""

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

    def resume(self, directory: Path, name: str, slot: int, *, compress: bool) -> None:
        """Finish what an earlier holder of ``slot`` left: remove its ``.gz.part`` files, gzip its rotated ones."""
        try:
            mine = [f for f in log_files(directory, name, partial=True) if f.slot == slot]
        except OSError:
            return
        for info in mine:
            if info.partial:
                with contextlib.suppress(OSError):
                    info.path.unlink()
        if compress:
            for info in oldest_first(mine):
                if info.day is not None and not info.gz:
                    self.submit(info.path)

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
                gzip_file(path)
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
