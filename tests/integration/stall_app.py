"""An app for the stalled-stdout tests: ``/flood?n=N`` logs N lines from the event loop's own thread."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from service import TrackingIDMiddleware, setup_logging

setup_logging()
log = logging.getLogger("stall.app")
app = FastAPI()
app.add_middleware(TrackingIDMiddleware.from_settings)

PADDING = "x" * 200  # ~400-byte lines: a 64 KiB pipe is full after a few hundred


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/flood")
async def flood(n: int) -> dict[str, int]:
    for i in range(n):
        log.info("flood %d", i, extra={"seq": i, "padding": PADDING})
    return {"logged": n}


@app.get("/flood_sync")
def flood_sync(n: int) -> dict[str, int]:
    """The same from a sync endpoint: a thread of the pool waits for room, the loop stays free."""
    for i in range(n):
        log.info("flood %d", i, extra={"seq": i, "padding": PADDING})
    return {"logged": n}
