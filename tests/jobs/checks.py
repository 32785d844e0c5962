"""Assertions shared by the queue tests: every line of a job carries the ID of the request behind it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from tests.jobs.support import Record, Sent, job_lines, trace_rendered


def assert_jobs_follow_requests(
    sent: Sequence[Sent], worker: Sequence[Record], web: Sequence[Record], expected_messages: Iterable[str]
) -> int:
    """Each job's worker lines exist, carry its request's tracking ID (and trace ID when this build renders
    trace fields), and no request's ID appears on another job's line. Returns the number of job lines."""
    by_job = job_lines(worker)
    owner = {s.tracking_id: s.job_id for s in sent}
    assert len(owner) == len(sent), "the middleware handed out a duplicate tracking ID"
    traced = trace_rendered(web, sent[0].tracking_id)
    checked = 0
    for s in sent:
        lines = by_job.get(s.job_id)
        assert lines, f"no worker line for job {s.job_id} (item {s.item})"
        messages = [str(line["message"]) for line in lines]
        for expected in expected_messages:
            wanted = expected.format(item=s.item, job_id=s.job_id)
            assert any(wanted in m for m in messages), f"job of item {s.item}: no {wanted!r} line in {messages}"
        for line in lines:
            assert line["tracking_id"] == s.tracking_id, f"job of item {s.item} logged under another ID: {line}"
            if traced:
                assert line.get("trace_id") == s.trace_id, f"job of item {s.item}: wrong or no trace_id: {line}"
                assert len(str(line.get("span_id"))) == 16, line
            checked += 1
    for line in worker:  # no request's ID on a line that is not its job's
        tracking_id = line.get("tracking_id")
        if tracking_id in owner:
            assert line.get("task_id") == owner[tracking_id], f"ID of another request's job on: {line}"
    for s in sent:  # the web side logged the same ID for the request that enqueued the job
        assert any(r.get("tracking_id") == s.tracking_id for r in web), f"no web line with {s.tracking_id}"
    return checked
