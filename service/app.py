"""The demo service: one route per way a request's context can travel.

``LOG_DEMO_ROUTES=false`` leaves only the probes. No route derives an outbound URL from request input.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Annotated

import httpx
from fastapi import APIRouter, BackgroundTasks, Depends, FastAPI, Request, WebSocket, WebSocketDisconnect

from service import (
    TrackingIDMiddleware,
    aforward_tracking_id,
    get_tracking_id,
    setup_logging,
)

pipeline = setup_logging()  # at import: each uvicorn worker process imports the app and gets its own pipeline

log = logging.getLogger("service.demo")

app = FastAPI(title="tracking-id demo")
app.add_middleware(TrackingIDMiddleware.from_settings)  # the LOG_* settings setup_logging() read
demo = APIRouter()

TrackingID = Annotated[str | None, Depends(get_tracking_id)]


@demo.get("/demo/context")
async def context(request: Request) -> dict[str, str | None]:
    tracking_id = get_tracking_id()
    log.info("handler sees the context")
    return {"tracking_id": tracking_id, "x_request_id": request.headers.get("x-request-id")}


async def _nested_work() -> str | None:
    await asyncio.sleep(0)
    log.info("nested coroutine sees the context")
    return get_tracking_id()


@demo.get("/demo/dependency")
async def dependency(tracking_id: TrackingID) -> dict[str, str | None]:
    log.info("dependency injected the tracking id")
    return {"tracking_id": tracking_id, "nested": await _nested_work()}


@demo.get("/demo/sync")
def sync_endpoint(tracking_id: TrackingID) -> dict[str, str | None]:
    log.info("sync endpoint in the thread pool")
    return {"tracking_id": tracking_id, "thread_sees": get_tracking_id()}


def _after_response(expected: str | None) -> None:
    log.info("background task ran after the response", extra={"expected": expected})


@demo.get("/demo/background")
async def background(tasks: BackgroundTasks, tracking_id: TrackingID) -> dict[str, str | None]:
    tasks.add_task(_after_response, tracking_id)
    log.info("background task scheduled")
    return {"tracking_id": tracking_id}


@demo.get("/demo/downstream")
async def downstream(request: Request) -> dict[str, object]:
    # The service calls itself on the socket the request arrived on (the ASGI server's own address),
    # never a URL built from request input: a Host header must not choose where the server connects.
    server = request.scope.get("server")
    if not server or server[1] is None:
        return {"error": "no TCP server address to call"}
    host = f"[{server[0]}]" if ":" in server[0] else server[0]
    base = f"http://{host}:{server[1]}"
    async with httpx.AsyncClient(event_hooks={"request": [aforward_tracking_id]}, timeout=5) as client:
        response = await client.get(f"{base}/demo/context")
    log.info("downstream call returned %s", response.status_code)
    return {
        "tracking_id": get_tracking_id(),
        "downstream_header": response.headers.get("x-tracking-id"),
        "downstream_body": response.json(),
    }


@demo.get("/demo/error")
async def error() -> None:
    log.info("about to fail")
    raise RuntimeError("demo failure")


@demo.websocket("/ws/echo")
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

    @demo.post("/demo/job")
    def demo_job(tracking_id: TrackingID) -> dict[str, str | None]:
        log.info("enqueueing the demo job")
        return {"tracking_id": tracking_id, "job_id": hello.delay("demo").id}


if pipeline.settings.demo_routes:
    app.include_router(demo)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/readyz")
async def readyz() -> dict[str, str]:
    return {"status": "ready"}
