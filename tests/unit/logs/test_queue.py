"""The bounded batched hand-off."""

from __future__ import annotations

import threading
import time

from service.logs.queue import BatchQueue


def test_fifo_batches() -> None:
    q: BatchQueue[int] = BatchQueue(100)
    for i in range(10):
        assert q.put(i)
    q.wait(0)
    assert q.take() == list(range(10))
    assert q.take() == []


def test_drop_policy_counts() -> None:
    q: BatchQueue[int] = BatchQueue(3, "drop")
    results = [q.put(i) for i in range(5)]
    assert results == [True, True, True, False, False]
    assert q.dropped == 2
    assert q.take() == [0, 1, 2]


def test_block_policy_waits_for_room_and_loses_nothing() -> None:
    """A producer on a full queue blocks until the consumer takes a batch."""
    q: BatchQueue[int] = BatchQueue(2, "block")
    q.put(0)
    q.put(1)
    done = threading.Event()

    def producer() -> None:
        q.put(2)
        done.set()

    thread = threading.Thread(target=producer)
    thread.start()
    assert not done.wait(0.3), "producer must block while the queue is full"
    assert q.take() == [0, 1]
    assert done.wait(5)
    thread.join()
    assert q.take() == [2]


def test_many_producers_one_consumer() -> None:
    """Every item from every producer arrives exactly once, in per-producer order."""
    q: BatchQueue[tuple[int, int]] = BatchQueue(50)
    got: list[tuple[int, int]] = []
    stop = threading.Event()

    def consumer() -> None:
        while not (stop.is_set() and not len(q)):
            q.wait(0.05)
            got.extend(q.take())

    c = threading.Thread(target=consumer)
    c.start()
    producers = [threading.Thread(target=lambda p=p: [q.put((p, i)) for i in range(2000)]) for p in range(4)]
    for t in producers:
        t.start()
    for t in producers:
        t.join()
    stop.set()
    q.wake()
    c.join(10)
    assert len(got) == 8000
    for p in range(4):
        assert [i for (pp, i) in got if pp == p] == list(range(2000))


def test_close_releases_blocked_producers() -> None:
    q: BatchQueue[int] = BatchQueue(1, "block")
    q.put(0)
    t = threading.Thread(target=q.put, args=(1,))
    t.start()
    time.sleep(0.1)
    q.close()
    t.join(5)
    assert not t.is_alive()
