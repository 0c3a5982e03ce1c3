"""The "tflite" runtime: converted flatbuffers run by the LiteRT interpreter with XNNPACK.

Base: a fixed-length clip model returning logits and the pooled feature, one clip per call (the
interpreter's threads share a clip's work). Stream: a one-frame step model with the states as
inputs and outputs, and a tiny head model that classifies a window's mean pooled feature. Both
keep the results of runtime.classifiers; the flatbuffers come from runtime.conversion_cache.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator

import numpy as np

from adapter.core.devices import usable_cores
from adapter.runtime.classifiers import ClipClassifier, WindowClassifier
from adapter.runtime.conversion import POOLED_OUTPUT
from adapter.video.clips import Clip

logger = logging.getLogger(__name__)


class _SerializedRunner:
    """A signature runner that runs one call at a time.

    One interpreter is not safe to invoke from two threads at once, and a service with
    concurrency above 1 predicts on several threads with the same classifier. Each call sets
    its inputs and returns copies of its outputs (the stream states too), so calls from
    different videos may interleave as long as each runs alone.
    """

    def __init__(self, runner):
        self._runner = runner
        self._lock = threading.Lock()

    def __call__(self, **inputs):
        with self._lock:
            return self._runner(**inputs)

    def get_input_details(self):
        return self._runner.get_input_details()


def signature_runner(flatbuffer: bytes, num_threads: int):
    """The one way the runtime makes a LiteRT interpreter: XNNPACK on num_threads, the default signature.

    Args:
        flatbuffer: a .tflite model's bytes.
        num_threads: interpreter threads (one per usable core is the runtime's choice).

    Returns:
        The interpreter's default signature runner (call it with the inputs by name).
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    # BUILTIN applies LiteRT's default delegate, XNNPACK, with these threads.
    interpreter = Interpreter(
        model_content=flatbuffer, num_threads=num_threads, experimental_op_resolver_type=OpResolverType.BUILTIN
    )
    # Serialised: one interpreter is not safe to invoke from two threads at once.
    return _SerializedRunner(interpreter.get_signature_runner())


class TFLiteStreamClassifier(WindowClassifier):
    """Stream model as TF Lite: frames one at a time, states carried; StreamVideoClassifier's results."""

    def __init__(self, step: bytes, head: bytes, num_threads: int | None = None):
        self._threads = num_threads or usable_cores()  # one interpreter thread per core
        self._step = signature_runner(step, self._threads)
        self._head = signature_runner(head, self._threads)
        details = self._step.get_input_details()
        self._initial = {name: np.zeros(d["shape"], d["dtype"]) for name, d in details.items() if name != "image"}
        self.imgz = int(details["image"]["shape"][2])

    def _steps(self, windows: Iterable[Clip]) -> Iterator[tuple[Clip, np.ndarray, dict, dict]]:
        """Run every frame of each window; yields (window, logits after it, states before, states after)."""
        states = self._initial
        for window in windows:
            before = states
            for frame in window.frames:
                outputs = self._step(image=np.asarray(frame, np.float32)[None, None], **states)
                logits = outputs.pop("logits")
                states = outputs
            yield window, logits, before, states

    def _head_logits(self, feature: np.ndarray) -> np.ndarray:
        return self._head(pooled=feature)["logits"]


class TFLiteBaseClassifier(ClipClassifier):
    """Base model as TF Lite: one fixed-length clip per call; BaseVideoClassifier's results."""

    def __init__(self, clip: bytes, num_threads: int | None = None):
        self._threads = num_threads or usable_cores()  # one interpreter thread per core
        self._run = signature_runner(clip, self._threads)
        self.clip_shape = tuple(int(n) for n in self._run.get_input_details()["image"]["shape"][1:])

    def _outputs(self, clips: Iterable[Clip]) -> Iterator[tuple[list[Clip], dict]]:
        """([clip], its outputs: logits and pooled feature) for each clip."""
        for clip in clips:
            frames = np.asarray(clip.frames, np.float32)
            if frames.shape != self.clip_shape:
                raise ValueError(f"the TF Lite clip model takes clips of {self.clip_shape}. Received: {frames.shape}")
            yield [clip], self._run(image=frames[None])

    def _logits(self, clips):
        for batch, outputs in self._outputs(clips):
            yield batch, outputs["logits"]

    def _features(self, clips):
        for batch, outputs in self._outputs(clips):
            yield batch, outputs[POOLED_OUTPUT]

    def _logits_and_features(self, clips):
        for batch, outputs in self._outputs(clips):
            yield batch, outputs["logits"], outputs[POOLED_OUTPUT]
