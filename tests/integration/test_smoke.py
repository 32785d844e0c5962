from __future__ import annotations

from pathlib import Path

import httpx

from tests.support import ServiceProcess


def test_request_lines_carry_the_response_header(tmp_path: Path) -> None:
    """The X-Tracking-ID of a response equals the tracking_id of that request's log lines."""
    with ServiceProcess(tmp_path) as service:
        response = httpx.get(f"{service.base_url}/demo/dependency")
        service.stop()
    tracking_id = response.headers["x-tracking-id"]
    mine = [r for r in service.records() if r["tracking_id"] == tracking_id]
    assert {r["message"] for r in mine} >= {"dependency injected the tracking id", "nested coroutine sees the context"}
    assert any(r["name"] == "service.access" and r["status"] == 200 for r in mine)
