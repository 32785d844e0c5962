"""The middleware's fresh IDs, made in batches: UUID4 strings from os.urandom and W3C trace contexts."""

from __future__ import annotations

import os
import threading
import uuid

import pytest

from service.context import RequestContext, TraceContext
from service.ids import buffered_trace_context, buffered_tracking_id, context_batches


def test_every_id_is_a_canonical_uuid4_and_unique() -> None:
    made = [buffered_tracking_id() for _ in range(3000)]  # several batches
    assert len(set(made)) == len(made)
    for value in made:
        parsed = uuid.UUID(value)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == value


def test_threads_never_share_an_id() -> None:
    out: list[list[str]] = [[] for _ in range(8)]

    def work(i: int) -> None:
        out[i].extend(buffered_tracking_id() for _ in range(2000))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = [x for part in out for x in part]
    assert len(set(everything)) == len(everything) == 16000


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_never_hands_out_its_parents_ids() -> None:
    buffered_tracking_id()  # the parent has a batch ready
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, "\n".join(buffered_tracking_id() for _ in range(10)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split("\n"))
    parent = {buffered_tracking_id() for _ in range(300)}
    assert not child & parent


def test_every_hex_digit_of_an_id_is_random() -> None:
    """Each of the 30 free digits of a UUID4 takes all 16 values over a few batches (none is fixed)."""
    made = [buffered_tracking_id().replace("-", "") for _ in range(2000)]
    for position in range(32):
        seen = {value[position] for value in made}
        if position == 12:
            assert seen == {"4"}  # the version
        elif position == 16:
            assert seen == set("89ab")  # the RFC 4122 variant
        else:
            assert len(seen) == 16, position


def test_trace_contexts_are_w3c_ids_and_unique() -> None:
    made = [buffered_trace_context() for _ in range(3000)]
    assert len({t[0] for t in made}) == len({t[1] for t in made}) == 3000
    for trace_id, span_id, flags in made:
        assert len(trace_id) == 32 and len(span_id) == 16 and flags == "00"
        assert set(trace_id + span_id) <= set("0123456789abcdef")
        assert trace_id != "0" * 32 and span_id != "0" * 16


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_never_hands_out_its_parents_traces() -> None:
    buffered_trace_context()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, "\n".join(buffered_trace_context()[0] for _ in range(10)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split("\n"))
    parent = {buffered_trace_context()[0] for _ in range(300)}
    assert not child & parent


@pytest.mark.parametrize("configuration", ["traces", "id+trace", "trace-as-id"])
@pytest.mark.parametrize("zero", ["trace", "span"])
def test_an_all_zero_trace_or_span_id_is_never_handed_out(
    monkeypatch: pytest.MonkeyPatch, configuration: str, zero: str
) -> None:
    """The spec forbids all-zero IDs: a batch whose random digits make one drops that context (and only it)."""
    from service import ids

    real = ids._random_hex
    calls = 0

    def zeros_in_first_batch(length: int) -> bytearray:  # every 5th record's trace (or span) ID is all zero
        nonlocal calls
        calls += 1
        digits = real(length)
        if calls == 1:
            width = length // 256
            field = ids._SPAN if zero == "span" else ids._TRACE
            end = width - 1 if zero == "span" else width - 1 - ids._SPAN - 1
            for record in range(0, 256, 5):
                at = record * width + end - field
                digits[at : at + field] = b"0" * field
        return digits

    def take() -> TraceContext | None:
        return ids._trace_contexts.take() if configuration == "traces" else contexts.take()[1]

    contexts = context_batches(new_trace=True, trace_id_as_tracking_id=configuration == "trace-as-id")
    batches = ids._trace_contexts if configuration == "traces" else contexts
    batches.ready.clear()
    monkeypatch.setattr(ids, "_random_hex", zeros_in_first_batch)
    made = [trace for trace in (take() for _ in range(300)) if trace is not None]
    assert calls == 2
    assert all(t != "0" * 32 and s != "0" * 16 for t, s, _ in made)
    assert len({t for t, _, _ in made}) == 300
    assert len(batches.ready) == (256 - 52) + 256 - 300  # only the 52 zero records were dropped


@pytest.mark.parametrize(
    ("new_trace", "trace_id_as_tracking_id"), [(True, False), (False, False), (True, True), (False, True)]
)
def test_request_contexts_pair_an_id_with_the_configured_trace(new_trace: bool, trace_id_as_tracking_id: bool) -> None:
    """A ready-made request context per configuration: (uuid4, new trace), (uuid4, None), (trace id, its trace)."""
    batches = context_batches(new_trace=new_trace, trace_id_as_tracking_id=trace_id_as_tracking_id)
    made = [batches.take() for _ in range(600)]  # several batches
    assert len({tracking_id for tracking_id, _ in made}) == 600
    for tracking_id, trace in made:
        if not new_trace:
            assert trace is None and uuid.UUID(tracking_id).version == 4
            continue
        assert trace is not None and len(trace[0]) == 32 and len(trace[1]) == 16 and trace[2] == "00"
        if trace_id_as_tracking_id:
            assert tracking_id == trace[0]
        else:
            assert uuid.UUID(tracking_id).version == 4 and tracking_id.replace("-", "") != trace[0]
    if new_trace:
        assert len({trace[1] for _, trace in made if trace is not None}) == 600


def test_take_hands_out_a_value_from_an_empty_batch() -> None:
    """The middleware pops itself and calls take() on IndexError: it must get a fresh, distinct context."""
    batches = context_batches(new_trace=True, trace_id_as_tracking_id=False)
    batches.ready.clear()
    first = batches.take()
    assert batches.ready and first not in batches.ready


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_never_hands_out_its_parents_request_contexts() -> None:
    batches = context_batches(new_trace=True, trace_id_as_tracking_id=False)
    batches.take()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, "\n".join(batches.take()[0] for _ in range(10)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split("\n"))
    parent = {batches.take()[0] for _ in range(300)}
    assert not child & parent


@pytest.mark.parametrize("configuration", ["traces", "id+trace"])
def test_every_hex_digit_of_a_trace_and_of_its_request_id_is_random(configuration: str) -> None:
    """No digit of a trace ID, span ID or paired UUID4 is fixed by the batch layout (each takes all 16 values)."""
    made: list[RequestContext]
    if configuration == "traces":
        made = [("", buffered_trace_context()) for _ in range(2000)]
    else:
        batches = context_batches(new_trace=True, trace_id_as_tracking_id=False)
        made = [batches.take() for _ in range(2000)]
    for field in (0, 1):
        values = [trace[field] for _, trace in made if trace is not None]
        for position in range(len(values[0])):
            assert len({value[position] for value in values}) == 16, (field, position)
    if configuration == "id+trace":
        ids = [tracking_id.replace("-", "") for tracking_id, _ in made]
        for position in range(32):
            expected = {"4"} if position == 12 else set("89ab") if position == 16 else set("0123456789abcdef")
            assert {value[position] for value in ids} == expected, position
