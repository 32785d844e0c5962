"""Part 1: log record throughput. Each variant runs in its own fresh, pinned subprocess.

Child: ``python -m bench.records VARIANT N WARM PATH`` prints its timings as JSON.
Parent: ``run(n, rounds)`` interleaves the variants (and the Pythons) over rounds, parses every output
file, and reports medians per variant (``valid`` is False when any round's output was wrong). Every
supported Python found on the machine (``interpreters()``) runs the same variants in the same run, so
the report can set them side by side.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from bench.common import OUT, PYTHON, ROOT, SERVER_CPU, clean_env, median, pinned

VARIANTS = ("bundle", "bundle-no-metrics", "original", "pjl-json", "pjl-orjson", "structlog", "loguru", "floor")
#: With ``--before REV``: this project as it was at git revision REV, on this Python only (same run).
BEFORE = "bundle-before"
LABELS = {
    "bundle": "this project (setup_logging)",
    "bundle-no-metrics": "this project, LOG_METRICS=false",
    BEFORE: "this project before (git revision given with --before)",
    "original": "original design (Filter + QueueHandler + json.dumps)",
    "pjl-json": "python-json-logger JsonFormatter + QueueHandler",
    "pjl-orjson": "python-json-logger OrjsonFormatter + QueueHandler",
    "structlog": "structlog + orjson + BytesLogger (sync)",
    "loguru": "loguru serialize=True enqueue=True",
    "floor": "hand-written floor (dict + orjson + buffered write)",
}


#: The Pythons the project supports; Part 1 runs on each one this machine has.
SUPPORTED = ("3.11", "3.12", "3.13")


def _candidates(version: str) -> Iterator[str]:
    tag = version.replace(".", "")
    yield os.environ.get(f"BENCH_PYTHON_{tag}", "")
    yield str(ROOT / f".venv-py{version}" / "bin" / "python")  # what scripts/test.sh makes
    yield str(ROOT / f".venv{tag}" / "bin" / "python")
    if shutil.which("pyenv"):
        found = subprocess.run(["pyenv", "prefix", version], capture_output=True, text=True, check=False)
        if found.returncode == 0 and found.stdout.strip():
            yield str(Path(found.stdout.strip().splitlines()[0]) / "bin" / "python3")


def _ready(python: str) -> bool:
    """``python`` exists and imports the project and every Part 1 peer."""
    if not python or not Path(python).exists():
        return False
    probe = "import orjson, structlog, loguru, pythonjsonlogger, service.logs.pipeline"
    done = subprocess.run([python, "-c", probe], capture_output=True, cwd=ROOT, env=clean_env(), check=False)
    return done.returncode == 0


def interpreters(which: str = "all") -> dict[str, str]:
    """Version -> interpreter: this one, plus (``which="all"``) each other supported Python found with the
    bench's dependencies (``BENCH_PYTHON_312=...``, ``.venv-py3.12/``, ``.venv312/``, or ``pyenv prefix 3.12``)."""
    current = f"{sys.version_info[0]}.{sys.version_info[1]}"
    found = {current: PYTHON}
    if which == "all":
        for version in SUPPORTED:
            if version not in found:
                python = next((c for c in _candidates(version) if _ready(c)), None)
                if python is not None:
                    found[version] = python
    return dict(sorted(found.items()))


def before_tree(revision: str) -> Path:
    """The ``service`` package as it was at git ``revision``, unpacked under bench/out (for PYTHONPATH)."""
    target = OUT / f"before-{revision}"
    if not (target / "service").is_dir():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", revision, "service"], capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def run_variant(
    variant: str,
    n: int,
    warm: int,
    path: Path,
    timeout: float = 300,
    python: str = PYTHON,
    before: Path | None = None,
) -> dict[str, Any]:
    """One fresh subprocess: timings plus the verdict of parsing its output file."""
    from bench.peers.logsetups import verify

    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    command = pinned([python, "-m", "bench.records", variant, str(n), str(warm), str(path)], SERVER_CPU)
    env = clean_env()
    if variant == BEFORE and before is not None:
        env["PYTHONPATH"] = str(before)  # ahead of the editable install: the old package is imported
    done = subprocess.run(command, capture_output=True, cwd=ROOT, env=env, timeout=timeout, check=False)
    if done.returncode != 0:
        return {"problems": [f"exit {done.returncode}: {done.stderr.decode(errors='replace')[-400:]}"]}
    timing: dict[str, Any] = orjson.loads(done.stdout.splitlines()[-1])
    timing["problems"] = verify(variant, path, n, warm)
    return timing


