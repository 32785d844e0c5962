"""The ContextVar helpers."""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor

from service.context import bind_tracking_id, get_trace_context, get_tracking_id, new_tracking_id, request_context_var


def test_default_is_none() -> None:
    assert get_tracking_id() is None


def test_new_ids_are_unique_canonical_uuid4() -> None:
    """Same IDs as str(uuid.uuid4()): canonical form, version 4, RFC 4122 variant, all variant digits."""
    ids = [new_tracking_id() for _ in range(20000)]
    assert len(set(ids)) == len(ids)
    for value in ids:
        parsed = uuid.UUID(value)
        assert str(parsed) == value and parsed.version == 4 and parsed.variant == uuid.RFC_4122
    assert {value[19] for value in ids} == set("89ab")


def test_bind_and_restore() -> None:
    """bind_tracking_id binds for the block and restores the previous value, nested too."""
    with bind_tracking_id("outer-0001") as outer:
        assert outer == get_tracking_id() == "outer-0001"
        with bind_tracking_id() as inner:
            assert get_tracking_id() == inner != outer
        assert get_tracking_id() == "outer-0001"
    assert get_tracking_id() is None


def test_bind_keeps_the_current_trace_context() -> None:
    """Detached work bound to another ID stays in the request's trace; outside a trace there is none."""
    trace = ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", "01")
    token = request_context_var.set(("request-0001", trace))
    try:
        with bind_tracking_id("detached-01"):
            assert get_tracking_id() == "detached-01" and get_trace_context() == trace
        assert get_tracking_id() == "request-0001"
    finally:
        request_context_var.reset(token)
    with bind_tracking_id("no-trace-01"):
        assert get_trace_context() is None


def test_restores_on_exception() -> None:
    try:
        with bind_tracking_id("boom-0001"):
            raise KeyError
    except KeyError:
        pass
    assert get_tracking_id() is None


def test_async_with_and_tasks() -> None:
    """async with works, and tasks created inside inherit the bound ID."""

    async def child() -> str | None:
        await asyncio.sleep(0)
        return get_tracking_id()

    async def main() -> tuple[str | None, str | None]:
        async with bind_tracking_id("async-0001"):
            seen = await asyncio.create_task(child())
        return seen, get_tracking_id()

    assert asyncio.run(main()) == ("async-0001", None)


def test_executor_work_binds_explicitly() -> None:
    """Detached executor work has no context of its own; bind_tracking_id gives it one."""

    def job(tid: str) -> tuple[str | None, str | None]:
        before = get_tracking_id()
        with bind_tracking_id(tid):
            return before, get_tracking_id()

    with bind_tracking_id("req-00001"), ThreadPoolExecutor(1) as pool:
        before, during = pool.submit(job, "req-00001").result()
    assert before is None
    assert during == "req-00001"
