"""``python -m service logs <tracking-id>``: every line of one tracking ID from a file-mode log set.

All files of the set count: every slot (main process and workers, live or long gone), every
rotation, gzipped or not. Each slot's files form one time-ordered stream (its rotated files oldest
first, then its active file; the few milliseconds by which write order can trail timestamps are
undone in a small window); the streams are merged on ``@timestamp`` with ``heapq.merge``, so memory
stays flat however large the directory. Files are read in 1 MiB chunks and searched for the ID's
bytes first; only the few lines that contain them are parsed as JSON. Lines are printed exactly as
stored, one JSON object per line, so the output pipes into ``jq``.
"""

from __future__ import annotations

import argparse
import gzip
import heapq
import os
import re
import sys
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from operator import itemgetter
from pathlib import Path
from typing import Protocol

import orjson

from service.logs.files.names import LogFile, log_files, oldest_first

__all__ = ["main", "parse_time", "search"]

_CHUNK = 1 << 20
#: A file is in write order, which trails ``@timestamp`` order by a few milliseconds when threads race
#: to the queue; lines are held this long in a small heap to put them back in order.
_REORDER = timedelta(seconds=5)
_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def _warn(message: str) -> None:
    sys.stderr.write(f"logs: {message}\n")


def parse_time(value: str, now: float | None = None) -> datetime:
    """``2026-11-24``, ``2026-11-24T10:00``, ``…Z`` / ``…+01:00``, or an age: ``90s``, ``30m``, ``2h``, ``7d``, ``1w``.

    A date or time without an offset is local time, as in ``journalctl --since``.
    """
    text = value.strip()
    relative = _RELATIVE.match(text)
    if relative:
        seconds = float(relative[1]) * _UNITS[relative[2]]
        return datetime.fromtimestamp((time.time() if now is None else now) - seconds, UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{value!r} is neither an ISO 8601 date/time (2026-11-24, 2026-11-24T10:00:00Z) "
            "nor an age (90s, 30m, 2h, 7d, 1w)"
        ) from None
    return moment.astimezone(UTC)  # naive: local time


def _stamp(moment: datetime) -> str:
    """The form of ``@timestamp`` (UTC, milliseconds), so bounds compare as plain strings."""
    moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def _lines_containing(stream: _Readable, needle: bytes) -> Iterator[bytes]:
    """Whole lines that contain ``needle``, found with ``bytes.find`` over large chunks."""
    rest = b""
    while chunk := stream.read(_CHUNK):
        if rest:
            chunk = rest + chunk
        end = chunk.rfind(b"\n") + 1
        if end == 0:
            rest = chunk  # a line longer than a chunk: keep collecting
            continue
        rest = chunk[end:]
        pos = 0
        while (hit := chunk.find(needle, pos, end)) != -1:
            start = chunk.rfind(b"\n", 0, hit) + 1
            stop = chunk.index(b"\n", hit) + 1
            yield chunk[start:stop]
            pos = stop
    if needle in rest:
        yield rest  # a last line without its newline (being written right now); parsing decides


class _Counts:
    __slots__ = ("bad",)

    def __init__(self) -> None:
        self.bad = 0


def _records(
    files: Iterable[LogFile],
    tracking_id: str,
    lo: str | None,
    hi: str | None,
    counts: _Counts,
    warn: Callable[[str], None],
) -> Iterator[tuple[str, bytes]]:
    needle = tracking_id.encode()
    for info in files:
        try:
            with gzip.open(info.path, "rb") if info.gz else info.path.open("rb") as stream:
                for line in _lines_containing(stream, needle):
                    try:
                        record = orjson.loads(line)
                    except orjson.JSONDecodeError:
                        if line.endswith(b"\n"):
                            counts.bad += 1
                        continue
                    if type(record) is not dict or record.get("tracking_id") != tracking_id:
                        continue  # the ID's bytes elsewhere in the line, or a longer ID
                    stamp = record.get("@timestamp")
                    stamp = stamp if isinstance(stamp, str) else ""
                    if (lo is not None and stamp < lo) or (hi is not None and stamp >= hi):
                        continue
                    yield stamp, line if line.endswith(b"\n") else line + b"\n"
        except FileNotFoundError:
            continue  # rotated, compressed or swept while we looked
        except (OSError, EOFError, zlib.error) as exc:
            warn(f"{info.path}: {exc}; skipped the rest of this file")


def _in_order(records: Iterable[tuple[str, bytes]]) -> Iterator[tuple[str, bytes]]:
    """Sort a nearly sorted stream: release a line once one ``_REORDER`` newer has been seen."""
    held: list[tuple[str, int, bytes]] = []
    for n, (stamp, line) in enumerate(records):
        heapq.heappush(held, (stamp, n, line))
        try:
            horizon = _stamp(datetime.fromisoformat(stamp) - _REORDER)
        except ValueError:
            continue  # no usable timestamp: held until the next one, or the end
        while held and held[0][0] < horizon:
            released = heapq.heappop(held)
            yield released[0], released[2]
    while held:
        released = heapq.heappop(held)
        yield released[0], released[2]


