"""Parts 2-4: middleware cost, full stack, stalled stdout. Real uvicorn servers on core 0, wrk on core 1."""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.apps import MIDDLEWARE_VARIANTS, STACK_ID, STACK_VARIANTS
from bench.common import PYTHON, median
from bench.load import LoadResult, load
from bench.servers import PipeReader, Server, get_json, start_all

Log = Callable[[str], None]

PART2_PATH = "/pong"  # the lightest endpoint: a JSON body would hide the middleware behind serialisation
MIDDLEWARE_LABELS = {
    "mw-bare": "bare FastAPI, PlainTextResponse",
    "mw-floor": "floor: pure ASGI pass-through adding one fixed header",
    "mw-bundle": "this project: TrackingIDMiddleware (LOG_ACCESS=false)",
    "mw-bundle-quiet": "this project: access line on, LOG_LEVEL=WARNING (so not written)",
    "mw-bundle-access": "this project: TrackingIDMiddleware + JSON access line",
    "mw-original": "original design: BaseHTTPMiddleware",
    "mw-asgi-correlation-id": "asgi-correlation-id CorrelationIdMiddleware",
    "mw-starlette-context": "starlette-context RawContextMiddleware + RequestIdPlugin",
}
MIDDLEWARE_HEADER = {
    "mw-floor": "x-floor",
    "mw-bundle": "x-tracking-id",
    "mw-bundle-quiet": "x-tracking-id",
    "mw-bundle-access": "x-tracking-id",
    "mw-original": "x-tracking-id",
    "mw-asgi-correlation-id": "x-request-id",
    "mw-starlette-context": "x-request-id",
}
STACK_LABELS = {
    "stack-bare": "bare FastAPI (no logging)",
    "stack-bundle": "this project: middleware + setup_logging",
    "stack-bundle-no-metrics": "this project, LOG_METRICS=false",
    "stack-original": "original design: BaseHTTPMiddleware + QueueHandler + json.dumps",
    "stack-structlog": "structlog (orjson, sync) + pure ASGI middleware",
    "stack-acid-pjl": "asgi-correlation-id + python-json-logger (sync StreamHandler)",
}
SAMPLE_BASE = 1_000_000  # n of the correctness requests, so they never collide with wrk's n=0


def _fresh_rounds(
    variants: list[str],
    paths: list[str],
    seconds: float,
    rounds: int,
    warmup: float,
    log: Log,
    part: str,
    python: str,
    each: Callable[[int, dict[str, Server]], None] | None = None,
) -> dict[str, dict[str, list[LoadResult]]]:
    """Rounds of one bounded run per variant and path, order rotating; every round starts fresh server
    processes (warmed, not counted) and stops them after, calling ``each(round, servers)`` before the stop.

    Fresh processes because one process's rate stays put across rounds while identical processes differ
    by up to ±10 % (memory layout, hash seed): the median over rounds is then a median over processes.
    """
    runs: dict[str, dict[str, list[LoadResult]]] = {path: {name: [] for name in variants} for path in paths}
    for round_no in range(rounds):
        servers = {v: Server(v, tag=f"{part.replace(' ', '')}-r{round_no + 1}", python=python) for v in variants}
        start_all(list(servers.values()))
        try:
            shift = round_no % len(variants)
            for path in paths:
                if warmup > 0:
                    for server in servers.values():
                        load(server.url(path), warmup)
                for name in variants[shift:] + variants[:shift]:
                    result = measured_load(servers[name], path, seconds)
                    runs[path][name].append(result)
                    rate = f"{result.rps:,.0f} req/s, p99 {result.p99_ms:.2f} ms"
                    log(f"  {part} round {round_no + 1} {path} {name}: {rate}")
            if each is not None:
                each(round_no, servers)
        finally:
            for server in servers.values():
                server.stop()
    return runs


