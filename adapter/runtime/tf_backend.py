"""The "tensorflow" runtime: the Keras network run by TensorFlow.

Base clips go in batches of batch_size with one trace for any shape; stream windows go in order
with the states carried from one call to the next. Results come from runtime.classifiers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import tensorflow as tf
import tf_keras

from adapter.model.network import classifier_head
from adapter.runtime.classifiers import ClipClassifier, WindowClassifier
from adapter.video.clips import Clip


class BaseVideoClassifier(ClipClassifier):
    """Base (non-causal) model run by TensorFlow: clips of n_frames in batches of batch_size."""

    def __init__(self, model: tf_keras.Model, batch_size: int):
        self.batch_size = batch_size
        # One trace for any batch and clip shape.
        signature = [tf.TensorSpec([None, None, None, None, 3], tf.float32)]
        self._model_logits = tf.function(lambda clips: model(clips, training=False), input_signature=signature)
        # The backbone's endpoints: "head" is the (B, 1, 1, 1, C) pooled feature the classifier projects.
        self._pooled = tf.function(
            lambda clips: model.backbone(clips, training=False)[0]["head"], input_signature=signature
        )
        head = classifier_head(model)

        def logits_and_pooled(clips):
            pooled = model.backbone(clips, training=False)[0]["head"]
            return head(pooled, training=False), pooled

        # Multi-view embeddings weigh views by their probabilities: both from one backbone run.
        self._logits_and_pooled = tf.function(logits_and_pooled, input_signature=signature)

    def logits(self, clips: np.ndarray) -> np.ndarray:
        return self._model_logits(tf.convert_to_tensor(clips, tf.float32)).numpy()

    def _batches(self, clips: Iterable[Clip]) -> Iterator[tuple[list[Clip], np.ndarray]]:
        """Clips in groups of batch_size (the last may be smaller), with their stacked frames."""
        batch: list[Clip] = []
        for clip in clips:
            batch.append(clip)
            if len(batch) == self.batch_size:
                yield batch, np.stack([clip.frames for clip in batch])
                batch = []
        if batch:
            yield batch, np.stack([clip.frames for clip in batch])

    def _logits(self, clips):
        for batch, frames in self._batches(clips):
            yield batch, self.logits(frames)

    def _features(self, clips):
        for batch, frames in self._batches(clips):
            yield batch, self._pooled(tf.convert_to_tensor(frames, tf.float32)).numpy()

    def _logits_and_features(self, clips):
        for batch, frames in self._batches(clips):
            logits, pooled = self._logits_and_pooled(tf.convert_to_tensor(frames, tf.float32))
            yield batch, logits.numpy(), pooled.numpy()


class StreamVideoClassifier(WindowClassifier):
    """Causal stream model run by TensorFlow: windows in order, states carried from one call to the next."""

    def __init__(self, model: tf_keras.Model):
        self._model = model
        self._head = classifier_head(model)
        # Window lengths differ only at the end of a video; relax shapes instead of retracing.
        self._step = tf.function(
            lambda states, image: model({**states, "image": image}, training=False), reduce_retracing=True
        )
        self._classify_pooled = tf.function(lambda pooled: self._head(pooled, training=False), reduce_retracing=True)

    def _steps(self, windows: Iterable[Clip]) -> Iterator[tuple[Clip, np.ndarray, dict, dict]]:
        """Run the windows in order; yields (window, logits, states before, states after)."""
        states = None
        for window in windows:
            image = tf.convert_to_tensor(window.frames[None], tf.float32)
            if states is None:
                states = self._model.init_states(tf.shape(image))
            before = states
            logits, states = self._step(states, image)
            yield window, logits.numpy(), before, states

    def _head_logits(self, feature: np.ndarray) -> np.ndarray:
        return self._classify_pooled(tf.constant(feature)).numpy()