def run(
    n: int, rounds: int, warm: int = 1000, log: Any = print, pythons: str = "all", before: str | None = None
) -> dict[str, Any]:
    found = interpreters(pythons)
    current = f"{sys.version_info[0]}.{sys.version_info[1]}"
    log(f"  part 1 on Python {', '.join(found)}")
    old = before_tree(before) if before else None
    variants = (*VARIANTS, BEFORE) if old is not None else VARIANTS
    samples: dict[str, dict[str, list[dict[str, Any]]]] = {
        v: {var: [] for var in variants if var != BEFORE or v == current} for v in found
    }
    for round_no in range(rounds):
        order = variants if round_no % 2 == 0 else tuple(reversed(variants))
        for variant in order:
            for version, python in found.items():  # the Pythons interleaved too: load drifts hit them alike
                if variant not in samples[version]:
                    continue
                path = OUT / f"records-{version}-{variant}.jsonl"
                result = run_variant(variant, n, warm, path, python=python, before=old)
                samples[version][variant].append(result)
                if result["problems"]:
                    log(f"  part 1 round {round_no + 1} {version} {variant}: INVALID {result['problems']}")
                else:
                    log(
                        f"  part 1 round {round_no + 1} {version} {variant}:"
                        f" caller {result['caller_s'] / n * 1e6:.2f} us/rec, e2e {n / result['e2e_s']:,.0f} rec/s"
                    )
    by_python = {version: {"python": found[version], "variants": _summary(samples[version], n)} for version in found}
    results: dict[str, Any] = {"n": n, "rounds": rounds, "variants": by_python[current]["variants"], "before": before}
    results["pythons"] = by_python
    results["breakdown"] = breakdown(n)
    return results


def _summary(samples: dict[str, list[dict[str, Any]]], n: int) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for variant, runs in samples.items():
        good = [r for r in runs if not r["problems"]]
        problems = sorted({p for r in runs for p in r["problems"]})
        summary[variant] = {
            "label": LABELS[variant],
            "valid": not problems,
            "problems": problems,
            "caller_us": median([r["caller_s"] / n * 1e6 for r in good]),
            "e2e_rps": median([n / r["e2e_s"] for r in good]),
            "cpu_us": median([r["cpu_s"] / n * 1e6 for r in good]),
            "samples": len(good),
        }
    return summary


def breakdown(n: int, timeout: float = 300) -> dict[str, Any]:
    """bench/breakdown.py in a fresh pinned process: where the bundle's time per record goes."""
    path = OUT / "breakdown.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    command = pinned([PYTHON, "-m", "bench.breakdown", str(n), str(path)], SERVER_CPU)
    done = subprocess.run(command, capture_output=True, cwd=ROOT, env=clean_env(), timeout=timeout, check=False)
    if done.returncode != 0:
        return {"error": done.stderr.decode(errors="replace")[-400:]}
    result: dict[str, Any] = orjson.loads(done.stdout.splitlines()[-1])
    return result


def _child(argv: list[str]) -> None:
    from bench.peers.logsetups import RUNNERS

    variant, n, warm, path = argv[0], int(argv[1]), int(argv[2]), Path(argv[3])
    timing = RUNNERS[variant](path, n, warm)
    sys.stdout.write(orjson.dumps(timing).decode() + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    _child(sys.argv[1:])
