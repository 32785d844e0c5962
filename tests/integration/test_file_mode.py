"""File mode for real: uvicorn with 2 workers writing per-slot files under load, SIGKILL of a worker,
disk faults, the ``logs`` command over live and rotated files, and the shipped logrotate config."""

from __future__ import annotations

import gzip
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from service.logs.files import FileSink
from service.settings import LogSettings
from tests.support import ROOT, ServiceProcess, free_port, mounted_tmpfs, parse_json_lines, permissions_bind

PATHS = ["/demo/dependency", "/demo/sync", "/demo/background", "/demo/context"]
TIMEOUT = 90.0  # generous: a loaded 2-core CI machine


def wait_for(condition: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def complete(data: bytes) -> bytes:
    """What a live reader may use: up to the last newline (a write may be half-way through)."""
    return data[: data.rfind(b"\n") + 1]


def read_log(path: Path, *, live: bool = False) -> list[dict[str, Any]]:
    """Every line of a log file, parsed; fails on the first line that is not one JSON object.

    ``live``: the file is still being written, so a last line without its newline is left out.
    """
    data = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    return parse_json_lines(complete(data) if live else data, path.name)


def stdout_records(service: ServiceProcess) -> list[dict[str, Any]]:
    return parse_json_lines(complete(service.stdout_bytes()))


class FileModeService(ServiceProcess):
    """``python -m service`` with ``LOG_MODE=file``: startup is seen in the log files, not on stdout."""

    def __init__(
        self, tmp_path: Path, *, workers: int, env: dict[str, str] | None = None, prefix: Sequence[str] = ()
    ) -> None:
        self.log_dir = tmp_path / "logs"
        env = {"LOG_MODE": "file", "LOG_DIR": str(self.log_dir), **(env or {})}
        super().__init__(tmp_path, workers=workers, env=env)
        self.command = [*prefix, *self.command]  # e.g. a process that file mode bits bind

    def files(self, *, live: bool = True) -> dict[str, list[dict[str, Any]]]:
        paths = sorted(p for p in self.log_dir.glob("*.log*") if not p.name.endswith(".part"))
        return {p.name: read_log(p, live=live) for p in paths}

    def _wait_for_workers(self, deadline: float) -> None:
        """Like the base class: give up quietly at the deadline (the test's own checks then say what is wrong)."""
        while time.monotonic() < deadline:
            lines = [r for p in self.log_dir.glob("app-w*.log") for r in read_log(p, live=True)]
            if sum(bool(r["message"] == "Application startup complete.") for r in lines) >= self.workers:
                return
            time.sleep(0.1)


# -- processes ---------------------------------------------------------------------------------
def workers_of(parent: int) -> set[int]:
    """uvicorn's spawned worker processes: children of ``parent`` running multiprocessing's spawn_main."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid == parent and b"spawn_main" in (entry / "cmdline").read_bytes():
                found.add(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


def open_logs(pid: int, log_dir: Path) -> set[str]:
    """The names of the ``*.log`` files in ``log_dir`` that process ``pid`` has open right now."""
    names: set[str] = set()
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return names
    for fd in fds:
        try:
            target = fd.readlink()
        except OSError:
            continue
        if target.parent == log_dir and target.name.endswith(".log"):
            names.add(target.name)
    return names


def file_owners(service: FileModeService) -> dict[int, set[str]]:
    assert service.proc is not None
    pids = [service.proc.pid, *workers_of(service.proc.pid)]
    return {pid: open_logs(pid, service.log_dir) for pid in pids}


def assert_no_file_shared(owners: dict[int, set[str]]) -> None:
    seen: dict[str, int] = {}
    for pid, names in owners.items():
        assert len(names) == 1, f"process {pid} has {names} open, expected exactly one log file"
        for name in names:
            assert name not in seen, f"{name} is open in both {seen[name]} and {pid}"
            seen[name] = pid


# -- load ----------------------------------------------------------------------------------------
def send(base_url: str, count: int, *, threads: int = 6, tracking_id: str | None = None) -> list[httpx.Response]:
    """``count`` requests from ``threads`` threads, a new connection each (so both workers get some)."""

    def one(i: int) -> httpx.Response:
        headers = {"X-Tracking-ID": tracking_id} if tracking_id else {}
        with httpx.Client(timeout=60, limits=httpx.Limits(max_keepalive_connections=0)) as client:
            return client.get(f"{base_url}{PATHS[i % len(PATHS)]}", headers=headers)

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, range(count)))


def send_until_fault_reported(service: ServiceProcess, batch: int, what: str) -> list[httpx.Response]:
    """Keep sending ``batch`` requests at a time until stderr reports a file fault; return every response."""
    responses: list[httpx.Response] = []

    def reported() -> bool:
        responses.extend(send(service.base_url, batch, threads=2))
        return "cannot write" in service.stderr_text()

    wait_for(reported, what)
    return responses


@contextmanager
def background_load(base_url: str) -> Iterator[list[object]]:
    """Requests in a loop until the block ends; results are responses or the exception raised."""
    results: list[object] = []
    stop = threading.Event()

    def loop() -> None:
        with httpx.Client(timeout=30, limits=httpx.Limits(max_keepalive_connections=0)) as client:
            i = 0
            while not stop.is_set():
                try:
                    results.append(client.get(f"{base_url}{PATHS[i % len(PATHS)]}"))
                except httpx.HTTPError as exc:  # the killed worker's connections
                    results.append(exc)
                i += 1

    threads = [threading.Thread(target=loop) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        yield results
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)


def ids_in(files: dict[str, list[dict[str, Any]]]) -> dict[str, set[str]]:
    where: dict[str, set[str]] = defaultdict(set)
    for name, records in files.items():
        for record in records:
            if record.get("tracking_id"):
                where[record["tracking_id"]].add(name)
    return where


def access_ids(files: dict[str, list[dict[str, Any]]]) -> set[str]:
    return {r["tracking_id"] for records in files.values() for r in records if r.get("name") == "service.access"}


# -- tests ---------------------------------------------------------------------------------------
def test_two_workers_under_load_then_sigkill_keeps_files_whole_and_names_stable(tmp_path: Path) -> None:
    service = FileModeService(tmp_path, workers=2)
    with service:
        assert service.proc is not None
        parent = service.proc.pid
        wait_for(lambda: len(workers_of(parent)) == 2, "two workers")
        owners = wait_for(lambda: (o := file_owners(service)) and all(o.values()) and o, "open log files")
        assert_no_file_shared(owners)
        assert owners[service.proc.pid] == {"app.log"}
        assert set.union(*owners.values()) == {"app.log", "app-w1.log", "app-w2.log"}

        responses = send(service.base_url, 400)
        assert all(r.status_code == 200 for r in responses)
        sent = {r.headers["x-tracking-id"] for r in responses}
        assert len(sent) == 400
        assert_no_file_shared(file_owners(service))  # checked while under load, too
        files = wait_for(lambda: sent <= access_ids(f := service.files()) and f, "every access line in the files")

        where = ids_in(files)
        for tracking_id in sent:
            assert len(where[tracking_id]) == 1, f"{tracking_id} is in {where[tracking_id]}"
            assert next(iter(where[tracking_id])) in {"app-w1.log", "app-w2.log"}
        assert {r["processName"] for r in files["app.log"]} == {"MainProcess"}
        first_names = {n: {r["processName"] for r in files[n]} for n in ("app-w1.log", "app-w2.log")}
        assert all(len(v) == 1 for v in first_names.values())
        assert first_names["app-w1.log"] != first_names["app-w2.log"]

        # SIGKILL the worker of app-w1.log while requests keep coming in.
        victim = next(pid for pid, names in file_owners(service).items() if names == {"app-w1.log"})
        with background_load(service.base_url) as results:
            wait_for(lambda: len(results) > 20, "load before the kill")
            os.kill(victim, signal.SIGKILL)
            replacement = wait_for(
                lambda: next((p for p, n in file_owners(service).items() if n == {"app-w1.log"} and p != victim), None),
                "a replacement worker writing app-w1.log",
            )
            served = len(results)
            wait_for(lambda: len(results) > served + 20, "load served after the restart")
        assert replacement != victim
        assert_no_file_shared(file_owners(service))

        after = send(service.base_url, 100)
        assert all(r.status_code == 200 for r in after)
        later = {r.headers["x-tracking-id"] for r in after}
        ok = {r.headers["x-tracking-id"] for r in results if isinstance(r, httpx.Response) and r.status_code == 200}
        files = wait_for(lambda: later <= access_ids(f := service.files()) and f, "lines after the restart")
        assert service.stop() in (0, -signal.SIGTERM)

    files = service.files(live=False)  # every line of every file parses: nothing torn by the kill
    assert set(files) == {"app.log", "app-w1.log", "app-w2.log"}, "the replacement reused the slot's name"
    names_w1 = [r["processName"] for r in files["app-w1.log"]]
    assert names_w1[0] in first_names["app-w1.log"]
    assert len(set(names_w1)) == 2, "the dead worker's lines, then its replacement's, in one file"
    where = ids_in(files)
    assert all(len(where[t]) == 1 for t in sent | later)
    # Lines the killed worker had queued but not yet written die with it; the rest are in one file.
    assert all(len(where[t]) <= 1 for t in ok)


def test_logs_command_finds_an_id_across_two_workers_and_a_rotated_gzipped_file(tmp_path: Path) -> None:
    tracking_id = "order-7f3a9c21-customer-quoted"
    log_dir = tmp_path / "logs"
    # Yesterday's lines of this ID, rotated and gzipped by the sink itself (its clock moved a day).
    yesterday = time.time() - 86_400
    clock = [yesterday]
    sink = FileSink(log_dir, "app", worker=True, compress=True, clock=lambda: clock[0])
    for n in range(3):
        stamp = utc_stamp(yesterday + n)
        record = {"@timestamp": stamp, "level": "INFO", "processName": "SpawnProcess-1", "tracking_id": tracking_id}
        sink.write(orjson.dumps({**record, "message": f"yesterday {n}"}, option=orjson.OPT_APPEND_NEWLINE))
    clock[0] = time.time()
    sink.write(b"")  # the first write of the new day rotates
    assert sink.wait_compressed(60)
    sink.close()
    rotated = log_dir / f"app-w1.{datetime.fromtimestamp(yesterday).date()}.log.gz"
    assert rotated.exists()

    service = FileModeService(tmp_path, workers=2, env={"LOG_GZIP": "1"})
    with service:
        sent = 0

        def both_workers_have_it() -> bool:
            nonlocal sent
            responses = send(service.base_url, 8, threads=4, tracking_id=tracking_id)
            assert all(r.status_code == 200 for r in responses)
            sent += len(responses)
            files = service.files()
            return all(any(r.get("tracking_id") == tracking_id for r in files[n]) for n in ("app-w1.log", "app-w2.log"))

        wait_for(both_workers_have_it, "requests with the ID served by both workers")
        assert service.stop() in (0, -signal.SIGTERM)

    files = service.files(live=False)
    stored = [r for records in files.values() for r in records if r.get("tracking_id") == tracking_id]
    assert len([r for r in stored if r.get("name") == "service.access"]) == sent

    result = subprocess.run(
        [sys.executable, "-m", "service", "logs", tracking_id, "--dir", str(log_dir)],
        cwd=ROOT,
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    printed = parse_json_lines(result.stdout, "logs output")
    assert len(printed) == len(stored)
    assert [r["message"] for r in printed[:3]] == ["yesterday 0", "yesterday 1", "yesterday 2"]
    stamps = [r["@timestamp"] for r in printed]
    assert stamps == sorted(stamps)
    assert len({r["processName"] for r in printed[3:]}) == 2, "lines from both workers"
    assert all(r["tracking_id"] == tracking_id for r in printed)


def utc_stamp(ts: float) -> str:
    moment = datetime.fromtimestamp(ts, UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def not_a_directory(tmp_path: Path) -> tuple[Path, list[str]]:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    return blocker / "logs", []


def no_writable_slot(tmp_path: Path) -> tuple[Path, list[str]]:
    """Every slot file there is read-only, and the directory refuses new ones."""
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    for name in ("app.log", "app-w1.log", "app-w2.log"):
        (log_dir / name).write_bytes(b"")
        (log_dir / name).chmod(0o444)
    log_dir.chmod(0o555)
    return log_dir, permissions_bind()


@pytest.mark.parametrize("unusable", [not_a_directory, no_writable_slot])
def test_an_unusable_log_dir_stops_startup_with_one_json_line_naming_it(
    tmp_path: Path, unusable: Callable[[Path], tuple[Path, list[str]]]
) -> None:
    log_dir, prefix = unusable(tmp_path)
    env = {**os.environ, "LOG_MODE": "file", "LOG_DIR": str(log_dir)}
    command = [*prefix, sys.executable, "-m", "service", "--host", "127.0.0.1", "--port", str(free_port())]
    try:  # the timeout is the bound: a crash-looping service never exits by itself
        result = subprocess.run([*command, "--workers", "2"], cwd=tmp_path, env=env, capture_output=True, timeout=60)
    finally:
        if log_dir.is_dir():
            log_dir.chmod(0o755)
    assert result.returncode == 2
    assert result.stdout == b""
    [record] = parse_json_lines(result.stderr, "stderr")
    assert record["level"] == "CRITICAL"
    assert "LOG_DIR" in record["message"] and str(log_dir) in record["message"]


def test_a_read_only_slot_file_is_reported_once_and_two_real_workers_take_the_next_slots(tmp_path: Path) -> None:
    prefix = permissions_bind()
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    theirs = log_dir / "app-w1.log"  # left read-only by another user, say
    theirs.write_bytes(orjson.dumps({"message": "another user's line"}) + b"\n")
    theirs.chmod(0o444)
    service = FileModeService(tmp_path, workers=2, prefix=prefix)
    with service:
        responses = send(service.base_url, 40)
        assert all(r.status_code == 200 for r in responses)
        sent = {r.headers["x-tracking-id"] for r in responses}
        files = wait_for(lambda: sent <= access_ids(f := service.files()) and f, "every access line in the files")
        owners = file_owners(service)
        assert_no_file_shared(owners)
        assert set.union(*owners.values()) == {"app.log", "app-w2.log", "app-w3.log"}
        assert service.stop() in (0, -signal.SIGTERM)
    assert read_log(theirs) == [{"message": "another user's line"}]
    assert not [r for records in files.values() for r in records if "died" in str(r.get("message"))]
    mentions = [line for line in service.stderr_text().splitlines() if str(theirs) in line]
    reports = parse_json_lines("\n".join(mentions).encode(), "stderr")
    assert [r["path"] for r in reports] == [str(theirs)], "reported once: the other worker passes it over silently"
    assert reports[0]["level"] == "WARNING" and "Permission denied" in reports[0]["message"]


def test_a_replacement_worker_that_finds_no_writable_slot_serves_on_instead_of_crash_looping(tmp_path: Path) -> None:
    service = FileModeService(tmp_path, workers=2, prefix=permissions_bind())
    log_dir = service.log_dir
    with service:
        assert service.proc is not None
        parent = service.proc.pid
        victim = wait_for(
            lambda: next((p for p, n in file_owners(service).items() if n == {"app-w1.log"}), None), "app-w1.log open"
        )
        for path in log_dir.iterdir():
            path.chmod(0o444)
        log_dir.chmod(0o555)  # from now on no new slot can be created
        try:
            os.kill(victim, signal.SIGKILL)
            wait_for(lambda: len(w := workers_of(parent)) == 2 and victim not in w, "a replacement worker")
            wait_for(lambda: "cannot write" in service.stderr_text(), "the replacement's fault report")
            replacement_era = workers_of(parent)
            responses = send(service.base_url, 40)
            time.sleep(3)  # a crash-looping worker would have been replaced several times by now
            assert workers_of(parent) == replacement_era
            assert all(r.status_code == 200 for r in responses)
            unwritable = service.stderr_text().splitlines()  # before the directory is writable again
        finally:
            log_dir.chmod(0o755)
        assert service.stop() in (0, -signal.SIGTERM)
    faults = [line for line in unwritable if "cannot write" in line]
    assert len(faults) == 1 and "Permission denied" in faults[0], unwritable
    # Made writable again before the stop, the directory may give the replacement's retry a new slot in
    # time: then it reports the slot it passed over ("... writing app-w3.log instead"), and nothing else.
    later = [line for line in service.stderr_text().splitlines() if "cannot write" in line and line not in faults]
    assert all("instead" in line for line in later), later
    died = [r for r in read_log(log_dir / "app.log") if "died" in str(r.get("message"))]
    assert len(died) == 1, died


def test_log_dir_replaced_mid_run_requests_keep_succeeding_fault_reported_once(tmp_path: Path) -> None:
    service = FileModeService(tmp_path, workers=1, env={"LOG_MODE": "both"})
    log_dir = service.log_dir
    with service:
        first = send(service.base_url, 4)
        ids = {r.headers["x-tracking-id"] for r in first}
        wait_for(lambda: ids <= access_ids({"a": read_log(log_dir / "app.log", live=True)}), "lines in the file")

        log_dir.rename(tmp_path / "logs-moved")
        log_dir.write_text("a regular file where the log directory was")  # root cannot be stopped by chmod

        during = send_until_fault_reported(service, 2, "the fault on stderr")
        during.extend(send(service.base_url, 20))
        assert all(r.status_code == 200 for r in during)
        during_ids = {r.headers["x-tracking-id"] for r in during}
        wait_for(lambda: during_ids <= access_ids({"stdout": stdout_records(service)}), "stdout carrying on")

        log_dir.unlink()
        resumed: list[httpx.Response] = []

        def back_in_the_file() -> bool:
            resumed.extend(send(service.base_url, 2, threads=2))
            path = log_dir / "app.log"
            return path.exists() and bool(
                {r.headers["x-tracking-id"] for r in resumed} & access_ids({"a": read_log(path, live=True)})
            )

        wait_for(back_in_the_file, "file logging to resume")
        assert all(r.status_code == 200 for r in resumed)
        assert service.stop() in (0, -signal.SIGTERM)

    stderr = service.stderr_text().splitlines()
    faults = [line for line in stderr if "cannot write" in line]
    assert len(faults) == 1, stderr
    assert "no longer a directory" in faults[0]
    assert len([line for line in stderr if "resumed writing" in line]) == 1, stderr
    read_log(tmp_path / "logs-moved" / "app.log")
    read_log(log_dir / "app.log")
    assert during_ids <= access_ids({"stdout": service.records()})


@pytest.fixture
def full_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 512 KiB tmpfs as LOG_DIR; skipped where mounting is not allowed (unprivileged CI)."""
    mount_point = tmp_path / "logs"
    mount_point.mkdir()
    with mounted_tmpfs(mount_point, "size=512k"):
        yield mount_point


def test_disk_full_mid_run_requests_keep_succeeding_and_no_line_is_torn(tmp_path: Path, full_tmpfs: Path) -> None:
    service = FileModeService(tmp_path, workers=1, env={"LOG_MODE": "both"})
    with service:
        wait_for(lambda: (full_tmpfs / "app.log").stat().st_size > 0, "startup lines in the file")
        filler = full_tmpfs / "filler.bin"
        with filler.open("wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError:
                pass  # ENOSPC: the disk is full
        during = send_until_fault_reported(service, 4, "the disk-full fault on stderr")
        during.extend(send(service.base_url, 40))
        assert all(r.status_code == 200 for r in during)
        filler.unlink()
        resumed: list[httpx.Response] = []

        def back() -> bool:
            resumed.extend(send(service.base_url, 2, threads=2))
            ids = {r.headers["x-tracking-id"] for r in resumed}
            return bool(ids & access_ids({"a": read_log(full_tmpfs / "app.log", live=True)}))

        wait_for(back, "file logging to resume")
        assert service.stop() in (0, -signal.SIGTERM)
    stderr = service.stderr_text().splitlines()
    faults = [line for line in stderr if "cannot write" in line]
    # One report per episode. A nearly full disk may flap: each failed batch is taken back, which frees room
    # for the next small one, so a second episode can start; every report is still this ENOSPC, once a retry.
    assert 1 <= len(faults) <= 3, stderr
    assert all("No space left" in line for line in faults), stderr
    read_log(full_tmpfs / "app.log")  # every line whole: a half-written batch was taken back
    ids = {r.headers["x-tracking-id"] for r in during}
    assert ids <= access_ids({"stdout": service.records()})


def test_retention_at_startup_removes_old_files_of_dead_workers_and_keeps_newer(tmp_path: Path) -> None:
    log_dir = tmp_path / "logs"
    log_dir.mkdir()

    def aged(name: str, days: float) -> Path:
        path = log_dir / name
        data = orjson.dumps({"message": name}) + b"\n"
        path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
        when = time.time() - days * 86_400
        os.utime(path, (when, when))
        return path

    old = [aged("app-w5.log", 4), aged("app-w1.2026-01-01.log.gz", 4), aged("app.2026-01-02.log", 3.5)]
    new = [aged("app-w5.2026-11-23.log.gz", 2), aged("app-w9.log", 1)]
    other = aged("access.log", 30)
    service = FileModeService(tmp_path, workers=2, env={"LOG_RETENTION_DAYS": "3"})
    with service:
        assert service.stop() in (0, -signal.SIGTERM)
    assert [p.name for p in old if p.exists()] == []
    assert all(p.exists() for p in [*new, other])


# -- the logrotate alternative -----------------------------------------------------------------------
LOGROTATE = shutil.which("logrotate") or ("/usr/sbin/logrotate" if Path("/usr/sbin/logrotate").exists() else None)
CONFIG = ROOT / "deploy" / "logrotate" / "service.conf"


def test_logrotate_config_matches_file_mode_retention() -> None:
    directives = {line.split()[0]: line.split()[1:] for line in _config_body(CONFIG.read_text())}
    retention = str(LogSettings().retention_days)
    assert directives["rotate"] == [retention] and directives["maxage"] == [retention]
    for needed in ("daily", "copytruncate", "compress", "dateext", "missingok", "notifempty"):
        assert needed in directives, needed


def _config_body(text: str) -> list[str]:
    body = text.split("{", 1)[1].split("}", 1)[0]
    return [line.strip() for line in body.splitlines() if line.strip() and not line.strip().startswith("#")]


@pytest.mark.skipif(LOGROTATE is None, reason="logrotate is not installed (Debian package logrotate)")
def test_logrotate_rotates_the_nohup_file_in_place_and_the_logs_command_reads_the_result(tmp_path: Path) -> None:
    assert LOGROTATE is not None
    log = tmp_path / "service.log"
    config = tmp_path / "logrotate.conf"
    text = CONFIG.read_text()
    assert "/var/log/service/service.log {" in text
    config.write_text(text.replace("/var/log/service/service.log", str(log)))
    state = tmp_path / "logrotate.state"
    tracking_id = "nohup-run-0001"

    def record(n: int) -> bytes:
        stamp = f"2026-11-24T10:00:{n:02d}.000Z"
        return orjson.dumps({"@timestamp": stamp, "tracking_id": tracking_id, "message": f"line {n}"}) + b"\n"

    # The service's stdout as `nohup ... >> service.log` leaves it: an O_APPEND descriptor held open.
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, record(1) + record(2))
        done = subprocess.run([LOGROTATE, "-f", "-s", str(state), str(config)], capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr
        yesterday = date.today() - timedelta(days=1)  # dateyesterday: named after the day the lines were written
        rotated = tmp_path / f"service.{yesterday}.log.gz"
        assert sorted(p.name for p in tmp_path.glob("service.*")) == [rotated.name, "service.log"]
        assert gzip.decompress(rotated.read_bytes()) == record(1) + record(2)
        assert log.stat().st_size == 0  # copytruncate: same file, emptied, still held by the process
        os.write(fd, record(3))
    finally:
        os.close(fd)
    assert log.read_bytes() == record(3)  # appended at the start: no hole of NUL bytes

    result = subprocess.run(
        [sys.executable, "-m", "service", "logs", tracking_id, "--dir", str(tmp_path), "--name", "service"],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert [r["message"] for r in parse_json_lines(result.stdout)] == ["line 1", "line 2", "line 3"]

    log.unlink()  # missingok: a missing file is not an error
    again = subprocess.run([LOGROTATE, "-f", "-s", str(state), str(config)], capture_output=True, timeout=60)
    assert again.returncode == 0, again.stderr
    assert re.search(rb"error", again.stderr) is None
