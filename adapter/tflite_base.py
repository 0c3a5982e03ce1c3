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
from adapter.inference import ClipClassifier
from adapter.loading import LoadedModel

CLIP_FILE = "clip.tflite"
POOLED_OUTPUT = "pooled"


def clip_feature_function(model, n_frames: int, imgz: int):
    """The base model on one clip as a concrete function of builtin ops: image -> logits and pooled feature.

    Args:
        model: a base MovinetClassifier; its per-frame 3D poolings are switched in place
            (tflite_compatible: same outputs, no weights touched).
        n_frames: frames per clip.
        imgz: frame size.
    Returns:
        The concrete function: `image` (1 x n_frames x imgz x imgz x 3) -> {"logits", "pooled"}.
    """
    import tensorflow as tf
    from official.projects.movinet.modeling import movinet_layers

    from adapter.tflite_compat import tflite_compatible
    from adapter.tflite_export import IMAGE_INPUT, LOGITS_OUTPUT

    tflite_compatible(model)
    (head,) = [layer for layer in model.layers if isinstance(layer, movinet_layers.ClassifierHead)]
    spec = tf.TensorSpec([1, n_frames, imgz, imgz, 3], tf.float32, name=IMAGE_INPUT)

    @tf.function(input_signature=[spec])
    def clip(image):
        # The backbone once; the head projects its pooled feature, as MovinetClassifier does.
        pooled = model.backbone(image, training=False)[0]["head"]
        return {LOGITS_OUTPUT: head(pooled, training=False), POOLED_OUTPUT: pooled}

    return clip.get_concrete_function()


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
    function = clip_feature_function(model, config.n_frames, config.imgz)
    return (tflite_export.convert(function, model, "none"),)


class TFLiteBaseClassifier(ClipClassifier):
    """Base model as TF Lite: one fixed-length clip per call; BaseVideoClassifier's results."""

    def __init__(self, clip: bytes, num_threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        from adapter.tflite_runtime import default_threads

        self._threads = num_threads or default_threads()
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
