"""Without prometheus_client nothing changes: the pipeline and the CLI run exactly as before."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support import ROOT, free_port, parse_json_lines

# Makes ``import prometheus_client`` fail as if it were not installed (find_spec included).
BLOCK = """
import sys
class _NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "prometheus_client":
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None
sys.meta_path.insert(0, _NotInstalled())
"""


def _run(code: str, **kw: object) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", BLOCK + code], capture_output=True, env=env, timeout=60, **kw)  # type: ignore[call-overload, no-any-return]


def test_the_pipeline_runs_without_an_observer() -> None:
    done = _run(
        "import logging, sys\n"
        "from service import setup_logging\n"
        "from service.metrics.observer import pipeline_observer\n"
        "pipeline = setup_logging()\n"
        "assert pipeline.observer is None and pipeline_observer(1) is None\n"
        "for i in range(500): logging.getLogger('x').warning('line %d', i)\n"
        "assert 'prometheus_client' not in sys.modules\n"
    )
    assert done.returncode == 0, done.stderr.decode()
    records = parse_json_lines(done.stdout)
    assert [r["message"] for r in records] == [f"line {i}" for i in range(500)]
    assert done.stderr == b""


def test_the_cli_serves_without_metrics(tmp_path: Path) -> None:
    port = free_port()
    code = f"from service.__main__ import main\nsys.exit(main(['--port', '{port}']))\n"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = tmp_path / "out.log"
    with out.open("wb") as stdout:
        proc = subprocess.Popen([sys.executable, "-c", BLOCK + code], stdout=stdout, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        assert httpx.get(f"http://127.0.0.1:{port}/demo/context", timeout=5).status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).status_code == 404  # the demo app's 404
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert err == b""
    records = parse_json_lines(out.read_bytes())
    assert any(r.get("path") == "/demo/context" for r in records)
