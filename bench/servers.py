"""A benchmark server: ``python -m bench.serve VARIANT PORT`` under uvicorn, pinned to the server core."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import httpx

from bench.common import OUT, PYTHON, ROOT, SERVER_CPU, clean_env, free_port, pinned


class Server:
    """One variant's server. Stdout goes to a file in bench/out/, or to a pipe (``piped=True``)."""

    def __init__(
        self,
        variant: str,
        env: Mapping[str, str] | None = None,
        *,
        piped: bool = False,
        tag: str = "",
        python: str = PYTHON,
    ) -> None:
        self.variant = variant
        self.python = python
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        name = f"{variant}{'-' + tag if tag else ''}"
        self.stdout_path = OUT / f"{name}.stdout"
        self.stderr_path = OUT / f"{name}.stderr"
        self.env = clean_env(**(env or {}))
        self.piped = piped
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, path: str) -> str:
        return self.base_url + path

    def start(self) -> Server:
        OUT.mkdir(parents=True, exist_ok=True)
        command = pinned([self.python, "-m", "bench.serve", self.variant, str(self.port)], SERVER_CPU)
        with self.stderr_path.open("wb") as err:
            if self.piped:
                self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, env=self.env, cwd=ROOT)
            else:
                with self.stdout_path.open("wb") as out:
                    self.proc = subprocess.Popen(command, stdout=out, stderr=err, env=self.env, cwd=ROOT)
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.variant} exited ({self.proc.returncode}): {self.stderr_tail()}")
            try:
                if httpx.get(self.url("/healthz"), timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"{self.variant} did not become ready: {self.stderr_tail()}")

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM (the bundle drains its queue in the lifespan shutdown) and wait."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return int(self.proc.returncode or 0)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def cpu_seconds(self) -> float | None:
        """User + system CPU time of the server process, all threads (None where /proc is missing)."""
        if self.proc is None:
            return None
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stderr_tail(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")[-1500:]
        except OSError:
            return ""


def start_all(servers: list[Server]) -> None:
    """Start every server at once (they are idle until loaded) and wait until all answer."""
    for server in servers:
        server.start()
    try:
        for server in servers:
            server.wait_ready()
    except Exception:
        for server in servers:
            server.kill()
        raise


class PipeReader(threading.Thread):
    """Copies a server's stdout pipe to a file; ``pause()`` stops reading (the pipe fills up), ``resume()``."""

    def __init__(self, pipe: IO[bytes], path: Path) -> None:
        super().__init__(name=f"reader-{path.name}", daemon=True)
        self.pipe = pipe
        self.path = path
        self._go = threading.Event()
        self._go.set()

    def pause(self) -> None:
        self._go.clear()

    def resume(self) -> None:
        self._go.set()

    def run(self) -> None:
        fd = self.pipe.fileno()
        with self.path.open("wb") as out:
            while True:
                self._go.wait()
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    return
                out.write(chunk)


def get_json(url: str, **kwargs: Any) -> Any:
    return httpx.get(url, timeout=10, **kwargs).json()
