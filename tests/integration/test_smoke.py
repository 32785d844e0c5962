from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import orjson

from tests.support import ROOT, ServiceProcess, free_port


def test_request_lines_carry_the_response_header(tmp_path: Path) -> None:
    """The X-Tracking-ID of a response equals the tracking_id of that request's log lines."""
    with ServiceProcess(tmp_path) as service:
        response = httpx.get(f"{service.base_url}/demo/dependency")
        service.stop()
    tracking_id = response.headers["x-tracking-id"]
    mine = [r for r in service.records() if r["tracking_id"] == tracking_id]
    assert {r["message"] for r in mine} >= {"dependency injected the tracking id", "nested coroutine sees the context"}
    assert any(r["name"] == "service.access" and r["status"] == 200 for r in mine)


def test_the_readme_try_it_block_works_even_when_startup_is_slow(tmp_path: Path) -> None:
    """The README's "Try it" block, run by bash: the server starts late (as serve.sh does on a fresh
    clone, installing first), and the block still finds the request's lines by its ID."""
    readme = (ROOT / "README.md").read_text()
    start = readme.index("```bash\n", readme.index("Try it:")) + len("```bash\n")
    block = readme[start : readme.index("```", start)]
    assert "./scripts/serve.sh" in block and "8000" in block
    port = free_port()
    slow_start = f"sh -c 'sleep 3; exec {sys.executable} -m service --port {port}'"
    # /tmp/ first: the interpreter's own path may be under /tmp (a CI clone there)
    script = block.replace("/tmp/", f"{tmp_path}/").replace("8000", str(port)).replace("./scripts/serve.sh", slow_start)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOG_")}
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    lines = [orjson.loads(line) for line in result.stdout.splitlines() if line.startswith('{"@timestamp"')]
    (tracking_id,) = {r["tracking_id"] for r in lines}
    assert tracking_id and "connection refused" not in result.stderr.lower()
    assert {r["name"] for r in lines} == {"service.demo", "service.access"}
