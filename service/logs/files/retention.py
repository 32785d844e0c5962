"""The retention sweep: remove every file of a log set last written before a cutoff, nothing else."""

from __future__ import annotations

from pathlib import Path

from service.logs.files.directory import os_error_text
from service.logs.files.names import log_files
from service.logs.sinks import report_fault

__all__ = ["sweep"]


def sweep(directory: Path, name: str, cutoff: float, *, keep: Path | None = None) -> list[Path]:
    """Delete the files of the set ``name`` whose mtime is before ``cutoff``; return the paths removed.

    Every slot's files count, current or orphaned (a worker count lowered, an earlier run, a
    different host's clock), rotated or not, gzipped or not. ``keep`` (the caller's own open file
    holds the current day, whatever its mtime says) and files of other names are never touched.
    """
    removed: list[Path] = []
    try:
        candidates = log_files(directory, name, partial=True)
    except OSError:
        return removed  # the directory is gone: the write path reports that
    for info in candidates:
        if info.path == keep:
            continue
        try:
            if info.path.stat(follow_symlinks=False).st_mtime < cutoff:
                info.path.unlink()
                removed.append(info.path)
        except FileNotFoundError:
            continue  # another process's sweep got there first
        except OSError as exc:
            report_fault(f"retention: cannot remove {info.path}: {os_error_text(exc)}")
    return removed
