"""``python -m bench [--smoke] [--parts 1,2,3,4]``: run the benchmarks and write RESULTS.md + results.png."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from bench import records, report, web
from bench.common import BENCH, LOAD_CPU, OUT, SERVER_CPU, machine, versions, write_json
from bench.load import CONNECTIONS, have_wrk

#: (full run, smoke run) settings of each part.
FULL = {"n": 100_000, "p1_rounds": 3, "seconds": 1.0, "rounds": 11, "warmup": 1.0, "samples": 200,
        "p4_seconds": 6.0, "stall": 2.0, "p4_rounds": 2, "queue_size": 1000}  # fmt: skip
SMOKE = {"n": 2_000, "p1_rounds": 1, "seconds": 1.0, "rounds": 1, "warmup": 0.0, "samples": 20,
         "p4_seconds": 2.0, "stall": 0.6, "p4_rounds": 1, "queue_size": 100}  # fmt: skip


def _log(message: str) -> None:
    print(message, flush=True)


def _loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="seconds-long run: tiny counts, correctness only")
    parser.add_argument("--parts", default="1,2,3,4", help="comma-separated parts to run (default: all)")
    parser.add_argument(
        "--pythons",
        choices=["all", "current"],
        help="Parts 1-3 on every supported Python found (default) or on this one only (default with --smoke)",
    )
    parser.add_argument(
        "--before",
        metavar="REV",
        help="Part 1 also runs this project as it was at git revision REV (this Python), for a before/after",
    )
    args = parser.parse_args(argv)
    parts = {int(p) for p in args.parts.split(",") if p.strip()}
    cfg = SMOKE if args.smoke else FULL
    started = time.monotonic()
    load_before = _loadavg()
    results: dict[str, Any] = {}
    if 1 in parts:
        _log(f"part 1: log record throughput, {cfg['n']:,} records per variant")
        pythons = args.pythons or ("current" if args.smoke else "all")
        results["part1"] = records.run(
            int(cfg["n"]),
            int(cfg["p1_rounds"]),
            warm=min(1000, int(cfg["n"])),
            log=_log,
            pythons=pythons,
            before=args.before,
        )
    # The server parts on this Python, then (a full run) on each other supported Python found.
    servers = records.interpreters(args.pythons or ("current" if args.smoke else "all"))
    current = f"{sys.version_info[0]}.{sys.version_info[1]}"
    for version in [current, *(v for v in servers if v != current)]:
        python = servers[version]
        into = results if version == current else results.setdefault("servers_by_python", {}).setdefault(version, {})
        if 2 in parts:
            _log(f"part 2: middleware cost (Python {version})")
            into["part2"] = web.part2(cfg["seconds"], int(cfg["rounds"]), cfg["warmup"], log=_log, python=python)
        if 3 in parts:
            _log(f"part 3: full stack (Python {version})")
            into["part3"] = web.part3(
                cfg["seconds"], int(cfg["rounds"]), cfg["warmup"], int(cfg["samples"]), log=_log, python=python
            )
    if 4 in parts:
        _log("part 4: stalled stdout")
        results["part4"] = web.part4(
            cfg["p4_seconds"], cfg["stall"], int(cfg["p4_rounds"]), cfg["warmup"], int(cfg["queue_size"]), log=_log
        )
    results["meta"] = {
        "smoke": args.smoke,
        "machine": machine(),
        "versions": versions(),
        "server_cpu": SERVER_CPU,
        "load_cpu": LOAD_CPU,
        "load_tool": "wrk" if have_wrk() else "python fallback (wrk not installed)",
        "connections": CONNECTIONS,
        "elapsed_s": time.monotonic() - started,
        "load_before": load_before,
        "load_after": _loadavg(),
        "config": cfg,
    }
    target_dir = OUT / "smoke" if args.smoke else BENCH
    target_dir.mkdir(parents=True, exist_ok=True)
    write_json(OUT / ("results-smoke.json" if args.smoke else "results.json"), results)
    (target_dir / "RESULTS.md").write_text(report.markdown(results))
    report.chart(results, target_dir / "results.png")
    _log(f"wrote {target_dir / 'RESULTS.md'} and {target_dir / 'results.png'} in {results['meta']['elapsed_s']:.0f} s")
    for line in report.targets_text(results):
        _log("  " + line)
    invalid = [
        f"{part}/{name}: {entry['problems']}"
        for part in ("part1", "part2", "part3")
        if part in results
        for name, entry in results[part]["variants"].items()
        if not entry["valid"]
    ]
    if "part4" in results:
        invalid += [f"part4/{p}: {e['problems']}" for p, e in results["part4"]["policies"].items() if e["problems"]]
    for problem in invalid:
        _log(f"INVALID {problem}")
    return 1 if invalid else 0


if __name__ == "__main__":
    sys.exit(main())
