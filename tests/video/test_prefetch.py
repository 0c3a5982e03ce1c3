"""The bounded background producer between decoding and the model."""

from __future__ import annotations

import threading
import time

import pytest

from adapter.video.prefetch import prefetch


def test_items_arrive_in_order_and_the_producer_stays_within_its_bound():
    produced = []

    def numbers():
        for i in range(50):
            produced.append(i)
            yield i

    consumed = []
    for value in prefetch(numbers(), buffer_size=3):
        time.sleep(0.002)
        # Produced so far: what was consumed, at most 3 waiting in the queue, and 1 in hand.
        assert len(produced) <= len(consumed) + 1 + 3 + 1
        consumed.append(value)
    assert consumed == list(range(50))


def test_a_producer_error_reaches_the_consumer_unchanged_after_the_items_before_it():
    class Broken(ValueError):
        pass

    def items():
        yield 1
        yield 2
        raise Broken("frame 3 is corrupt")

    received = []
    with pytest.raises(Broken, match="frame 3 is corrupt"):
        for value in prefetch(items(), buffer_size=8):
            received.append(value)
    assert received == [1, 2]


def test_stopping_early_stops_the_producer():
    def endless():
        i = 0
        while True:
            yield i
            i += 1

    before = threading.active_count()
    stream = prefetch(endless(), buffer_size=2)
    assert [next(stream) for _ in range(5)] == [0, 1, 2, 3, 4]
    stream.close()
    assert threading.active_count() == before
