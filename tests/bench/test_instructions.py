"""``python -m bench.instructions``: real uvicorn servers under valgrind's callgrind. Needs valgrind
(``scripts/tools.sh`` installs it); no timing is asserted, only counts every such server must show."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid

import pytest
from starlette.testclient import TestClient
from starlette.types import Receive, Scope, Send

from bench.apps import MinimalIDMiddleware
from bench.instructions import total_instructions
from service.context import get_tracking_id
from tests.support import ROOT

needs_valgrind = pytest.mark.skipif(
    shutil.which("valgrind") is None or shutil.which("callgrind_control") is None,
    reason="valgrind not installed (scripts/tools.sh installs it as root: apt-get install valgrind)",
)


def test_a_dump_without_totals_is_an_error() -> None:
    with pytest.raises(ValueError, match="totals"):
        total_instructions(b"# callgrind format\nevents: Ir\n")


@needs_valgrind
@pytest.mark.timeout(300)
def test_counts_a_real_server_and_the_floor_costs_more_than_bare() -> None:
    """Bare FastAPI and the pass-through floor, 100 requests each: the floor does everything bare does and
    appends a header, so it must count more instructions per request; both in a sane range."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOG_")}
    done = subprocess.run(
        [sys.executable, "-m", "bench.instructions", "mw-bare", "mw-floor", "--requests", "100", "--seeds", "0"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=290,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = dict(re.findall(r"^\| (mw-\w+) \| ([\d.]+)k \|", done.stdout, re.MULTILINE))
    assert set(rows) == {"mw-bare", "mw-floor"}, done.stdout
    bare, floor = float(rows["mw-bare"]), float(rows["mw-floor"])
    assert 50 < bare < 5000, done.stdout  # thousands of instructions per request
    assert floor > bare, done.stdout
    assert "| mw-bare | " in done.stdout and "| 1.000 |" in done.stdout


def test_the_minimal_variant_is_a_working_id_middleware() -> None:
    """``mw-minimal`` (the least an ID middleware does, for scale) must really do it: a fresh UUID4 per
    response in X-Tracking-ID, the ID set in the ContextVar during the request and reset after it."""
    seen: list[str | None] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(get_tracking_id())
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    client = TestClient(MinimalIDMiddleware(app))
    ids = [client.get("/").headers["x-tracking-id"] for _ in range(3)]
    assert len(set(ids)) == 3 and all(uuid.UUID(i).version == 4 for i in ids)
    assert seen == ids
    assert get_tracking_id() is None
