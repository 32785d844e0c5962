"""Unhandled exceptions under a real uvicorn: logged once, with the request's ID; the server's own
ID-less traceback of the same exception never reaches stdout; the process keeps serving."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support import ROOT, ServiceProcess

APP = "tests.integration.edge_app:app"
ENV = {"PYTHONPATH": str(ROOT)}


def test_exception_before_the_response_is_logged_once_with_the_id(tmp_path: Path) -> None:
    with ServiceProcess(tmp_path, app=APP, env=ENV) as service:
        response = httpx.get(f"{service.base_url}/boom", timeout=10)
        assert httpx.get(f"{service.base_url}/healthz", timeout=10).status_code == 200
        service.stop()
    assert response.status_code == 500
    tid = response.headers["x-tracking-id"]
    records = service.records()  # every stdout line is JSON
    tracebacks = [r for r in records if "exc_info" in r]
    assert len(tracebacks) == 1, [r["message"] for r in tracebacks]
    assert tracebacks[0]["tracking_id"] == tid
    assert "RuntimeError: boom before the response" in tracebacks[0]["exc_info"]
    assert not [r for r in records if "Exception in ASGI application" in r["message"]]
    assert [r["status"] for r in records if r["name"] == "service.access" and r["tracking_id"] == tid] == [500]
    assert service.stderr_text() == ""


def test_exception_after_the_response_started_leaves_no_id_less_line(tmp_path: Path) -> None:
    with ServiceProcess(tmp_path, app=APP, env=ENV) as service:
        with pytest.raises(httpx.RemoteProtocolError), httpx.stream("GET", f"{service.base_url}/midstream") as r:
            tid = r.headers["x-tracking-id"]
            r.read()
        assert httpx.get(f"{service.base_url}/healthz", timeout=10).status_code == 200
        service.stop()
    records = service.records()
    tracebacks = [r for r in records if "exc_info" in r]
    assert len(tracebacks) == 1
    assert tracebacks[0]["tracking_id"] == tid and "after the response started" in tracebacks[0]["message"]
    errors = [r for r in records if r["level"] in ("ERROR", "CRITICAL")]
    assert all(r["tracking_id"] == tid for r in errors), [r["message"] for r in errors]
    assert not [r for r in records if "without completing response" in r["message"]]


def test_a_librarys_dictconfig_does_not_silence_the_access_line(tmp_path: Path) -> None:
    """edge_app calls logging.config.dictConfig({"version": 1}) after setup_logging()."""
    with ServiceProcess(tmp_path, app=APP, env={**ENV, "EDGE_APP_DICTCONFIG": "1"}) as service:
        tid = httpx.get(f"{service.base_url}/trace", timeout=10).headers["x-tracking-id"]
        service.stop()
    access = [r for r in service.records() if r["name"] == "service.access"]
    assert [r["tracking_id"] for r in access] == [tid]