def measured_load(server: Server, path: str, seconds: float) -> LoadResult:
    """One bounded load run, with the server's CPU time per request."""
    before = server.cpu_seconds()
    result = load(server.url(path), seconds)
    after = server.cpu_seconds()
    if before is not None and after is not None and result.requests:
        result.server_cpu_us = (after - before) / result.requests * 1e6
    return result


def _summary(runs: list[LoadResult], bare_rps: float | None = None) -> dict[str, Any]:
    rps = median([r.rps for r in runs])
    cpu = [r.server_cpu_us for r in runs if r.server_cpu_us is not None]
    return {
        "rps": rps,
        "cpu_us": median(cpu) if cpu else None,
        "p50_ms": median([r.p50_ms for r in runs]),
        "p99_ms": median([r.p99_ms for r in runs]),
        "errors": sum(r.errors for r in runs),
        "requests": sum(r.requests for r in runs),
        "vs_bare": rps / bare_rps if bare_rps else None,
        "runs": [r.as_dict() for r in runs],
    }


# -- Part 2 -------------------------------------------------------------------------------------
def part2(seconds: float, rounds: int, warmup: float, log: Log = print, python: str = PYTHON) -> dict[str, Any]:
    problems: dict[str, list[str]] = {v: [] for v in MIDDLEWARE_VARIANTS}
    stdout_paths: list[tuple[str, Path]] = []

    def check(round_no: int, servers: dict[str, Server]) -> None:
        for variant, server in servers.items():
            if round_no == 0:
                problems[variant] += _check_middleware(variant, server)
            stdout_paths.append((variant, server.stdout_path))

    variants = list(MIDDLEWARE_VARIANTS)
    runs = _fresh_rounds(variants, [PART2_PATH], seconds, rounds, warmup, log, "part 2", python, check)[PART2_PATH]
    for variant, path in stdout_paths:  # read once the servers stopped (and drained)
        problems[variant] += _check_json_lines(path)
    bare = median([r.rps for r in runs["mw-bare"]])
    results = {}
    for variant in MIDDLEWARE_VARIANTS:
        summary = _summary(runs[variant], bare)
        if summary["errors"]:
            problems[variant].append(f"{summary['errors']} failed requests")
        results[variant] = {"label": MIDDLEWARE_LABELS[variant], **summary, "problems": problems[variant]}
        results[variant]["valid"] = not problems[variant]
    return {"seconds": seconds, "rounds": rounds, "path": PART2_PATH, "variants": results}


def _check_middleware(variant: str, server: Server) -> list[str]:
    """Each middleware answers 200 and puts an ID header on the response (bare: none)."""
    header = MIDDLEWARE_HEADER.get(variant)
    response = httpx.get(server.url(PART2_PATH), timeout=10)
    if response.status_code != 200:
        return [f"status {response.status_code}"]
    if header and not response.headers.get(header):
        return [f"no {header} response header"]
    return []


def _check_json_lines(path: Path) -> list[str]:
    for number, line in enumerate(path.read_bytes().splitlines(), 1):
        try:
            orjson.loads(line)
        except orjson.JSONDecodeError:
            return [f"{path.name} line {number} is not JSON: {line[:100]!r}"]
    return []


