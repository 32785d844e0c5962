"""``python -m bench.instructions [SPEC...] [--requests N] [--python PY]``: user-space instructions per
``/pong`` request of a real uvicorn server under valgrind's callgrind, each variant's count over bare's.

Why: the paired run (``bench.paired``) measures time, and on this kind of machine one point of a share
of bare needs many rounds to see. An instruction count is repeatable: the same server with the same
hash seed counts the same within ~0.3 %. Across hash seeds a server's count moves by up to ~1 % of
bare's: string hashes and type versions decide which of the interpreter's type-attribute lookups
collide in its 4096-entry method cache (one such seed put 8k instructions per request into
``find_name_in_mro`` for the same code). So each server runs under several seeds (``--seeds``, default
0 1 2) and the median counts. It is a proxy: cold code (a light request's middleware runs with the
rest of the request pushed out of the caches) costs more time per instruction than a C loop, so a
share in instructions reads a few points higher than the timed share.

A SPEC is ``VARIANT`` (see ``bench.apps``) or ``VARIANT@TREE``, the same variant served from another
checkout (``git worktree add /tmp/before HEAD~1``), for an A/B of a change. The first SPEC is the
reference (default: ``mw-bare mw-floor mw-minimal mw-bundle mw-bundle-quiet``). Each server is warmed
with 300 requests, its counters zeroed (``callgrind_control -z``), then loaded with ``--requests``
sequential keep-alive requests and its counters dumped. Two servers run at a time (one per core);
about a minute for the default set with one seed. Needs ``valgrind`` (Debian package).
"""

from __future__ import annotations

import argparse
import http.client
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bench.common import PYTHON, ROOT, clean_env, free_port, median

DEFAULT = ("mw-bare", "mw-floor", "mw-minimal", "mw-bundle", "mw-bundle-quiet")
WARMUP = 300
_TOTAL = re.compile(rb"^(?:summary|totals):\s+(\d+)", re.MULTILINE)


@dataclass
class Count:
    spec: str
    per_request: float  # instructions


def total_instructions(dump: bytes) -> int:
    """The total event count (instructions) of a callgrind dump."""
    found = _TOTAL.search(dump)
    if found is None:
        raise ValueError("no summary/totals line in the callgrind dump")
    return int(found.group(1))


def _get(port: int, count: int, timeout: float = 120.0) -> None:
    """``count`` sequential GET /pong on one keep-alive connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        for _ in range(count):
            connection.request("GET", "/pong")
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"GET /pong: {response.status}")
    finally:
        connection.close()


def measure(spec: str, requests: int, python: str = PYTHON, seed: int = 0, ready_timeout: float = 300.0) -> Count:
    """Instructions per request of the server for ``spec`` (``VARIANT`` or ``VARIANT@TREE``) under the
    hash seed ``seed``."""
    variant, _, tree = spec.partition("@")
    cwd = Path(tree).resolve() if tree else ROOT
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="callgrind-") as scratch:
        out = Path(scratch) / "callgrind.out"
        env = clean_env(PYTHONHASHSEED=str(seed))
        if tree:
            env["PYTHONPATH"] = str(cwd)  # that checkout's service/ and bench/, before the installed ones
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", python, "-m", "bench.serve"]
        proc = subprocess.Popen(
            [*command, variant, str(port)], cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            deadline = time.monotonic() + ready_timeout
            while True:
                try:
                    _get(port, 1)
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        error = proc.stderr.read().decode(errors="replace")[-2000:] if proc.stderr else ""
                        raise RuntimeError(f"{spec}: the server did not come up under callgrind\n{error}") from None
                    time.sleep(0.5)
            _get(port, WARMUP)
            control = ["callgrind_control"]
            subprocess.run([*control, "-z", str(proc.pid)], check=True, capture_output=True, timeout=120)
            _get(port, requests)
            subprocess.run([*control, "-d", str(proc.pid)], check=True, capture_output=True, timeout=120)
            dumps = sorted(Path(scratch).glob("callgrind.out.*"), key=lambda p: int(p.suffix[1:]))
            if not dumps:
                raise RuntimeError(f"{spec}: callgrind wrote no dump")
            return Count(spec, total_instructions(dumps[-1].read_bytes()) / requests)
        finally:
            proc.kill()
            proc.wait()


def run(specs: list[str], requests: int, python: str = PYTHON, seeds: tuple[int, ...] = (0, 1, 2)) -> list[Count]:
    """Each spec's median count over ``seeds``."""
    jobs = [(spec, seed) for spec in specs for seed in seeds]
    with ThreadPoolExecutor(2) as pool:  # one server per core: callgrind runs a process on one thread
        counts = list(pool.map(lambda job: measure(job[0], requests, python, job[1]), jobs))
    return [Count(spec, median([c.per_request for c in counts if c.spec == spec])) for spec in specs]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__.split("\n\n")[0])
    parser.add_argument("specs", nargs="*", default=list(DEFAULT), help="VARIANT or VARIANT@TREE; the first is 1.0")
    parser.add_argument("--requests", type=int, default=2000, help="measured requests per server (default 2000)")
    parser.add_argument("--python", default=PYTHON, help="the interpreter that serves (default: this one)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="PYTHONHASHSEED values (median)")
    args = parser.parse_args(argv)
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            parser.error(f"{tool} not found (Debian: apt-get install valgrind)")
    counts = run(args.specs, args.requests, args.python, tuple(args.seeds))
    reference = counts[0].per_request
    print(f"| server | instructions per request | over {counts[0].spec} | share of {counts[0].spec} |")
    print("|---|---:|---:|---:|")
    for count in counts:
        over = count.per_request - reference
        print(f"| {count.spec} | {count.per_request / 1000:.1f}k | {over / 1000:+.1f}k | "
              f"{reference / count.per_request:.3f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
