"""Part 1: log record throughput. Each variant runs in its own fresh, pinned subprocess.

Child: ``python -m bench.records VARIANT N WARM PATH`` prints its timings as JSON.
Parent: ``run(n, rounds)`` interleaves the variants over rounds, parses every output file, and
reports medians per variant (``valid`` is False when any round's output was wrong).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from bench.common import OUT, PYTHON, ROOT, SERVER_CPU, clean_env, median, pinned

VARIANTS = ("bundle", "original", "pjl-json", "pjl-orjson", "structlog", "loguru", "floor")
LABELS = {
    "bundle": "this project (setup_logging)",
    "original": "original design (Filter + QueueHandler + json.dumps)",
    "pjl-json": "python-json-logger JsonFormatter + QueueHandler",
    "pjl-orjson": "python-json-logger OrjsonFormatter + QueueHandler",
    "structlog": "structlog + orjson + BytesLogger (sync)",
    "loguru": "loguru serialize=True enqueue=True",
    "floor": "hand-written floor (dict + orjson + buffered write)",
}


def run_variant(variant: str, n: int, warm: int, path: Path, timeout: float = 300) -> dict[str, Any]:
    """One fresh subprocess: timings plus the verdict of parsing its output file."""
    from bench.peers.logsetups import verify

    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    command = pinned([PYTHON, "-m", "bench.records", variant, str(n), str(warm), str(path)], SERVER_CPU)
    done = subprocess.run(command, capture_output=True, cwd=ROOT, env=clean_env(), timeout=timeout, check=False)
    if done.returncode != 0:
        return {"problems": [f"exit {done.returncode}: {done.stderr.decode(errors='replace')[-400:]}"]}
    timing: dict[str, Any] = orjson.loads(done.stdout.splitlines()[-1])
    timing["problems"] = verify(variant, path, n, warm)
    return timing


def run(n: int, rounds: int, warm: int = 1000, log: Any = print) -> dict[str, Any]:
    samples: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
    for round_no in range(rounds):
        order = VARIANTS if round_no % 2 == 0 else tuple(reversed(VARIANTS))
        for variant in order:
            result = run_variant(variant, n, warm, OUT / f"records-{variant}.jsonl")
            samples[variant].append(result)
            if result["problems"]:
                log(f"  part 1 round {round_no + 1} {variant}: INVALID {result['problems']}")
            else:
                log(
                    f"  part 1 round {round_no + 1} {variant}: caller {result['caller_s'] / n * 1e6:.2f} us/rec,"
                    f" e2e {n / result['e2e_s']:,.0f} rec/s"
                )
    results: dict[str, Any] = {"n": n, "rounds": rounds, "variants": {}}
    for variant, runs in samples.items():
        good = [r for r in runs if not r["problems"]]
        problems = sorted({p for r in runs for p in r["problems"]})
        results["variants"][variant] = {
            "label": LABELS[variant],
            "valid": not problems,
            "problems": problems,
            "caller_us": median([r["caller_s"] / n * 1e6 for r in good]),
            "e2e_rps": median([n / r["e2e_s"] for r in good]),
            "cpu_us": median([r["cpu_s"] / n * 1e6 for r in good]),
            "samples": len(good),
        }
    results["breakdown"] = breakdown(n)
    return results


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
