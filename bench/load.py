"""Load generation: ``wrk`` pinned to the load core, parsed; a small Python fallback for smoke runs without wrk."""

from __future__ import annotations

import http.client
import re
import shutil
import subprocess
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

from bench.common import LOAD_CPU, pinned

CONNECTIONS = 32
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


@dataclass
class LoadResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int  # socket errors plus non-2xx/3xx responses
    tool: str
    server_cpu_us: float | None = None  # the server process's CPU time (all threads) per request, when measured

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"cannot parse wrk duration {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output: str) -> LoadResult:
    percentiles = dict(re.findall(r"^\s+(\d+)%\s+(\S+)\s*$", output, re.MULTILINE))
    total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", output)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if not (total and rps and "50" in percentiles and "99" in percentiles):
        raise ValueError(f"unexpected wrk output:\n{output}")
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors += int(non2xx.group(1)) if non2xx else 0
    return LoadResult(
        requests=int(total.group(1)),
        seconds=_ms(total.group(2) + total.group(3)) / 1e3,
        rps=float(rps.group(1)),
        p50_ms=_ms(percentiles["50"]),
        p99_ms=_ms(percentiles["99"]),
        errors=errors,
        tool="wrk",
    )


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def wrk(url: str, seconds: float, connections: int = CONNECTIONS) -> LoadResult:
    """One bounded wrk run (one thread, ``connections`` keep-alive connections) against ``url``."""
    duration = f"{max(1, round(seconds))}s"
    command = pinned(["wrk", "-t1", f"-c{connections}", f"-d{duration}", "--latency", "--timeout", "5s", url], LOAD_CPU)
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30, check=True)
    return parse_wrk(done.stdout)


def python_load(url: str, seconds: float, connections: int = 4) -> LoadResult:
    """A tiny closed-loop load generator (smoke runs on machines without wrk): keep-alive, fixed duration."""
    match = re.fullmatch(r"http://([\d.]+):(\d+)(/.*)", url)
    if not match:
        raise ValueError(url)
    host, port, path = match.group(1), int(match.group(2)), match.group(3)
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=5)
        mine: list[float] = []
        while time.monotonic() < deadline:
            start = time.perf_counter()
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
                if response.status >= 400:
                    errors[0] += 1
            except OSError:
                errors[0] += 1
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=5)
                continue
            mine.append((time.perf_counter() - start) * 1e3)
        conn.close()
        with lock:
            latencies.extend(mine)

    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else float("nan")

    return LoadResult(len(latencies), elapsed, len(latencies) / elapsed, pct(0.5), pct(0.99), errors[0], "python")


def load(url: str, seconds: float) -> LoadResult:
    return wrk(url, seconds) if have_wrk() else python_load(url, seconds)
