"""``python -m service logs <id>``: all slots, all rotations (gzipped too), merged by @timestamp, streamed."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from service.__main__ import main as cli
from service.logs import query
from service.logs.query import parse_time, search
from tests.support import ROOT, permissions_bind

ID = "4bf92f3577b34da6a3ce929d0e0e4736"
BASE = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def stamp(second: int) -> str:
    moment = BASE + timedelta(seconds=second)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def line(second: int, message: str, tracking_id: str | None = ID, **extra: object) -> bytes:
    record = {"@timestamp": stamp(second), "level": "INFO", "tracking_id": tracking_id, "message": message, **extra}
    return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)


def write(path: Path, *lines: bytes, gz: bool = False) -> Path:
    data = b"".join(lines)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    """Two workers and the main process, each with rotations: the ID's lines are spread over all of them."""
    d = tmp_path / "logs"
    d.mkdir()
    write(d / "app-w1.2026-11-23.log.gz", line(1, "w1 rotated, gzipped"), line(3, "w1 rotated, later"), gz=True)
    write(d / "app-w2.2026-11-23.log", line(2, "w2 rotated"), line(2, "other id", "someone-else-1234"))
    write(d / "app.2026-11-23.1.log.gz", line(4, "main rotated twice that day"), gz=True)
    write(d / "app.log", line(5, "main active"))
    write(
        d / "app-w2.log",
        line(6, "w2 active"),
        line(6, f"mentions {ID} but belongs to another request", "another-request-1"),
        line(6, "a longer id that starts with ours", ID + "-suffix"),
    )
    write(d / "app-w1.log", line(7, "w1 active"), line(8, "not ours", "other-request-2"))
    write(d / "unrelated.log", line(0, "not part of the set"))
    write(d / "app-w1.log.1", line(0, "not part of the set either"))
    return d


def found(directory: Path, since: datetime | None = None, until: datetime | None = None) -> list[str]:
    return [orjson.loads(raw)["message"] for raw in search(ID, directory, since=since, until=until)]


EXPECTED = [
    "w1 rotated, gzipped",
    "w2 rotated",
    "w1 rotated, later",
    "main rotated twice that day",
    "main active",
    "w2 active",
    "w1 active",
]


def test_finds_every_line_of_the_id_across_slots_and_rotations_in_timestamp_order(logs: Path) -> None:
    assert found(logs) == EXPECTED


def test_lines_are_printed_exactly_as_stored(logs: Path) -> None:
    stored = (logs / "app.log").read_bytes()
    assert stored in b"".join(search(ID, logs))


def test_search_is_lazy(logs: Path) -> None:
    results = search(ID, logs)
    assert not isinstance(results, list)
    assert orjson.loads(next(results))["message"] == EXPECTED[0]


