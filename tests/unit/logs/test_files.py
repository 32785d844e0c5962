"""File mode: stable slot names, midnight rotation (clock moved with time-machine), retention, faults."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
import time_machine

from service.logs.files import FileSink, check_log_dir, log_files, parse_log_name
from service.settings import SettingsError, load_settings
from tests.support import ROOT, mounted_tmpfs, parse_json_lines, permissions_bind

DAY = 86_400.0


def line(message: str, tracking_id: str | None = None, stamp: str = "2026-11-24T10:00:00.000Z") -> bytes:
    record = {"@timestamp": stamp, "level": "INFO", "tracking_id": tracking_id, "message": message}
    return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)


def messages(path: Path) -> list[str]:
    data = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    return [r["message"] for r in parse_json_lines(data, str(path))]


def names(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir() if not p.name.startswith(".")}


@pytest.fixture
def make_sink(tmp_path: Path) -> Iterator[Callable[..., FileSink]]:
    """FileSink factory on tmp_path/logs; every sink is closed (its slot released) after the test."""
    made: list[FileSink] = []

    def make(**kwargs: Any) -> FileSink:
        kwargs.setdefault("worker", False)
        sink = FileSink(kwargs.pop("directory", tmp_path / "logs"), kwargs.pop("name", "app"), **kwargs)
        made.append(sink)
        return sink

    yield make
    for sink in made:
        sink.close()


def tonight(tz: ZoneInfo | None = None) -> datetime:
    """The coming midnight (UTC, or in ``tz``): close to the real clock, so real file mtimes stay recent."""
    now = datetime.now(tz or UTC)
    return datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tz or UTC)


# -- names and slots -------------------------------------------------------------------------------
def test_main_process_writes_the_base_file_and_workers_take_the_lowest_free_slots(
    make_sink: Callable[..., FileSink], tmp_path: Path
) -> None:
    main = make_sink()
    w1, w2 = make_sink(worker=True), make_sink(worker=True)
    assert [s.path.name for s in (main, w1, w2) if s.path] == ["app.log", "app-w1.log", "app-w2.log"]
    for sink in (main, w1, w2):
        assert sink.write(line(f"from {sink.slot}")) is True
        assert sink.name == "file"  # the sink's label for health reporting, whatever the set is called
    assert messages(tmp_path / "logs" / "app-w2.log") == ["from 2"]
    assert (tmp_path / "logs" / ".app-w1.lock").read_text() == f"{os.getpid()}\n"


def test_a_replacement_worker_reclaims_the_dead_workers_slot_and_file(
    make_sink: Callable[..., FileSink], tmp_path: Path
) -> None:
    make_sink()
    w1, w2 = make_sink(worker=True), make_sink(worker=True)
    w1.write(line("before the crash"))
    w1.close()  # what the kernel does with the flock when the process dies
    replacement = make_sink(worker=True)
    assert replacement.path == tmp_path / "logs" / "app-w1.log"
    replacement.write(line("after the restart"))
    assert messages(replacement.path) == ["before the crash", "after the restart"]
    assert w2.path == tmp_path / "logs" / "app-w2.log"


def test_a_second_main_process_never_shares_the_base_file(make_sink: Callable[..., FileSink]) -> None:
    first, second = make_sink(), make_sink()
    assert first.path is not None and second.path is not None
    assert (first.path.name, second.path.name) == ("app.log", "app-w1.log")


def test_parse_log_name_knows_the_whole_set_and_nothing_else() -> None:
    parsed = parse_log_name("app-w3.2026-11-24.2.log.gz", "app")
    assert parsed is not None
    assert (parsed.slot, parsed.day, parsed.seq, parsed.gz, parsed.partial) == (3, date(2026, 11, 24), 2, True, False)
    for ours in ["app.log", "app-w1.log", "app.2026-11-24.log", "app-w12.2026-11-24.log.gz", "app.2026-01-01.1.log"]:
        assert parse_log_name(ours, "app") is not None, ours
    others = "app.log.1 app-w0.log app.log.gz app.txt other.log app-sp3.log app-w1.log.bak app.2026-13-01.log myapp.log"
    others += " .app.lock app-w1.2026-11-24.log.gz.tmp"
    for other in others.split():
        assert parse_log_name(other, "app") is None, other
    assert parse_log_name("my.app-w2.log", "my.app") is not None
    assert parse_log_name("myxapp.log", "my.app") is None  # the dot is literal


# -- rotation ----------------------------------------------------------------------------------
def test_rotation_at_utc_midnight_names_the_file_after_the_day_it_covers(
    make_sink: Callable[..., FileSink], tmp_path: Path
) -> None:
    midnight = tonight()
    day = (midnight - timedelta(days=1)).date()
    with time_machine.travel(midnight - timedelta(seconds=10), tick=False) as traveller:
        sink = make_sink(utc=True, worker=True)
        sink.write(line("late"))
        traveller.move_to(midnight - timedelta(milliseconds=1))
        sink.write(line("last"))
        assert names(tmp_path / "logs") == {"app-w1.log"}
        traveller.move_to(midnight + timedelta(seconds=1))
        sink.write(line("early"))
    logs = tmp_path / "logs"
    assert names(logs) == {"app-w1.log", f"app-w1.{day}.log"}
    assert messages(logs / f"app-w1.{day}.log") == ["late", "last"]
    assert messages(logs / "app-w1.log") == ["early"]


def test_rotation_follows_local_midnight_by_default_and_utc_when_asked(
    make_sink: Callable[..., FileSink], tmp_path: Path
) -> None:
    zone = ZoneInfo("America/New_York")
    local_midnight = tonight(zone)
    utc_midnight = tonight()
    # A ZoneInfo destination makes time-machine set TZ too: local time is New York's inside the block.
    with time_machine.travel((utc_midnight - timedelta(seconds=5)).astimezone(zone), tick=False) as traveller:
        local = make_sink(name="local")
        in_utc = make_sink(name="utc", utc=True)
        for sink in (local, in_utc):
            sink.write(line("before UTC midnight"))
        traveller.move_to((utc_midnight + timedelta(seconds=5)).astimezone(zone))
        for sink in (local, in_utc):
            sink.write(line("after UTC midnight"))
        assert names(tmp_path / "logs") == {
            "local.log",
            "utc.log",
            f"utc.{utc_midnight.date() - timedelta(days=1)}.log",
        }
        traveller.move_to(local_midnight + timedelta(days=1 if local_midnight < utc_midnight else 0, seconds=5))
        local.write(line("after local midnight"))
    rotated = list((tmp_path / "logs").glob("local.*.log"))
    assert len(rotated) == 1
    assert messages(rotated[0]) == ["before UTC midnight", "after UTC midnight"]
    assert messages(tmp_path / "logs" / "local.log") == ["after local midnight"]


def test_gzip_rotation_keeps_the_lines_and_the_mtime(make_sink: Callable[..., FileSink], tmp_path: Path) -> None:
    midnight = tonight()
    day = (midnight - timedelta(days=1)).date()
    with time_machine.travel(midnight - timedelta(seconds=10), tick=False) as traveller:
        sink = make_sink(utc=True, compress=True)
        sink.write(line("one") + line("two"))
        traveller.move_to(midnight + timedelta(seconds=1))
        sink.write(line("three"))
    assert sink.wait_compressed(timeout=60)
    logs = tmp_path / "logs"
    assert names(logs) == {"app.log", f"app.{day}.log.gz"}
    assert messages(logs / f"app.{day}.log.gz") == ["one", "two"]
    assert abs((logs / f"app.{day}.log.gz").stat().st_mtime - time.time()) < DAY  # the last write, not 1970


def test_idle_over_several_midnights_rotates_once_under_the_day_written(
    make_sink: Callable[..., FileSink], tmp_path: Path
) -> None:
    midnight = tonight()
    with time_machine.travel(midnight - timedelta(seconds=10), tick=False) as traveller:
        sink = make_sink(utc=True)
        sink.write(line("monday"))
        traveller.move_to(midnight + timedelta(days=2, hours=3))
        sink.write(line("wednesday"))
        traveller.move_to(midnight + timedelta(days=3, seconds=1))
        sink.close()
        reopened = make_sink(utc=True)  # restart with a file from yesterday: rotated under its own day
        reopened.write(line("thursday"))
    day = (midnight - timedelta(days=1)).date()
    logs = tmp_path / "logs"
    assert messages(logs / f"app.{day}.log") == ["monday"]
    # At the restart, wednesday's file is rotated by its mtime, which the real clock set to today
    # (= ``day``): a sequence number keeps it apart from monday's.
    assert messages(logs / f"app.{day}.1.log") == ["wednesday"]
    assert messages(logs / "app.log") == ["thursday"]


def test_a_file_left_by_an_earlier_run_is_rotated_under_its_mtime_day_at_startup(
    make_sink: Callable[..., FileSink], tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    old = logs / "app-w1.log"
    old.write_bytes(line("three days ago"))
    when = time.time() - 3 * DAY
    os.utime(old, (when, when))
    sink = make_sink(utc=True, worker=True)
    day = datetime.fromtimestamp(when, UTC).date()
    assert messages(logs / f"app-w1.{day}.log") == ["three days ago"]
    assert sink.path == old and old.stat().st_size == 0


def test_a_second_rotation_for_the_same_day_gets_a_sequence_number(
    make_sink: Callable[..., FileSink], tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    (logs / f"app.{yesterday}.log.gz").write_bytes(gzip.compress(line("first")))
    (logs / "app.log").write_bytes(line("second"))
    when = datetime.combine(yesterday, datetime.min.time(), UTC).timestamp() + 3600
    os.utime(logs / "app.log", (when, when))
    make_sink(utc=True)
    assert messages(logs / f"app.{yesterday}.1.log") == ["second"]


def test_leftovers_of_an_interrupted_gzip_are_finished_by_the_next_holder_of_the_slot(
    make_sink: Callable[..., FileSink], tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "app-w1.2026-11-20.log").write_bytes(line("rotated, not compressed"))
    (logs / "app-w1.2026-11-21.log.gz.part").write_bytes(b"half a gzip")
    (logs / "app-w2.2026-11-20.log").write_bytes(line("another slot's: left alone"))
    sink = make_sink(compress=True, worker=True)
    assert sink.wait_compressed(timeout=60)
    assert messages(logs / "app-w1.2026-11-20.log.gz") == ["rotated, not compressed"]
    assert not (logs / "app-w1.2026-11-20.log").exists()
    assert not (logs / "app-w1.2026-11-21.log.gz.part").exists()
    assert (logs / "app-w2.2026-11-20.log").exists()


# -- retention -----------------------------------------------------------------------------------
def _aged(path: Path, days: float, data: bytes | None = None) -> Path:
    path.write_bytes(data if data is not None else line(path.name))
    when = time.time() - days * DAY
    os.utime(path, (when, when))
    return path


def test_retention_removes_every_old_file_of_the_set_including_orphans_and_keeps_the_rest(
    make_sink: Callable[..., FileSink], tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    old = [
        _aged(logs / "app-w7.log", 9),  # a worker slot nobody has held since the worker count went down
        _aged(logs / "app-w1.2026-01-02.log.gz", 30, gzip.compress(line("x"))),
        _aged(logs / "app.2026-01-03.log", 8),
        _aged(logs / "app-w2.2026-01-03.3.log", 7.01),
        _aged(logs / "app-w3.2026-01-04.log.gz.part", 10),
    ]
    kept = [
        _aged(logs / "app-w1.2026-11-20.log.gz", 6.9, gzip.compress(line("x"))),
        _aged(logs / "app-w7.2026-11-24.log", 1),
        _aged(logs / "app-w3.log", 0.1),
    ]
    foreign = [
        _aged(logs / n, 40) for n in ["other.log", "app.txt", "app.log.1", "app-sp3.log", "notes", "app-w1.log.bak"]
    ]
    _aged(logs / ".app-w5.lock", 40, b"")
    make_sink(retention_days=7, worker=True)
    assert not [p for p in old if p.exists()]
    assert all(p.exists() for p in kept + foreign)
    assert (logs / ".app-w5.lock").exists()  # lock files are never removed: that would break the slot lock


def test_retention_also_runs_at_each_rotation(make_sink: Callable[..., FileSink], tmp_path: Path) -> None:
    midnight = tonight()
    logs = tmp_path / "logs"
    with time_machine.travel(midnight - timedelta(seconds=10), tick=False) as traveller:
        sink = make_sink(utc=True, retention_days=2)
        sink.write(line("a"))
        orphan = _aged(logs / "app-w4.log", 0)  # real clock: written "now"
        # two days and a bit later by the service's clock, the orphan is past retention
        traveller.move_to(midnight + timedelta(days=2, seconds=1))
        sink.write(line("b"))
    assert not orphan.exists()
    assert messages(logs / "app.log") == ["b"]


def test_sweep_returns_what_it_removed(make_sink: Callable[..., FileSink], tmp_path: Path) -> None:
    sink = make_sink(retention_days=1)
    stale = _aged(tmp_path / "logs" / "app-w9.log", 2)
    assert sink.sweep() == [stale]


# -- torn lines, faults ----------------------------------------------------------------------------
def test_a_torn_last_line_from_a_killed_writer_is_cut_before_appending(
    make_sink: Callable[..., FileSink], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "app-w1.log").write_bytes(line("complete") + line("torn in half")[:20])
    sink = make_sink(worker=True)
    sink.write(line("next"))
    assert messages(logs / "app-w1.log") == ["complete", "next"]
    assert "incomplete last line" in capfd.readouterr().err


def test_log_directory_replaced_by_a_file_is_reported_once_and_writing_resumes(
    make_sink: Callable[..., FileSink], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    logs = tmp_path / "logs"
    sink = make_sink(check_interval=0)
    sink.write(line("before"))
    logs.rename(tmp_path / "moved-away")
    logs.write_text("a file where the directory was")
    for n in range(5):
        sink.write(line(f"lost {n}"))  # must not raise
    err = capfd.readouterr().err.splitlines()
    assert len(err) == 1, err
    assert "cannot write" in err[0] and "no longer a directory" in err[0]
    logs.unlink()
    sink.write(line("after"))
    err = capfd.readouterr().err.splitlines()
    assert len(err) == 1 and "resumed writing" in err[0] and "5 lines" in err[0], err
    assert messages(logs / "app.log") == ["after"]
    assert messages(tmp_path / "moved-away" / "app.log") == ["before"]


def test_a_removed_directory_is_recreated_and_said_so(
    make_sink: Callable[..., FileSink], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    logs = tmp_path / "logs"
    sink = make_sink(check_interval=0)
    sink.write(line("before"))
    for path in logs.iterdir():
        path.unlink()
    logs.rmdir()
    sink.write(line("after"))
    assert messages(logs / "app.log") == ["after"]
    assert (logs / ".app.lock").exists()  # the slot is claimed again in the new directory
    err = capfd.readouterr().err
    assert "moved or removed" in err and err.count("\n") == 1


def test_disk_full_mid_batch_leaves_no_partial_line_and_is_reported_once(tmp_path: Path) -> None:
    """RLIMIT_FSIZE makes the kernel refuse writes past a size, like a full disk, even for root."""
    script = textwrap.dedent(
        """
        import resource, signal, sys, orjson
        from service.logs.files import FileSink
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        sink = FileSink(sys.argv[1], "app", worker=False, check_interval=0)
        def batch(n):
            return b"".join(orjson.dumps({"message": f"line {n}.{i}", "pad": "x" * 90}) + b"\\n" for i in range(3))
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4000, hard))
        for n in range(20):
            sink.write(batch(n))
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        sink.write(batch(99))
        sink.close()
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "logs")], cwd=ROOT, capture_output=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    records = parse_json_lines((tmp_path / "logs" / "app.log").read_bytes(), "app.log")
    got = [r["message"] for r in records]
    assert got[-3:] == ["line 99.0", "line 99.1", "line 99.2"]
    written_batches = {m.split(".")[0] for m in got}
    assert all(sum(m.startswith(b + ".") for m in got) == 3 for b in written_batches)  # whole batches only
    err = result.stderr.decode().splitlines()
    assert len([e for e in err if "cannot write" in e]) == 1, err
    assert len([e for e in err if "resumed writing" in e]) == 1, err