# -- Part 3 -------------------------------------------------------------------------------------
def part3(
    seconds: float, rounds: int, warmup: float, samples: int, log: Log = print, python: str = PYTHON
) -> dict[str, Any]:
    sent: dict[str, list[tuple[Path, dict[str, int]]]] = defaultdict(list)

    def sample(round_no: int, servers: dict[str, Server]) -> None:  # the correctness pass: IDs from the headers
        for variant, server in servers.items():
            if variant in STACK_ID:
                sent[variant].append((server.stdout_path, _sample_requests(server, STACK_ID[variant][0], samples)))

    paths = ["/stack?n=0", "/pong"]
    both = _fresh_rounds(list(STACK_VARIANTS), paths, seconds, rounds, warmup, log, "part 3", python, sample)
    runs, light = both["/stack?n=0"], both["/pong"]
    bare = median([r.rps for r in runs["stack-bare"]])
    bare_light = median([r.rps for r in light["stack-bare"]])
    results = {}
    for variant in STACK_VARIANTS:
        summary = _summary(runs[variant], bare)
        pong = _summary(light[variant], bare_light)
        problems = []
        if summary["errors"] or pong["errors"]:
            problems.append(f"{summary['errors'] + pong['errors']} failed requests")
        counted = 0
        for path, sent_here in sent.get(variant, []):  # every process's output, after it stopped
            check = check_stack_output(variant, path, sent_here)
            problems += check["problems"]
            counted += check["requests"]
        if variant in STACK_ID and counted < summary["requests"]:
            problems.append(f"{counted} request line pairs < {summary['requests']} requests wrk completed")
        results[variant] = {
            "label": STACK_LABELS[variant],
            **summary,
            "pong": {key: pong[key] for key in ("rps", "vs_bare", "p50_ms", "p99_ms", "cpu_us", "requests")},
            "request_pairs_checked": counted,
            "problems": problems,
            "valid": not problems,
        }
    return {"seconds": seconds, "rounds": rounds, "variants": results}


def _sample_requests(server: Server, header: str, samples: int) -> dict[str, int]:
    """``samples`` requests with distinct n; returns {tracking id from the response header: n}."""
    sent: dict[str, int] = {}
    with httpx.Client(timeout=10) as client:
        for i in range(samples):
            n = SAMPLE_BASE + i
            response = client.get(server.url(f"/stack?n={n}"))
            sent[response.headers.get(header, f"<missing {header} #{i}>")] = n
    return sent


def _fields(variant: str, record: dict[str, Any]) -> tuple[Any, Any, bool]:
    """(tracking id, message, is this an access line) of one line of a stack's output."""
    id_field = STACK_ID[variant][1]
    if variant == "stack-structlog":
        return record.get(id_field), record.get("event"), record.get("event") == "access"
    access_logger = {
        "stack-bundle": "service.access",
        "stack-bundle-no-metrics": "service.access",
        "stack-original": "original.access",
    }.get(variant, "uvicorn.access")
    return record.get(id_field), record.get("message"), record.get("name") == access_logger


def check_stack_output(variant: str, path: Path, sent: dict[str, int]) -> dict[str, Any]:
    """Every line JSON; every request ID on exactly its handler line and its access line; samples match."""
    problems: list[str] = []
    by_id: dict[str, list[tuple[Any, bool]]] = defaultdict(list)
    for number, line in enumerate(path.read_bytes().splitlines(), 1):
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            problems.append(f"line {number} is not JSON: {line[:100]!r}")
            break
        tracking_id, message, is_access = _fields(variant, record)
        if tracking_id:
            by_id[tracking_id].append((message, is_access))
    pairs = 0
    for tracking_id, lines in by_id.items():
        handler = [m for m, is_access in lines if isinstance(m, str) and m.startswith("handled request ")]
        access = [m for m, is_access in lines if is_access]
        if not handler:
            if len(lines) != len(access):  # e.g. /healthz: an access line only
                problems.append(f"id {tracking_id}: lines other than access lines but no handler line: {lines}")
            continue
        if len(handler) != 1 or len(access) != 1 or len(lines) != 2:
            problems.append(f"id {tracking_id} is on {len(lines)} lines, not on its handler + access line: {lines}")
            continue
        pairs += 1
        expected = sent.get(tracking_id)
        if expected is not None and handler[0] != f"handled request {expected}":
            problems.append(f"id {tracking_id} sent with n={expected} but logged {handler[0]!r}")
    for tracking_id, n in sent.items():
        if tracking_id not in by_id:
            problems.append(f"sample request n={n} (id {tracking_id}) has no lines")
    return {
        "requests": pairs,
        "problems": problems[:5] + ([f"... {len(problems) - 5} more"] if len(problems) > 5 else []),
    }