def test_lines_cut_by_chunk_boundaries_are_found_whole(logs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(query, "_CHUNK", 7)  # every line spans several reads
    assert found(logs) == EXPECTED


def test_since_and_until_bound_the_lines(logs: Path) -> None:
    assert found(logs, since=BASE + timedelta(seconds=4), until=BASE + timedelta(seconds=7)) == EXPECTED[3:6]


def test_since_skips_files_last_written_before_it(logs: Path) -> None:
    old = time.time() - 10 * 86_400
    os.utime(logs / "app-w2.log", (old, old))
    # mtime says nothing in app-w2.log is newer than ten days ago: it is not even opened
    assert "w2 active" not in found(logs, since=datetime.now(UTC) - timedelta(days=9))


def test_plain_and_gzipped_copies_of_one_rotation_are_read_once(logs: Path) -> None:
    (logs / "app-w2.2026-11-23.log.gz").write_bytes(gzip.compress((logs / "app-w2.2026-11-23.log").read_bytes()))
    assert found(logs) == EXPECTED


def test_corrupt_files_and_lines_are_reported_and_skipped(logs: Path) -> None:
    (logs / "app-w3.2026-11-22.log.gz").write_bytes(gzip.compress(line(0, "lost"))[:-12])  # truncated gzip
    write(logs / "app-w4.log", line(9, "before the bad line"), f'{{"tracking_id":"{ID}", broken\n'.encode())
    with (logs / "app-w4.log").open("ab") as f:
        f.write(line(10, "being written")[:-30])  # a last line still being written: silently incomplete
    warnings: list[str] = []
    lines = [orjson.loads(r)["message"] for r in search(ID, logs, warn=warnings.append)]
    assert lines == [*EXPECTED, "before the bad line"]
    assert any("app-w3.2026-11-22.log.gz" in w for w in warnings)
    assert any("skipped 1 lines" in w for w in warnings)


def test_write_order_that_trails_timestamps_is_put_back_in_order(tmp_path: Path) -> None:
    """Two threads race to the queue: a file can hold 0.004 before 0.002 (by milliseconds)."""
    write(tmp_path / "app-w1.log", line(0, "a"), line(2, "c"), line(1, "b"), line(60, "d"), line(59, "e-late"))
    write(tmp_path / "app-w2.log", line(1, "b2"), line(61, "f"))
    assert found(tmp_path) == ["a", "b", "b2", "c", "e-late", "d", "f"]


def test_a_last_line_without_newline_is_still_found(tmp_path: Path) -> None:
    write(tmp_path / "app.log", line(1, "complete but unterminated")[:-1])
    assert [r[-1:] for r in search(ID, tmp_path)] == [b"\n"]


def test_cli_prints_json_lines_and_exits_0(logs: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert cli(["logs", ID, "--dir", str(logs)]) == 0
    out = capsysbinary.readouterr().out
    assert [orjson.loads(raw)["message"] for raw in out.splitlines()] == EXPECTED


def test_cli_defaults_to_log_dir_and_log_file_name(
    logs: Path, capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    (logs / "app.log").rename(logs / "svc.log")
    monkeypatch.setenv("LOG_DIR", str(logs))
    monkeypatch.setenv("LOG_FILE_NAME", "svc")
    assert cli(["logs", ID]) == 0
    assert [orjson.loads(r)["message"] for r in capsysbinary.readouterr().out.splitlines()] == ["main active"]


def test_cli_exit_status_1_when_nothing_matches(logs: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert cli(["logs", "no-such-id-anywhere", "--dir", str(logs)]) == 1
    captured = capsysbinary.readouterr()
    assert captured.out == b"" and b"no lines" in captured.err


def test_cli_exit_status_2_for_a_missing_directory(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert cli(["logs", ID, "--dir", str(tmp_path / "nope")]) == 2
    assert b"not a directory" in capsysbinary.readouterr().err


def run_cli(*args: str, prefix: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
    """``python -m service logs ...`` as a user runs it."""
    command = [*prefix, sys.executable, "-m", "service", "logs", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_cli_an_empty_id_is_a_usage_error_not_a_traceback(logs: Path) -> None:
    result = run_cli("", "--dir", str(logs))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "usage:" in result.stderr and "'' is not a tracking ID" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([" ", "--dir", "{logs}"], "is not a tracking ID"),
        (["a\nb-1234567", "--dir", "{logs}"], "is not a tracking ID"),
        ([ID, "--dir", "{logs}", "--since", "yesterday-ish"], "ISO 8601"),
        ([ID, "--dir", "{logs}", "--until", "soon"], "ISO 8601"),
        ([ID, "--dir", "{logs}", "--since", "2026-11-25", "--until", "2026-11-24"], "must be before --until"),
        ([ID, "--dir", "{logs}", "--name", "../app"], "is not a log set name"),
        ([ID, "--dir", "{logs}", "--name", ""], "is not a log set name"),
    ],
)
def test_cli_bad_arguments_are_usage_errors(
    logs: Path, capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli(["logs", *(a.format(logs=logs) for a in args)])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "usage:" in err and says in err


def test_cli_a_file_given_as_dir_is_exit_status_2(logs: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert cli(["logs", ID, "--dir", str(logs / "app.log")]) == 2
    assert b"not a directory" in capsysbinary.readouterr().err


def test_cli_an_unreadable_dir_is_exit_status_2_with_the_reason(logs: Path) -> None:
    prefix = permissions_bind()
    logs.chmod(0o000)
    try:
        result = run_cli(ID, "--dir", str(logs), prefix=prefix)
    finally:
        logs.chmod(0o755)
    assert result.returncode == 2
    assert result.stderr == f"logs: cannot list {logs}: Permission denied\n"


def test_search_refuses_an_empty_id(logs: Path) -> None:
    with pytest.raises(ValueError, match="empty"):
        search("", logs)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-24T10:00:00Z", datetime(2026, 11, 24, 10, tzinfo=UTC)),
        ("2026-11-24T11:00:00+01:00", datetime(2026, 11, 24, 10, tzinfo=UTC)),
        ("90s", datetime(2026, 11, 24, 9, 58, 30, tzinfo=UTC)),
        ("30m", datetime(2026, 11, 24, 9, 30, tzinfo=UTC)),
        ("2h", datetime(2026, 11, 24, 8, tzinfo=UTC)),
        ("1d", datetime(2026, 11, 23, 10, tzinfo=UTC)),
        ("1w", datetime(2026, 11, 17, 10, tzinfo=UTC)),
    ],
)
def test_parse_time(text: str, expected: datetime) -> None:
    assert parse_time(text, now=datetime(2026, 11, 24, 10, tzinfo=UTC).timestamp()) == expected


def test_parse_time_reads_a_naive_date_as_local_time() -> None:
    assert parse_time("2026-11-24") == datetime(2026, 11, 24).astimezone(UTC)


def test_the_logs_command_loads_only_the_file_names_module_of_file_mode() -> None:
    """Reading logs must not load the writer (slot locks, fork hooks): only the names it shares with it."""
    script = "import sys, service.logs.query; print(*sorted(m for m in sys.modules if 'logs.files' in m))"
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["service.logs.files", "service.logs.files.names"]
