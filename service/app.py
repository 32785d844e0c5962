"""The demo service: one route per way a request's context can travel."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Annotated

import httpx
from fastapi import BackgroundTasks, Depends, FastAPI, Request, WebSocket, WebSocketDisconnect

from service import (
    TrackingIDMiddleware,
    aforward_tracking_id,
    get_tracking_id,
    setup_logging,
)

setup_logging()  # at import: each uvicorn worker process imports the app and gets its own pipeline

log = logging.getLogger("service.demo")

app = FastAPI(title="tracking-id demo")
app.add_middleware(TrackingIDMiddleware)

TrackingID = Annotated[str | None, Depends(get_tracking_id)]


@app.get("/demo/context")
async def context(request: Request) -> dict[str, str | None]:
    tracking_id = get_tracking_id()
    log.info("handler sees the context")
    return {"tracking_id": tracking_id, "x_request_id": request.headers.get("x-request-id")}


async def _nested_work() -> str | None:
    await asyncio.sleep(0)
    log.info("nested coroutine sees the context")
    return get_tracking_id()


@app.get("/demo/dependency")
async def dependency(tracking_id: TrackingID) -> dict[str, str | None]:
    log.info("dependency injected the tracking id")
    return {"tracking_id": tracking_id, "nested": await _nested_work()}


@app.get("/demo/sync")
def sync_endpoint(tracking_id: TrackingID) -> dict[str, str | None]:
    log.info("sync endpoint in the thread pool")
    return {"tracking_id": tracking_id, "thread_sees": get_tracking_id()}


def _after_response(expected: str | None) -> None:
    log.info("background task ran after the response", extra={"expected": expected})


@app.get("/demo/background")
async def background(tasks: BackgroundTasks, tracking_id: TrackingID) -> dict[str, str | None]:
    tasks.add_task(_after_response, tracking_id)
    log.info("background task scheduled")
    return {"tracking_id": tracking_id}


@app.get("/demo/downstream")
async def downstream(request: Request) -> dict[str, object]:
    base = str(request.base_url).rstrip("/")
    async with httpx.AsyncClient(event_hooks={"request": [aforward_tracking_id]}, timeout=5) as client:
        response = await client.get(f"{base}/demo/context")
    log.info("downstream call returned %s", response.status_code)
    return {
        "tracking_id": get_tracking_id(),
        "downstream_header": response.headers.get("x-tracking-id"),
        "downstream_body": response.json(),
    }


@app.get("/demo/error")
async def error() -> None:
    log.info("about to fail")
    raise RuntimeError("demo failure")


@app.websocket("/ws/echo")
async def ws_echo(websocket: WebSocket) -> None:
    await websocket.accept()
    log.info("websocket accepted")
    try:
        while True:
            text = await websocket.receive_text()
            log.info("websocket message", extra={"size": len(text)})
            await websocket.send_json({"echo": text, "tracking_id": get_tracking_id()})
    except WebSocketDisconnect:
        log.info("websocket closed")


if os.environ.get("DEMO_JOBS_REDIS_URL"):  # only with a queue configured (needs the `celery` extra)
    from service.jobs.demo import hello

    @app.post("/demo/job")
    def demo_job(tracking_id: TrackingID) -> dict[str, str | None]:
        log.info("enqueueing the demo job")
        return {"tracking_id": tracking_id, "job_id": hello.delay("demo").id}


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/readyz")
async def readyz() -> dict[str, str]:
    return {"status": "ready"}
