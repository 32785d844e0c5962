"""A small app for the edge tests under a real uvicorn: failures before and after the response started,
a library that calls dictConfig({"version": 1}) after setup, and a route that echoes the trace context."""

from __future__ import annotations

import logging
import logging.config
import os
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from service import TrackingIDMiddleware, setup_logging
from service.context import get_trace_context

setup_logging()
if os.environ.get("EDGE_APP_DICTCONFIG") == "1":
    # What some libraries do at import: every existing logger not named here is disabled.
    logging.config.dictConfig({"version": 1})

log = logging.getLogger("edge.app")
app = FastAPI()
app.add_middleware(TrackingIDMiddleware.from_settings)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/boom")
async def boom() -> None:
    raise RuntimeError("boom before the response")


@app.get("/midstream")
async def midstream() -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        yield b"first chunk\n"
        raise RuntimeError("boom after the response started")

    return StreamingResponse(body())


@app.get("/trace")
async def trace() -> dict[str, object]:
    log.info("traced")
    return {"trace": get_trace_context()}
