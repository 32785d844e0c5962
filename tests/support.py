"""Shared helpers: run the real service under uvicorn in a subprocess on 127.0.0.1 and read its output."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def parse_json_lines(data: bytes, source: str = "stdout") -> list[dict[str, Any]]:
    """Every line must be one JSON object; fail loudly naming the first line that is not."""
    records = []
    for number, line in enumerate(data.splitlines(), 1):
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise AssertionError(f"{source} line {number} is not JSON ({exc}): {line[:300]!r}") from None
        assert isinstance(record, dict), f"{source} line {number} is not an object: {line[:300]!r}"
        records.append(record)
    return records


@cache
def _bound_by_permissions() -> tuple[tuple[str, ...], str]:
    """A command prefix under which mode bits bind, and why there is none ("" when there is one)."""
    prefix: tuple[str, ...] = ()
    if os.geteuid() == 0:  # root ignores mode bits: drop the capabilities that let it
        prefix = ("setpriv", "--bounding-set=-dac_override,-dac_read_search", "--")
    with tempfile.TemporaryDirectory() as scratch:
        probe = Path(scratch) / "read-only"
        probe.write_bytes(b"")
        probe.chmod(0o444)
        try:
            done = subprocess.run([*prefix, sys.executable, "-c", f"open({str(probe)!r}, 'ab')"], capture_output=True)
        except OSError as exc:
            return (), f"cannot run {prefix[0]}: {exc}"
    if done.returncode == 0:
        return (), "a read-only file stays writable here even without CAP_DAC_OVERRIDE"
    if b"PermissionError" not in done.stderr:
        return (), f"cannot drop CAP_DAC_OVERRIDE: {done.stderr.decode(errors='replace').strip()[-300:]}"
    return prefix, ""


def permissions_bind() -> list[str]:
    """The prefix for a command that must obey file mode bits (as root: setpriv without CAP_DAC_OVERRIDE).

    Root stays the owner of its files, so chmod 0444 makes a file unwritable for that command and
    chmod back restores it. Skips the calling test where mode bits cannot be made to bind.
    """
    prefix, why_not = _bound_by_permissions()
    if why_not:
        pytest.skip(why_not)
    return list(prefix)


@contextmanager
def mounted_tmpfs(mount_point: Path, options: str) -> Iterator[Path]:
    """A tmpfs mounted on ``mount_point`` with ``options`` (e.g. ``ro,size=64k``) for the block; skips the
    test where mounting is not allowed (unprivileged CI)."""
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount_point)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


class ServiceProcess:
    """``python -m service`` as users run it, stdout and stderr captured to files."""

    def __init__(
        self,
        tmp_path: Path,
        *,
        workers: int = 1,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
        app: str | None = None,
    ) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.stdout_path = tmp_path / f"stdout-{self.port}.log"
        self.stderr_path = tmp_path / f"stderr-{self.port}.log"
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.command = [sys.executable, "-m", "service", "--host", "127.0.0.1", "--port", str(self.port)]
        self.command += ["--workers", str(workers), *args]
        if app:
            self.command += ["--app", app]
        self.workers = workers
        self.cwd = tmp_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> ServiceProcess:
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(self.command, stdout=out, stderr=err, env=self.env, cwd=self.cwd)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"service exited early ({self.proc.returncode}): {self.stderr_text()}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    if self.workers > 1:
                        self._wait_for_workers(deadline)
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop(signal.SIGKILL)
        raise AssertionError(f"service did not become healthy: {self.stderr_text()}")

    def _wait_for_workers(self, deadline: float) -> None:
        """Every worker logs 'Application startup complete.'; wait for all of them."""
        while time.monotonic() < deadline:
            text = self.stdout_path.read_bytes()
            if text.count(b"Application startup complete.") >= self.workers:
                return
            time.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise AssertionError("service did not stop in time") from None
        return int(self.proc.returncode)

    def stdout_bytes(self) -> bytes:
        return self.stdout_path.read_bytes()

    def stderr_text(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def records(self) -> list[dict[str, Any]]:
        return parse_json_lines(self.stdout_bytes())

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.stop()


def flushed_records(stream: io.BytesIO) -> list[dict[str, Any]]:
    """Every line the current pipeline wrote into ``stream`` (the ``out`` fixture), parsed, after a flush."""
    from service.logs.pipeline import current_pipeline

    pipeline = current_pipeline()
    assert pipeline is not None and pipeline.flush(10)
    return [orjson.loads(x) for x in stream.getvalue().splitlines()]
