"""``python -m bench.paired [SET...]``: each variant's share of bare, with all servers loaded at the same time.

Why: on this kind of machine a server's speed drifts by up to ±20 % over seconds (other tenants of the
host), and servers measured one after the other (Parts 2 and 3) carry that drift into their ratios, more
than the 5 % a target has to see. Here every round starts one fresh server per variant, all pinned to the
server core, warms them, then loads them **at once** (one load generator per server, on the load core):
they time-share one core under the same conditions, and the drift cancels in their ratio.

The share of bare is bare's server CPU time per request over the variant's, per round: what each would
serve alone on a core it saturates (req/s = 1 / CPU per request; Parts 2 and 3 confirm the relation). CPU
time rather than req/s, because the core is shared by threads, not processes: a server with a busy
listener thread gets more than its share of the core. Two identical bare servers measured this way agree
within ±2 % per round. The median over rounds is reported with its range.
"""

from __future__ import annotations

import argparse
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import median, write_json
from bench.load import LoadResult, load
from bench.servers import Server, start_all
from bench.targets import MIDDLEWARE_SHARE, STACK_SHARE
from bench.web import measured_load

SETS = {
    "mw": ("mw-bare", "mw-floor", "mw-minimal", "mw-bundle", "mw-bundle-quiet", "mw-asgi-correlation-id"),
    "stack": ("stack-bare", "stack-bundle", "stack-structlog", "stack-original"),
}
#: The target each set's bundle variants are held to (issues 10 and 11), as a share of bare.
TARGETS = {"mw-bundle": MIDDLEWARE_SHARE, "mw-bundle-quiet": MIDDLEWARE_SHARE, "stack-bundle": STACK_SHARE}


@dataclass
class Variant:
    name: str
    shares: list[float] = field(default_factory=list)  # per round: bare's CPU per request / this one's
    cpu_us: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def share(self) -> float:
        return median(self.shares)

    def summary(self) -> dict[str, object]:
        return {
            "share": self.share,
            "low": min(self.shares),
            "high": max(self.shares),
            "cpu_us": median(self.cpu_us),
            "rounds": len(self.shares),
            "shares": self.shares,
            "target": TARGETS.get(self.name),
            "problems": self.problems,
        }


def one_round(names: list[str], path: str, seconds: float, python: str, tag: str) -> list[LoadResult]:
    """Start a fresh server per variant, warm each, load all at once; each load result carries the server's
    CPU µs per request."""
    servers = [Server(name, tag=f"{tag}-{i}", python=python) for i, name in enumerate(names)]
    start_all(servers)
    try:
        for server in servers:
            load(server.url(path), 1.0)
        results: list[LoadResult | None] = [None] * len(servers)

        def run(i: int) -> None:
            results[i] = measured_load(servers[i], path, seconds)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(servers))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for server in servers:
            server.stop()
    measured = []
    for name, server, result in zip(names, servers, results, strict=True):
        if result is None or result.server_cpu_us is None:
            raise RuntimeError(f"{name}: no measurement (see {server.stderr_path})")
        measured.append(result)
    return measured


def measure(names: list[str], path: str, rounds: int, seconds: float, python: str) -> dict[str, Variant]:
    variants = {name: Variant(name) for name in names}
    for r in range(rounds):
        measured = one_round(names, path, seconds, python, f"paired{r}")
        bare_cpu = measured[0].server_cpu_us
        for name, result in zip(names, measured, strict=True):
            variant, cpu = variants[name], result.server_cpu_us
            assert bare_cpu is not None and cpu is not None  # checked by one_round
            if result.errors:
                variant.problems.append(f"round {r}: {result.errors} errors")
            variant.cpu_us.append(cpu)
            variant.shares.append(bare_cpu / cpu)
        print(
            f"round {r + 1}/{rounds}: " + "  ".join(f"{n} {v.shares[-1]:.3f}" for n, v in variants.items()), flush=True
        )
    return variants


def table(title: str, variants: dict[str, Variant]) -> str:
    lines = [f"### {title}", "", "| variant | share of bare (median) | range over rounds | CPU µs/request | target |"]
    lines.append("|---|---:|---:|---:|---|")
    for name, variant in variants.items():
        s = variant.summary()
        target = TARGETS.get(name)
        verdict = "" if target is None else f"≥ {target:.2f}: {'met' if variant.share >= target else 'missed'}"
        problems = f" ({'; '.join(variant.problems)})" if variant.problems else ""
        lines.append(
            f"| {name}{problems} | {s['share']:.3f} | {s['low']:.3f} to {s['high']:.3f}"
            f" | {s['cpu_us']:.0f} | {verdict} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.paired", description=__doc__.split("\n\n")[0])
    parser.add_argument("sets", nargs="*", default=list(SETS), help=f"variant sets: {', '.join(SETS)} (default all)")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--path", default="/pong", help="the endpoint (default the lightest, /pong)")
    parser.add_argument("--python", default=sys.executable, help="the Python the servers run on")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--smoke", action="store_true", help="one 1 s round: checks that it runs, means nothing")
    args = parser.parse_args(argv)
    if args.smoke:
        args.rounds, args.seconds = 1, 1.0
    unknown = [s for s in args.sets if s not in SETS]
    if unknown:
        parser.error(f"unknown set(s) {', '.join(unknown)}; choose from {', '.join(SETS)}")
    report: dict[str, object] = {"python": args.python, "path": args.path, "rounds": args.rounds}
    for name in args.sets:
        variants = measure(list(SETS[name]), args.path, args.rounds, args.seconds, args.python)
        print(table(f"{name} on {args.path}, {args.rounds} rounds of {args.seconds:g} s", variants) + "\n", flush=True)
        report[name] = {v.name: v.summary() for v in variants.values()}
    if args.json:
        write_json(Path(args.json), report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
