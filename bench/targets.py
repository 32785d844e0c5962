"""The benchmark targets (issues 7, 10 and 11), evaluated on ratios measured side by side in the same run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: The server targets, as a share of bare FastAPI's `/pong` (issue 11: the middleware; issue 10: the full stack).
MIDDLEWARE_SHARE = 0.95
STACK_SHARE = 0.75


@dataclass
class Target:
    name: str
    measured: float | None  # None: the part did not run or a variant in the ratio was invalid
    goal: str
    ok: bool | None
    note: str = ""

    @property
    def verdict(self) -> str:
        return "n/a" if self.ok is None else ("PASS" if self.ok else "MISS")


def _valid(part: dict[str, Any] | None, *variants: str) -> bool:
    return part is not None and all(part["variants"][v]["valid"] for v in variants)


def evaluate(results: dict[str, Any]) -> list[Target]:
    targets: list[Target] = []
    p1 = results.get("part1")

    def ratio1(metric: str, a: str, b: str) -> float | None:
        if not _valid(p1, a, b):
            return None
        assert p1 is not None
        return float(p1["variants"][a][metric]) / float(p1["variants"][b][metric])

    def add(name: str, value: float | None, goal: str, ok: Any, note: str = "") -> None:
        targets.append(Target(name, value, goal, None if value is None else bool(ok(value)), note))

    add(
        "caller-side µs/record: bundle / original",
        ratio1("caller_us", "bundle", "original"),
        "≤ 0.50",
        lambda v: v <= 0.5,
    )
    add("end-to-end records/s: bundle / original", ratio1("e2e_rps", "bundle", "original"), "≥ 3.0", lambda v: v >= 3)
    add(
        "end-to-end records/s: bundle / structlog",
        ratio1("e2e_rps", "bundle", "structlog"),
        "≥ 1.5",
        lambda v: v >= 1.5,
    )
    add("end-to-end records/s: floor / bundle", ratio1("e2e_rps", "floor", "bundle"), "≤ 2.5", lambda v: v <= 2.5)

    if p1 is not None and "bundle-no-metrics" in p1["variants"]:
        add(
            "end-to-end records/s: bundle / bundle with LOG_METRICS=false",
            ratio1("e2e_rps", "bundle", "bundle-no-metrics"),
            "≥ 0.95 (no measurable cost)",
            lambda v: v >= 0.95,
        )
    if p1 is not None and "bundle-before" in p1["variants"]:
        add(
            f"end-to-end records/s: bundle / bundle at {p1.get('before')}",
            ratio1("e2e_rps", "bundle", "bundle-before"),
            "≥ 0.95 (speed unchanged)",
            lambda v: v >= 0.95,
        )

    def server_targets(version: str, parts: dict[str, Any]) -> None:
        p2 = parts.get("part2")
        for variant, what in (("mw-bundle", "access line off"), ("mw-bundle-quiet", "access line below the level")):
            value = p2["variants"][variant]["vs_bare"] if _valid(p2, variant, "mw-bare") else None  # type: ignore[index]
            add(
                f"Python {version}, middleware /pong req/s ({what}): bundle / bare",
                value,
                f"≥ {MIDDLEWARE_SHARE}",
                lambda v: v >= MIDDLEWARE_SHARE,
            )
        p3 = parts.get("part3")
        value = p3["variants"]["stack-bundle"]["pong"]["vs_bare"] if _valid(p3, "stack-bundle", "stack-bare") else None  # type: ignore[index]
        add(
            f"Python {version}, full stack /pong req/s: bundle / bare",
            value,
            f"≥ {STACK_SHARE}",
            lambda v: v >= STACK_SHARE,
        )
        if p3 is not None and "stack-bundle-no-metrics" in p3["variants"]:
            ok = _valid(p3, "stack-bundle", "stack-bundle-no-metrics")
            v = p3["variants"]
            value = v["stack-bundle"]["pong"]["rps"] / v["stack-bundle-no-metrics"]["pong"]["rps"] if ok else None
            add(
                f"Python {version}, full stack /pong req/s: bundle / bundle with LOG_METRICS=false",
                value,
                "≥ 0.95 (no measurable cost)",
                lambda v: v >= 0.95,
            )

    python = str(results.get("meta", {}).get("versions", {}).get("python", "?"))
    server_targets(".".join(python.split(".")[:2]), results)
    for version, parts in (results.get("servers_by_python") or {}).items():
        server_targets(version, parts)

    p4 = results.get("part4")
    if p4 is None:
        add("stalled stdout, block: lines lost", None, "= 0", bool)
        add("stalled stdout, drop: p99 stalled / unstalled", None, "≤ 1.5 and drops reported", bool)
    else:
        block, drop = p4["policies"]["block"], p4["policies"]["drop"]
        add(
            "stalled stdout, block: lines lost",
            float(block["lines_lost"]),
            "= 0",
            lambda v: v == 0 and not block["problems"],
        )
        reported = drop["drop_report_lines"] > 0 and drop["dropped_reported"] >= drop["lines_lost"] > 0
        note = (
            f"{drop['lines_lost']} lines lost, {drop['dropped_reported']} drops reported in"
            f" {drop['drop_report_lines']} log line(s)"
        )
        add(
            "stalled stdout, drop: p99 stalled / unstalled",
            float(drop["p99_ratio"]),
            "≤ 1.5 and drops reported",
            lambda v: v <= 1.5 and reported and not drop["problems"],
            note,
        )
    return targets