def test_write_never_raises_on_unexpected_errors(
    make_sink: Callable[..., FileSink], capfd: pytest.CaptureFixture[str]
) -> None:
    broken = [False]

    def clock() -> float:
        if broken[0]:
            raise RuntimeError("a bug in the clock")
        return time.time()

    sink = make_sink(clock=clock, check_interval=0)
    broken[0] = True
    assert sink.write(line("x")) is False
    assert sink.write(line("y")) is False
    assert capfd.readouterr().err.count("cannot write") == 1
    broken[0] = False
    assert sink.write(line("z")) is True
    assert "resumed writing" in capfd.readouterr().err
    assert sink.path is not None and messages(sink.path) == ["z"]


# -- unwritable slots (real permissions: the sinks run in a process that mode bits bind) ----------------
def run_bound(script: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    command = [*permissions_bind(), sys.executable, "-c", textwrap.dedent(script), *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, timeout=120)


def read_only(path: Path, data: bytes = b"") -> Path:
    path.write_bytes(data)
    path.chmod(0o444)
    return path


def test_a_slot_file_we_cannot_write_is_reported_once_and_the_next_free_slot_is_taken(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    theirs = read_only(logs / "app-w1.log", line("another user's line"))
    read_only(logs / "app.log")
    script = """
        import sys
        from service.logs.files import FileSink
        main = FileSink(sys.argv[1], "app", worker=False)
        first, second = FileSink(sys.argv[1], "app", worker=True), FileSink(sys.argv[1], "app", worker=True)
        for sink in (main, first, second):
            assert sink.write(("{\\"message\\": \\"slot %d\\"}\\n" % sink.slot).encode())
            print(sink.path.name)
        """
    result = run_bound(script, str(logs))
    assert result.returncode == 0, result.stderr
    # The main process passes over app.log and app-w1.log and keeps both locked, so the workers pass
    # over them silently: each unwritable file is reported once.
    assert result.stdout.decode().split() == ["app-w2.log", "app-w3.log", "app-w4.log"]
    reports = parse_json_lines(result.stderr, "stderr")
    assert [(r["level"], r["path"]) for r in reports] == [("WARNING", str(logs / "app.log")), ("WARNING", str(theirs))]
    assert all("Permission denied" in r["message"] and str(logs / "app-w2.log") in r["message"] for r in reports)
    assert messages(theirs) == ["another user's line"]
    assert messages(logs / "app-w4.log") == ["slot 4"]


def test_a_lock_file_left_read_only_still_locks_its_slot(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    lock = read_only(logs / ".app-w1.lock", b"4242\n")
    script = """
        import sys
        from service.logs.files import FileSink
        first, second = FileSink(sys.argv[1], "app", worker=True), FileSink(sys.argv[1], "app", worker=True)
        print(first.path.name, second.path.name)
        """
    result = run_bound(script, str(logs))
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().split() == ["app-w1.log", "app-w2.log"]
    assert result.stderr == b""
    assert lock.read_bytes() == b"4242\n"


def test_no_writable_slot_stops_a_main_process_and_pauses_a_worker(tmp_path: Path) -> None:
    """A directory that refuses new files, with every existing slot file read-only: no slot can be written."""
    logs = tmp_path / "logs"
    logs.mkdir()
    for name in ("app.log", "app-w1.log", ".app.lock", ".app-w1.lock"):
        read_only(logs / name)
    logs.chmod(0o555)
    script = """
        import os, sys
        from service.logs.files import FileSink
        from service.settings import SettingsError
        try:
            FileSink(sys.argv[1], "app", worker=False)
        except SettingsError as exc:
            print(exc)
        worker = FileSink(sys.argv[1], "app", worker=True, check_interval=0)  # must not raise
        assert not worker.write(b'{"message": "lost"}\\n')
        os.chmod(sys.argv[1], 0o755)  # the operator fixes the directory: the worker resumes
        assert worker.write(b'{"message": "kept"}\\n'), "resumed"
        print(worker.path.name)
        """
    try:
        result = run_bound(script, str(logs))
    finally:
        logs.chmod(0o755)
    assert result.returncode == 0, result.stderr
    error, resumed_in = result.stdout.decode().splitlines()
    assert "LOG_DIR=" in error and str(logs) in error and "Permission denied" in error
    assert resumed_in == "app-w2.log"
    assert messages(logs / "app-w2.log") == ["kept"]
    err = result.stderr.decode()
    assert err.count("cannot write") == 1 and err.count("resumed writing") == 1, err


# -- startup checks -----------------------------------------------------------------------------
def test_an_uncreatable_log_dir_stops_startup_with_a_message_naming_it(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    settings = load_settings(mode="file", dir=blocker / "logs")
    with pytest.raises(SettingsError, match=r"LOG_DIR=.*a-file/logs") as caught:
        FileSink.from_settings(settings)
    assert "cannot create or write" in str(caught.value)
    with pytest.raises(SettingsError, match="is not a directory"):
        check_log_dir(blocker)


def test_read_only_log_dir_is_refused(tmp_path: Path) -> None:
    """A read-only bind mount stops even root; fall back to a skip where mounting is not allowed."""
    target = tmp_path / "ro"
    target.mkdir()
    with mounted_tmpfs(target, "ro,size=64k"), pytest.raises(SettingsError, match=r"LOG_DIR=.*/ro'.*Read-only"):
        check_log_dir(target)


# -- fork ----------------------------------------------------------------------------------------
def test_a_forked_child_drops_the_parents_file_and_claims_its_own_slot(
    make_sink: Callable[..., FileSink], tmp_path: Path
) -> None:
    sink = make_sink()
    sink.write(line("parent before fork"))
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 1
        try:
            sink.write(line("child"))
            code = 0 if sink.path is not None and sink.path.name == "app-w1.log" else 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    sink.write(line("parent after fork"))
    logs = tmp_path / "logs"
    assert messages(logs / "app.log") == ["parent before fork", "parent after fork"]
    assert messages(logs / "app-w1.log") == ["child"]
    assert make_sink().path == logs / "app-w1.log"  # the parent still holds app.log; the child's slot is free


def test_log_files_lists_only_the_set(tmp_path: Path) -> None:
    for n in ["app.log", "app-w2.2026-11-01.log.gz", "app-w2.2026-11-01.log.gz.part", "zzz.log"]:
        (tmp_path / n).write_bytes(b"")
    (tmp_path / "app-w3.log").mkdir()  # not a regular file
    assert sorted(f.path.name for f in log_files(tmp_path, "app")) == ["app-w2.2026-11-01.log.gz", "app.log"]
    assert len(log_files(tmp_path, "app", partial=True)) == 3
