"""The "tflite" runtime for base models: fixed-length clips run by the LiteRT interpreter.

The loaded base network is converted once (float32) to a clip model of builtin ops
(tflite_compat.tflite_compatible: per-frame 2D pooling for the skip connections' 3D one) taking
one clip of n_frames x imgz x imgz and returning the logits and the backbone's pooled "head"
feature, so prediction and embedding need one model. It is cached like the stream conversion
(tflite_runtime.cached_conversion), its key including n_frames.

The classifier keeps BaseVideoClassifier's contract and results: per-clip segments and the
clips' mean probabilities; the embedding is the clips' mean pooled feature, unit length.
The clip model's shape is fixed, so clips go one per call (the interpreter's threads share a
clip's work instead).
"""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np

from adapter.clips import Clip
from adapter.config import MovinetConfig
from adapter.devices import usable_cores
from adapter.inference import ClipClassifier
from adapter.loading import LoadedModel
from adapter.tflite_export import POOLED_OUTPUT

CLIP_FILE = "clip.tflite"


def convert_base(loaded: LoadedModel, config: MovinetConfig) -> tuple[bytes]:
    """Convert a base model's clip model (logits and pooled feature) to a float32 TF Lite flatbuffer.

    Args:
        loaded: the loaded base model.
        config: gives n_frames and imgz.
    Returns:
        (clip flatbuffer,).
    """
    from adapter import tflite_export

    model = loaded.model
    function = tflite_export.clip_function(model, config.n_frames, config.imgz, with_pooled=True)
    return (tflite_export.convert(function, model, "none"),)


class TFLiteBaseClassifier(ClipClassifier):
    """Base model as TF Lite: one fixed-length clip per call; BaseVideoClassifier's results."""

    def __init__(self, clip: bytes, num_threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        self._threads = num_threads or usable_cores()  # one interpreter thread per core
        # BUILTIN applies LiteRT's default delegate, XNNPACK, with these threads.
        interpreter = Interpreter(
            model_content=clip, num_threads=self._threads, experimental_op_resolver_type=OpResolverType.BUILTIN
        )
        self._run = interpreter.get_signature_runner()
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
