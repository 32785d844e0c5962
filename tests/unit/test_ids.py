"""The middleware's default generator: UUID4 strings from os.urandom, made in batches."""

from __future__ import annotations

import os
import threading
import uuid

import pytest

from service.ids import buffered_tracking_id


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
