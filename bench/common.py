"""Shared helpers: paths, subprocess pinning, medians, versions and machine facts."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
OUT = BENCH / "out"
PYTHON = sys.executable

#: The server (or the logging process) runs on this core, the load generator on the other one.
SERVER_CPU = "0"
LOAD_CPU = "1"

PEERS = (
    "fastapi",
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "h11",
    "orjson",
    "structlog",
    "python-json-logger",
    "loguru",
    "asgi-correlation-id",
    "starlette-context",
    "matplotlib",
)

#: The tracking ID every Part 1 variant logs under (checked on every line).
PART1_ID = "bench-0123456789abcdef"


def pinned(command: Sequence[str], cpu: str) -> list[str]:
    """``command`` pinned to ``cpu`` with taskset when this machine has it and more than one core."""
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", cpu, *command]
    return list(command)


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without the developer's ``LOG_*`` settings (every variant starts from defaults)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOG_", "BENCH_"))}
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PEERS:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    wrk = shutil.which("wrk")
    if wrk:
        # `wrk -v` prints its version and exits with status 1.
        text = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False).stdout
        found["wrk"] = text.split()[1] if text.split()[:1] == ["wrk"] and len(text.split()) > 1 else "?"
    else:
        found["wrk"] = "not installed"
    return found


def machine() -> dict[str, Any]:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "system": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
    }


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))


def read_json(path: Path) -> Any:
    return orjson.loads(path.read_bytes())
