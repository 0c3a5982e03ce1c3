"""Run a producer (decoding + preprocessing) ahead of its consumer (the model) in a thread.

Decoding (FFmpeg) and inference (TensorFlow) both release the GIL, so overlapping them
makes a video cost about the slower of the two instead of their sum. The queue is
bounded, so memory stays constant whatever the video's length.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


def prefetch(items: Iterable[T], buffer_size: int) -> Iterator[T]:
    """Yield items in order while a worker thread produces up to buffer_size ahead.

    An exception in the producer is raised in the consumer, unchanged. If the consumer
    stops early, the worker stops at its next item.
    """
    buffer: queue.Queue = queue.Queue(maxsize=max(1, buffer_size))
    stop = threading.Event()

    def put(value) -> bool:
        while not stop.is_set():
            try:
                buffer.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for item in items:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as error:  # handed to the consumer, which re-raises it
            put(_Failure(error))

    worker = threading.Thread(target=produce, name="movinet-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            value = buffer.get()
            if value is _DONE:
                break
            if isinstance(value, _Failure):
                raise value.error
            yield value
    finally:
        stop.set()
        worker.join()