# -- Part 4 -------------------------------------------------------------------------------------
def part4(
    seconds: float, stall: float, rounds: int, warmup: float, queue_size: int, log: Log = print
) -> dict[str, Any]:
    """Under steady load, stop reading the server's stdout pipe for ``stall`` seconds mid-run."""
    results: dict[str, Any] = {}
    servers: dict[str, Server] = {}
    for policy in ("block", "drop"):
        env = {
            "LOG_OVERFLOW": policy,
            "LOG_QUEUE_SIZE": str(queue_size),
            "LOG_DROP_REPORT_INTERVAL": "1",
            "LOG_HEALTH_PATHS": "/healthz,/bench/stats",
        }
        servers[policy] = Server("stack-bundle", env, piped=True, tag=f"part4-{policy}")
    start_all(list(servers.values()))
    readers: dict[str, PipeReader] = {}
    for policy, server in servers.items():
        assert server.proc is not None and server.proc.stdout is not None
        readers[policy] = PipeReader(server.proc.stdout, server.stdout_path)
        readers[policy].start()
    try:
        for policy, server in servers.items():
            url = server.url("/stack?n=0")
            if warmup > 0:
                load(url, warmup)
            plain: list[LoadResult] = []
            stalled: list[LoadResult] = []
            for round_no in range(rounds):
                plain.append(load(url, seconds))
                stalled.append(_stalled_run(url, seconds, stall, readers[policy]))
                log(
                    f"  part 4 {policy} round {round_no + 1}: p99 {plain[-1].p99_ms:.2f} ms unstalled,"
                    f" {stalled[-1].p99_ms:.2f} ms stalled"
                )
            hits = int(get_json(server.url("/bench/stats"))["hits"])
            results[policy] = {"unstalled": [r.as_dict() for r in plain], "stalled": [r.as_dict() for r in stalled]}
            results[policy].update(
                p99_unstalled_ms=median([r.p99_ms for r in plain]),
                p99_stalled_ms=median([r.p99_ms for r in stalled]),
                rps_unstalled=median([r.rps for r in plain]),
                rps_stalled=median([r.rps for r in stalled]),
                hits=hits,
            )
    finally:
        for server in servers.values():
            server.stop()
        for reader in readers.values():
            reader.join(30)
    for policy, server in servers.items():
        results[policy].update(count_lines(server.stdout_path, results[policy]["hits"]))
        results[policy]["p99_ratio"] = results[policy]["p99_stalled_ms"] / results[policy]["p99_unstalled_ms"]
    return {"seconds": seconds, "stall_s": stall, "queue_size": queue_size, "rounds": rounds, "policies": results}


def _stalled_run(url: str, seconds: float, stall: float, reader: PipeReader) -> LoadResult:
    """A bounded load run; a third of the way in, the pipe is not read for ``stall`` seconds."""

    def stall_reader() -> None:
        time.sleep(max(0.2, (seconds - stall) / 3))
        reader.pause()
        time.sleep(stall)
        reader.resume()

    staller = threading.Thread(target=stall_reader, daemon=True)
    staller.start()
    result = load(url, seconds)
    staller.join()
    return result


def count_lines(path: Path, hits: int) -> dict[str, Any]:
    """Lines lost = 2 per ``/stack`` request minus the handler and access lines that arrived."""
    kinds: Counter[str] = Counter()
    dropped_reported = 0
    report_lines = 0
    problems: list[str] = []
    for number, line in enumerate(path.read_bytes().splitlines(), 1):
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            problems.append(f"line {number} is not JSON: {line[:100]!r}")
            continue
        message = str(record.get("message", ""))
        if message.startswith("handled request "):
            kinds["handler"] += 1
        elif record.get("name") == "service.access" and record.get("path") == "/stack":
            kinds["access"] += 1
        elif message.startswith("log queue full"):
            report_lines += 1
            dropped_reported += int(record.get("dropped", 0))
    expected = 2 * hits
    received = kinds["handler"] + kinds["access"]
    return {
        "lines_expected": expected,
        "lines_received": received,
        "lines_lost": expected - received,
        "drop_report_lines": report_lines,
        "dropped_reported": dropped_reported,
        "problems": problems[:5],
    }
