"""service.jobs.context in-process: the carrier, binding a job with tokens, the traceparent, the log fields."""

from __future__ import annotations

import asyncio
import logging

import pytest

from service.context import get_trace_context, get_tracking_id, request_context_var
from service.jobs import context as jobs
from service.jobs.context import JobFieldsFilter, carrier, current_job, end_job, start_job

TRACE = ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", "01")


def test_carrier_is_empty_outside_a_request_and_carries_both_inside() -> None:
    """Nothing to send without a request; inside one, the ID and a version-00 traceparent."""
    assert carrier() == {}
    token = request_context_var.set(("req-id-0001", TRACE))
    try:
        assert carrier() == {
            "tracking_id": "req-id-0001",
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        }
    finally:
        request_context_var.reset(token)


def test_start_job_binds_the_carried_id_and_a_child_span_then_end_job_restores_everything() -> None:
    """The job sees the carried ID and the carried trace with a new span id; afterwards the caller's own
    values are back (reset by token, never set to None)."""
    outer = request_context_var.set(("outer-id-01", None))
    try:
        bound = start_job(
            {"tracking_id": "req-id-0001", "traceparent": "00-" + "-".join(TRACE)}, name="t", job_id="job-1234"
        )
        assert bound == get_tracking_id() == "req-id-0001"
        trace = get_trace_context()
        assert trace is not None and trace[0] == TRACE[0] and trace[2] == "01"
        assert len(trace[1]) == 16 and trace[1] != TRACE[1]
        assert current_job() == ("t", "job-1234")
        end_job()
        assert get_tracking_id() == "outer-id-01"
        assert get_trace_context() is None and current_job() is None
    finally:
        request_context_var.reset(outer)


@pytest.mark.parametrize("received", [None, {}, {"tracking_id": "bad id\n{}"}, {"tracking_id": 42}])
def test_a_job_without_a_valid_id_runs_under_its_job_id_and_says_so(received: dict[str, object] | None) -> None:
    """No ID (or an invalid one, never adopted): the job id becomes the tracking ID, and one line says so."""
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    logger = logging.getLogger("service.jobs")
    handler, level = Keep(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        assert start_job(received, name=None, job_id="5f0c7a0e9d8b4c1f") == "5f0c7a0e9d8b4c1f"
        end_job()
        assert start_job(received, name=None, job_id="x") != "x"  # not a valid ID itself: a fresh uuid4
        end_job()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert [r.getMessage() for r in seen] == [
        "no tracking ID came with the job: using its job ID",
        "no tracking ID came with the job: using a new one",
    ]
    assert get_tracking_id() is None


@pytest.mark.parametrize(
    "value",
    [
        "00-" + "0" * 32 + "-b7ad6b7169203331-01",  # all-zero trace id
        "00-0af7651916cd43dd8448eb211c80319c-" + "0" * 16 + "-01",  # all-zero span id
        "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",  # version ff
        "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",  # uppercase
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",  # version 00 with a tail
        "garbage",
        None,
    ],
)
def test_an_invalid_traceparent_gives_no_trace_context(value: object) -> None:
    start_job({"tracking_id": "req-id-0001", "traceparent": value}, name=None, job_id="job-1234")
    try:
        assert get_trace_context() is None
    finally:
        end_job()


def test_a_later_version_with_extra_fields_is_read_and_reemitted_as_00() -> None:
    assert jobs._parse_traceparent("01-" + "-".join(TRACE) + "-what-ever") == TRACE
    assert jobs._format_traceparent(TRACE) == "00-" + "-".join(TRACE)


def test_nested_jobs_unwind_in_order_and_end_job_without_start_is_a_no_op() -> None:
    """Celery eager mode runs a retry inside its first try: two scopes, unwound innermost first."""
    end_job()
    start_job({"tracking_id": "first-id-01"}, name="a", job_id="job-aaaa")
    start_job({"tracking_id": "second-id-2"}, name="b", job_id="job-bbbb")
    assert get_tracking_id() == "second-id-2"
    end_job()
    assert get_tracking_id() == "first-id-01" and current_job() == ("a", "job-aaaa")
    end_job()
    assert get_tracking_id() is None and current_job() is None


def test_concurrent_jobs_in_their_own_tasks_never_see_each_others_id() -> None:
    async def job(index: int) -> tuple[str | None, str | None]:
        start_job({"tracking_id": f"request-{index:04d}"}, name="t", job_id=f"job-{index:04d}")
        try:
            await asyncio.sleep(0.001 * (index % 7))
            return get_tracking_id(), (current_job() or (None, None))[1]
        finally:
            end_job()

    async def main() -> list[tuple[str | None, str | None]]:
        return list(await asyncio.gather(*(job(i) for i in range(100))))

    assert asyncio.run(main()) == [(f"request-{i:04d}", f"job-{i:04d}") for i in range(100)]


def test_the_filter_adds_task_fields_only_inside_a_job_and_never_replaces_extras() -> None:
    filt = JobFieldsFilter()
    outside = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    assert filt.filter(outside) and "task_id" not in outside.__dict__
    start_job({"tracking_id": "req-id-0001"}, name="pkg.task", job_id="job-1234")
    try:
        inside = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
        explicit = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
        explicit.task_id = "mine"
        assert filt.filter(inside) and filt.filter(explicit)
    finally:
        end_job()
    assert (inside.__dict__["task_name"], inside.__dict__["task_id"]) == ("pkg.task", "job-1234")
    assert explicit.__dict__["task_id"] == "mine"
