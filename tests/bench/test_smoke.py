"""The benchmark suite's smoke mode: every part runs with tiny counts and every variant's output is checked.

No timing is asserted; this only keeps ``bench/`` from rotting. Needs the ``bench`` extra.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.support import ROOT

BENCH_DEPS = ("structlog", "pythonjsonlogger", "loguru", "asgi_correlation_id", "starlette_context", "matplotlib")
missing = [name for name in BENCH_DEPS if importlib.util.find_spec(name) is None]

pytestmark = pytest.mark.skipif(bool(missing), reason=f"bench extra not installed ({', '.join(missing)})")


@pytest.mark.timeout(120)
def test_smoke_run_checks_every_variant() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOG_")}
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=110
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = orjson.loads((ROOT / "bench" / "out" / "results-smoke.json").read_bytes())
    for part in ("part1", "part2", "part3"):
        for name, entry in results[part]["variants"].items():
            assert entry["valid"], f"{part} {name}: {entry['problems']}"
    part4 = results["part4"]["policies"]
    assert part4["block"]["lines_lost"] == 0
    drop = part4["drop"]
    if drop["lines_lost"]:  # whatever it dropped, it said so in a log line
        assert drop["drop_report_lines"] >= 1
        assert drop["dropped_reported"] >= drop["lines_lost"]
    assert (ROOT / "bench" / "out" / "smoke" / "RESULTS.md").read_text().startswith("# Benchmark results")


@pytest.mark.timeout(120)
def test_paired_smoke_run_measures_every_variant(tmp_path: Path) -> None:
    """`python -m bench.paired --smoke`: one round of real servers loaded at once; every variant gets a share
    of bare, bare's own is exactly 1. No timing is asserted."""
    out = tmp_path / "paired.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOG_")}
    done = subprocess.run(
        [sys.executable, "-m", "bench.paired", "--smoke", "mw", "--json", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=110,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = orjson.loads(out.read_bytes())["mw"]
    assert list(results) == [
        "mw-bare",
        "mw-floor",
        "mw-minimal",
        "mw-bundle",
        "mw-bundle-quiet",
        "mw-asgi-correlation-id",
    ]
    assert results["mw-bare"]["share"] == 1.0
    for name, entry in results.items():
        assert entry["rounds"] == 1 and entry["problems"] == [], name
        assert 0.05 < entry["share"] < 20 and entry["cpu_us"] > 0, name
    assert "| mw-bundle | " in done.stdout and "≥ 0.95: " in done.stdout
