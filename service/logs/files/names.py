"""The names of a file-mode log set: what each file is called, reading a name back, listing a set.

With ``LOG_FILE_NAME=app`` the files in ``LOG_DIR`` are::

    app.log                        the main process (a single-process run, or uvicorn's supervisor)
    app-w1.log, app-w2.log, ...    worker slots, each held with an exclusive flock on ``.app-w1.lock``
    app-w1.2026-11-24.log[.gz]     rotated at midnight, named after the day its lines were written
    app-w1.2026-11-24.1.log[.gz]   a second file for the same day (clock set back, LOG_ROTATE_UTC changed)

Both the writer and the ``logs`` command use this module, so it imports nothing heavy.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

__all__ = ["LogFile", "active_name", "dated_name", "lock_name", "log_files", "oldest_first", "parse_log_name"]


@dataclass(frozen=True, slots=True)
class LogFile:
    """One file of a log set, as read from its name."""

    path: Path
    slot: int  # 0: the main process's file; N: worker slot N
    day: date | None  # None: the active (not yet rotated) file
    seq: int  # 0, or N for the N+1st rotated file of the same day
    gz: bool
    partial: bool  # an unfinished ``.gz.part`` left by an interrupted compression


def _stem(name: str, slot: int) -> str:
    return name if slot == 0 else f"{name}-w{slot}"


def active_name(name: str, slot: int) -> str:
    """The file a slot writes now: ``app.log``, ``app-w1.log``."""
    return f"{_stem(name, slot)}.log"


def lock_name(name: str, slot: int) -> str:
    """The slot's lock file: ``.app.lock``, ``.app-w1.lock``."""
    return f".{_stem(name, slot)}.lock"


def dated_name(name: str, slot: int, day: date, seq: int = 0) -> str:
    """A rotated file's name: ``app-w1.2026-11-24.log``, or ``app-w1.2026-11-24.1.log`` for ``seq=1``."""
    suffix = f".{seq}" if seq else ""
    return f"{_stem(name, slot)}.{day.isoformat()}{suffix}.log"


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


def oldest_first(files: Iterable[LogFile]) -> list[LogFile]:
    """One slot's files in the order they were written: rotated by day and sequence, then the active file."""
    return sorted(files, key=lambda f: (f.day or date.max, f.seq))
