"""Inference: clips or windows -> model -> class probabilities for the video and its parts.

Base mode batches fixed-length clips and averages their softmax probabilities.
Stream mode feeds consecutive windows through the causal model carrying its states, so
memory stays constant for any length; the video's probabilities are the final output.
"""
from __future__ import annotations

import dataclasses
from typing import Iterable

import numpy as np
import tensorflow as tf
import tf_keras
from official.projects.movinet.modeling import movinet_layers

from adapter.clips import Clip

# The head's global average pool keeps a running sum and frame count in the stream states.
_HEAD_POOL_SUM = "state_head_pool_buffer"
_HEAD_POOL_COUNT = "state_head_pool_frame_count"


@dataclasses.dataclass(frozen=True)
class Segment:
    """Top-1 class of one clip or window, over the source frames it covers."""

    first_index: int
    last_index: int
    class_index: int
    confidence: float
    # The clip's or window's own probabilities over every class (for probability-over-time plots).
    probabilities: np.ndarray | None = dataclasses.field(default=None, repr=False, compare=False)


@dataclasses.dataclass
class VideoPrediction:
    probabilities: np.ndarray  # (num_classes,) for the whole video
    segments: list[Segment]


def _softmax(logits: np.ndarray) -> np.ndarray:
    return tf.nn.softmax(logits, axis=-1).numpy()


def _segment(clip: Clip, probabilities: np.ndarray) -> Segment:
    best = int(np.argmax(probabilities))
    return Segment(clip.first_index, clip.last_index, best, float(probabilities[best]), probabilities)


class BaseVideoClassifier:
    """Base (non-causal) model: clips of n_frames in batches; the video is the clips' mean."""

    def __init__(self, model: tf_keras.Model, batch_size: int):
        self.batch_size = batch_size
        # One trace for any batch and clip shape.
        self._logits = tf.function(
            lambda clips: model(clips, training=False),
            input_signature=[tf.TensorSpec([None, None, None, None, 3], tf.float32)],
        )

    def logits(self, clips: np.ndarray) -> np.ndarray:
        return self._logits(tf.convert_to_tensor(clips, tf.float32)).numpy()

    def classify(self, clips: Iterable[Clip]) -> VideoPrediction:
        probability_sum = None
        segments: list[Segment] = []
        batch: list[Clip] = []

        def run(batch):
            nonlocal probability_sum
            probabilities = _softmax(self.logits(np.stack([clip.frames for clip in batch])))
            batch_sum = probabilities.sum(axis=0)
            probability_sum = batch_sum if probability_sum is None else probability_sum + batch_sum
            segments.extend(_segment(clip, p) for clip, p in zip(batch, probabilities))

        for clip in clips:
            batch.append(clip)
            if len(batch) == self.batch_size:
                run(batch)
                batch = []
        if batch:
            run(batch)
        if not segments:
            raise ValueError("no clip to classify")
        return VideoPrediction(probability_sum / len(segments), segments)


class StreamVideoClassifier:
    """Causal stream model: windows in order, states carried from one call to the next."""

    def __init__(self, model: tf_keras.Model):
        self._model = model
        heads = [layer for layer in model.layers if isinstance(layer, movinet_layers.ClassifierHead)]
        if len(heads) != 1:
            raise ValueError("expected a MovinetClassifier with one classifier head")
        self._head = heads[0]
        # Window lengths differ only at the end of a video; relax shapes instead of retracing.
        self._step = tf.function(
            lambda states, image: model({**states, "image": image}, training=False), reduce_retracing=True
        )
        self._classify_pooled = tf.function(lambda pooled: self._head(pooled, training=False), reduce_retracing=True)

    def classify(self, windows: Iterable[Clip]) -> VideoPrediction:
        states = None
        logits = None
        segments: list[Segment] = []
        for window in windows:
            image = tf.convert_to_tensor(window.frames[None], tf.float32)
            if states is None:
                states = self._model.init_states(tf.shape(image))
            sum_before, count_before = states[_HEAD_POOL_SUM], states[_HEAD_POOL_COUNT]
            logits, states = self._step(states, image)
            # The window's own label: the head applied to the mean feature of its frames only.
            frames_in_window = tf.cast(states[_HEAD_POOL_COUNT] - count_before, sum_before.dtype)
            window_feature = (states[_HEAD_POOL_SUM] - sum_before) / frames_in_window
            window_probabilities = _softmax(self._classify_pooled(window_feature).numpy())[0]
            segments.append(_segment(window, window_probabilities))
        if logits is None:
            raise ValueError("no window to classify")
        # The final output pools every frame of the video.
        return VideoPrediction(_softmax(logits.numpy())[0], segments)
