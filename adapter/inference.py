"""Inference: clips or windows -> model -> class probabilities, or an embedding, for a video.

Base mode batches fixed-length clips and averages their softmax probabilities.
Stream mode feeds consecutive windows through the causal model carrying its states, so
memory stays constant for any length; the video's probabilities are the final output.

Embeddings are the backbone's globally pooled "head" feature, the vector the classifier
head projects, averaged the way the probabilities are (over the clips, or over every frame
the stream saw) and scaled to unit length.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Iterator

import numpy as np
import tensorflow as tf
import tf_keras

from adapter.clips import Clip
from adapter.network import classifier_head

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


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities over the last axis (numerically stable; every runtime uses this one).

    Args:
        logits: (..., num_classes).
    Returns:
        float32 probabilities of the same shape.
    """
    logits = np.asarray(logits, np.float32)
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def unit_vector(feature: np.ndarray) -> np.ndarray:
    """feature flattened and scaled to L2 norm 1.

    Args:
        feature: the pooled feature of one video, any shape.
    Returns:
        A 1-D float32 array of norm 1.
    Raises:
        ValueError: the feature is all zeros or not finite, so it has no direction.
    """
    vector = np.asarray(feature, np.float32).reshape(-1)
    norm = float(np.linalg.norm(vector))
    if not np.isfinite(norm) or norm == 0.0:
        raise ValueError(f"the pooled feature has norm {norm}; it cannot be scaled to unit length")
    return vector / norm


def _segment(clip: Clip, probabilities: np.ndarray) -> Segment:
    best = int(np.argmax(probabilities))
    return Segment(clip.first_index, clip.last_index, best, float(probabilities[best]), probabilities)


class ClipClassifier:
    """A base-mode classifier's results, whatever runs the model (a runtime supplies the outputs).

    Subclasses yield, per group of clips, the clips with their logits (_logits) or their pooled
    "head" features (_features); the video is the clips' mean.
    """

    def _logits(self, clips: Iterable[Clip]) -> Iterator[tuple[list[Clip], np.ndarray]]:
        raise NotImplementedError

    def _features(self, clips: Iterable[Clip]) -> Iterator[tuple[list[Clip], np.ndarray]]:
        raise NotImplementedError

    def classify(self, clips: Iterable[Clip]) -> VideoPrediction:
        """The video's prediction: each clip's segment and the clips' mean probabilities.

        Args:
            clips: the video's clips of n_frames.
        Returns:
            The VideoPrediction.
        """
        probability_sum = None
        segments: list[Segment] = []
        for batch, logits in self._logits(clips):
            probabilities = softmax(logits)
            batch_sum = probabilities.sum(axis=0)
            probability_sum = batch_sum if probability_sum is None else probability_sum + batch_sum
            segments.extend(_segment(clip, p) for clip, p in zip(batch, probabilities))
        if not segments:
            raise ValueError("no clip to classify")
        return VideoPrediction(probability_sum / len(segments), segments)

    def embed(self, clips: Iterable[Clip]) -> np.ndarray:
        """The video's embedding: the clips' mean pooled feature, unit length.

        Args:
            clips: the video's clips, as classify takes them.
        Returns:
            A 1-D float32 array of the variant's embeddings size and norm 1.
        """
        feature_sum = None
        count = 0
        for batch, features in self._features(clips):
            features = np.asarray(features).reshape(len(batch), -1)
            feature_sum = features.sum(axis=0) if feature_sum is None else feature_sum + features.sum(axis=0)
            count += len(batch)
        if count == 0:
            raise ValueError("no clip to embed")
        return unit_vector(feature_sum / count)


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


class WindowClassifier:
    """A stream-mode classifier's results, whatever runs the model (a runtime supplies the steps).

    The model pools its head feature as a running sum and frame count in its states, so a
    window's own probabilities are the head applied to the mean feature of its frames, and
    the embedding is the mean over every frame seen. Subclasses yield, per window,
    (window, logits so far, states before, states after) from _steps and apply the
    classifier head to a pooled feature in _head_logits.
    """

    def _steps(self, windows: Iterable[Clip]) -> Iterator[tuple[Clip, np.ndarray, dict, dict]]:
        raise NotImplementedError

    def _head_logits(self, feature: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def segments(self, windows: Iterable[Clip]) -> Iterator[tuple[Segment, np.ndarray]]:
        """Classify windows as they arrive, one result per window (live sources, long videos).

        Args:
            windows: the video's windows, in order; may be endless.
        Returns:
            An iterator of (the window's own segment, probabilities over everything seen so far),
            each ready as soon as its window has run.
        """
        for window, logits, before, states in self._steps(windows):
            frames_in_window = _frame_count(states) - _frame_count(before)
            pooled_sum = np.asarray(states[_HEAD_POOL_SUM]) - np.asarray(before[_HEAD_POOL_SUM])
            own = softmax(self._head_logits((pooled_sum / frames_in_window).astype(np.float32)))[0]
            # The model's own output pools every frame seen so far.
            yield _segment(window, own), softmax(logits)[0]

    def classify(self, windows: Iterable[Clip]) -> VideoPrediction:
        """The video's prediction: the final output (every frame pooled) and each window's segment.

        Args:
            windows: the video's windows, in order.
        Returns:
            The VideoPrediction.
        """
        return classify_stream(self.segments(windows))

    def embed(self, windows: Iterable[Clip]) -> np.ndarray:
        """The video's embedding: the pooled feature over every frame (what the final output projects).

        Args:
            windows: the video's windows, in order, as classify takes them.
        Returns:
            A 1-D float32 array of the variant's embeddings size and norm 1.
        """
        states = None
        for _, _, _, states in self._steps(windows):
            pass
        if states is None:
            raise ValueError("no window to embed")
        return unit_vector(np.asarray(states[_HEAD_POOL_SUM]) / _frame_count(states))


def _frame_count(states: dict) -> float:
    return float(np.asarray(states[_HEAD_POOL_COUNT]).reshape(-1)[0])


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


def classify_stream(results: Iterable[tuple[Segment, np.ndarray]]) -> VideoPrediction:
    """A whole video's prediction from a stream classifier's per-window results.

    Args:
        results: (segment, probabilities so far) per window, as a stream classifier's
            segments() yields them.
    Returns:
        The video's prediction: the last window's probabilities so far, and every segment.
    Raises:
        ValueError: there was no window.
    """
    segments: list[Segment] = []
    probabilities = None
    for segment, probabilities in results:
        segments.append(segment)
    if probabilities is None:
        raise ValueError("no window to classify")
    return VideoPrediction(probabilities, segments)