def _streams(directory: Path, name: str, since: float | None) -> list[list[LogFile]]:
    """Per slot, its files oldest first (rotated by day and sequence, then the active file)."""
    chosen: dict[tuple[int, date | None, int], LogFile] = {}
    for info in log_files(directory, name):
        key = (info.slot, info.day, info.seq)
        if key in chosen and not chosen[key].gz:
            continue  # both x.log and x.log.gz for a moment (gzip just finished): read the plain one
        chosen[key] = info
    slots: dict[int, list[LogFile]] = {}
    for info in chosen.values():
        if since is not None:
            try:
                if info.path.stat().st_mtime < since:
                    continue  # last written before --since: no line in it can match
            except OSError:
                continue
        slots.setdefault(info.slot, []).append(info)
    return [oldest_first(files) for _, files in sorted(slots.items(), key=itemgetter(0))]


def search(
    tracking_id: str,
    directory: Path | str,
    name: str = "app",
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    warn: Callable[[str], None] = _warn,
) -> Iterator[bytes]:
    """Every stored line whose ``tracking_id`` is ``tracking_id``, lazily, in ``@timestamp`` order.

    ``since`` is inclusive, ``until`` exclusive. The directory is listed at once: OSError when it
    cannot be, ValueError for an empty ID. Unreadable files are reported through ``warn`` and
    skipped; lines that are not JSON are counted and reported once at the end.
    """
    if not tracking_id.strip():
        raise ValueError("the tracking ID is empty")
    lo = _stamp(since) if since is not None else None
    hi = _stamp(until) if until is not None else None
    slots = _streams(Path(directory), name, since.timestamp() if since is not None else None)
    return _merged(slots, tracking_id, lo, hi, warn)


def _merged(
    slots: list[list[LogFile]], tracking_id: str, lo: str | None, hi: str | None, warn: Callable[[str], None]
) -> Iterator[bytes]:
    counts = _Counts()
    streams = [_in_order(_records(files, tracking_id, lo, hi, counts, warn)) for files in slots]
    for _, line in heapq.merge(*streams, key=itemgetter(0)):
        yield line
    if counts.bad:
        warn(f"skipped {counts.bad} lines containing the ID that are not valid JSON")


def _id_arg(value: str) -> str:
    if not value.strip() or "\n" in value or "\r" in value:
        raise argparse.ArgumentTypeError(f"{value!r} is not a tracking ID: it is empty or holds a line break")
    return value


def _name_arg(value: str) -> str:
    if not value or "/" in value or value in (".", ".."):
        raise argparse.ArgumentTypeError(f"{value!r} is not a log set name (the file name prefix, e.g. app)")
    return value


def _time_arg(value: str) -> datetime:
    try:
        return parse_time(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m service logs",
        description="Print every line of a tracking ID from all file-mode log files (all workers, all "
        "rotations, gzipped too), merged in @timestamp order, as JSON lines.",
        epilog="Exit status: 0 lines found, 1 none found, 2 usage error or no such directory.",
    )
    parser.add_argument("tracking_id", type=_id_arg, help="the X-Tracking-ID to look for")
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path(os.environ.get("LOG_DIR") or "logs"),
        help="the log directory (default: $LOG_DIR or ./logs)",
    )
    parser.add_argument(
        "--name",
        type=_name_arg,
        default=os.environ.get("LOG_FILE_NAME") or "app",
        help="the log set's file name (default: $LOG_FILE_NAME or app)",
    )
    parser.add_argument(
        "--since", type=_time_arg, help="only lines at or after: 2026-11-24, 2026-11-24T10:00Z, or an age: 2h, 7d"
    )
    parser.add_argument("--until", type=_time_arg, help="only lines before this time (same forms as --since)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The ``logs`` subcommand. Returns the exit status; a usage error exits 2 with argparse's message."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.since is not None and args.until is not None and args.since >= args.until:
        parser.error(
            f"--since ({args.since:%Y-%m-%dT%H:%M:%SZ}) must be before --until ({args.until:%Y-%m-%dT%H:%M:%SZ})"
        )
    directory: Path = args.dir
    if not directory.is_dir():
        _warn(f"{directory} is not a directory (set --dir or LOG_DIR)")
        return 2
    try:
        lines = search(args.tracking_id, directory, args.name, since=args.since, until=args.until)
    except OSError as exc:
        _warn(f"cannot list {directory}: {exc.strerror or exc}")
        return 2
    return _print(lines, f"no lines with tracking_id {args.tracking_id!r} in {directory} ({args.name}*.log*)")


def _print(lines: Iterator[bytes], none_found: str) -> int:
    out = sys.stdout.buffer
    found = 0
    try:
        for line in lines:
            out.write(line)
            found += 1
        out.flush()
    except BrokenPipeError:  # `| head`: stop quietly, and keep Python from complaining at exit
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:  # Ctrl-C on a long search: no traceback
        return 130
    if not found:
        _warn(none_found)
        return 1
    return 0
