"""``os.fork()`` after ``setup_logging()``: the child gets its own listener, writes its own lines (all of
them, even when it exits right away), and never the parent's queued lines a second time."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from tests.support import parse_json_lines

SCRIPT = """
import logging, os, sys
from service import setup_logging
setup_logging()
log = logging.getLogger("fork")
for i in range(2000):
    log.info("parent-before-%d", i)  # many still queued at the fork
pid = os.fork()
if pid == 0:
    for i in range(2000):
        log.info("child-%d", i)
    sys.exit(0)
for i in range(2000):
    log.info("parent-after-%d", i)
_, status = os.waitpid(pid, 0)
log.info("child exited with %d", os.waitstatus_to_exitcode(status))
"""


def test_fork_after_setup_logging(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOG_")}
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, timeout=120, cwd=tmp_path, env=env)
    assert done.returncode == 0 and done.stderr == b"", done.stderr
    records = parse_json_lines(done.stdout)
    counts = Counter(r["message"] for r in records)
    assert [m for m, n in counts.items() if n > 1] == [], "no line written twice"
    for prefix in ("parent-before-", "child-", "parent-after-"):
        assert [m for m in counts if m.startswith(prefix)] == [f"{prefix}{i}" for i in range(2000)]
    assert records[-1]["message"] == "child exited with 0"
    child = {r["processName"] for r in records if r["message"].startswith("child-")}
    assert child == {"MainProcess"}, "stdlib's name for a bare fork, on both routes"
