"""pytest's ``caplog`` captures records when ``setup_logging()`` runs inside the test (directly or in an
app's lifespan). This suite runs with ``-p no:logging`` (it tests logging itself), so the check runs an
inner pytest session with pytest's logging plugin on, as a user's suite has it."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

INNER = """
import logging

from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.logs.pipeline import setup_logging, shutdown_logging
from service.middleware import TrackingIDMiddleware


def test_setup_inside_the_test(caplog):
    setup_logging()
    try:
        logging.getLogger("app").warning("visible to caplog %d", 1)
    finally:
        shutdown_logging()
    assert [r.getMessage() for r in caplog.records] == ["visible to caplog 1"]
    assert "visible to caplog 1" in caplog.text


def test_setup_in_the_app_lifespan(caplog):
    caplog.set_level(logging.INFO)
    app = FastAPI(on_startup=[setup_logging], on_shutdown=[shutdown_logging])
    app.add_middleware(TrackingIDMiddleware)

    @app.get("/x")
    def x() -> str:
        logging.getLogger("app").info("in the handler")
        return "ok"

    with TestClient(app) as client:
        assert client.get("/x").status_code == 200
    handler_records = [r for r in caplog.records if r.name == "app"]
    assert [r.getMessage() for r in handler_records] == ["in the handler"]
    assert any(r.name == "service.access" for r in caplog.records)
"""


def test_caplog_captures_with_setup_logging_inside_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_inner=INNER)
    result = pytester.runpytest_subprocess("-p", "logging", "-q")
    result.assert_outcomes(passed=2)
