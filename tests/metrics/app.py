"""A user's app for the metrics tests: logs N lines at a chosen level, and mounts /metrics in one line."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from service import TrackingIDMiddleware, setup_logging
from service.metrics import endpoint

setup_logging()

log = logging.getLogger("tests.metrics")

app = FastAPI()
app.add_middleware(TrackingIDMiddleware.from_settings)  # LOG_ACCESS etc. from the environment
app.add_route("/metrics", endpoint)  # what a user's own app does (gunicorn, plain uvicorn)


@app.get("/burst")
def burst(n: int, level: str = "INFO", tag: str = "burst") -> dict[str, int]:
    number = logging.getLevelNamesMapping()[level]
    for i in range(n):
        log.log(number, "%s %d", tag, i)
    return {"logged": n}


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
