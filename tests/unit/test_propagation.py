"""Forwarding the ID downstream with httpx hooks (httpx's MockTransport records what would be sent)."""

from __future__ import annotations

import asyncio

import httpx

from service import aforward_tracking_id, bind_tracking_id, forward_tracking_id


def echo(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"sent": request.headers.get("x-tracking-id")})


def test_sync_client_forwards_the_current_id() -> None:
    client = httpx.Client(transport=httpx.MockTransport(echo), event_hooks={"request": [forward_tracking_id]})
    with bind_tracking_id("fwd-000001"):
        assert client.get("http://downstream/").json() == {"sent": "fwd-000001"}
    assert client.get("http://downstream/").json() == {"sent": None}, "nothing outside a request"


def test_explicit_header_is_kept() -> None:
    client = httpx.Client(transport=httpx.MockTransport(echo), event_hooks={"request": [forward_tracking_id]})
    with bind_tracking_id("fwd-000002"):
        sent = client.get("http://downstream/", headers={"X-Tracking-ID": "explicit-1"}).json()
    assert sent == {"sent": "explicit-1"}


def test_async_client() -> None:
    async def main() -> object:
        async with (
            httpx.AsyncClient(
                transport=httpx.MockTransport(echo), event_hooks={"request": [aforward_tracking_id]}
            ) as client,
            bind_tracking_id("fwd-000003"),
        ):
            return (await client.get("http://downstream/")).json()

    assert asyncio.run(main()) == {"sent": "fwd-000003"}
