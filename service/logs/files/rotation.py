"""Rotation arithmetic: the day a moment belongs to, when that day starts, and an archived file's name."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from itertools import count
from pathlib import Path

from service.logs.files.names import dated_name

__all__ = ["Days", "archive"]


@dataclass(frozen=True, slots=True)
class Days:
    """Calendar days in local time (the default, DST-aware) or in UTC."""

    utc: bool

    def day_of(self, ts: float) -> date:
        return (datetime.fromtimestamp(ts, UTC) if self.utc else datetime.fromtimestamp(ts)).date()

    def start_of(self, day: date) -> float:
        """The epoch time of ``day``'s midnight (local via mktime, so DST days are 23 or 25 hours)."""
        return datetime.combine(day, dtime(), UTC if self.utc else None).timestamp()

    def end_of(self, day: date) -> float:
        return self.start_of(day + timedelta(days=1))


def archive(path: Path, name: str, slot: int, day: date) -> Path:
    """Rename the active file to its dated name, never over an existing one (plain or gzipped)."""
    for seq in count():
        target = path.with_name(dated_name(name, slot, day, seq))
        if not target.exists() and not target.with_name(target.name + ".gz").exists():
            break
    path.rename(target)
    return target
