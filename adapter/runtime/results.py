"""What a classifier returns, whatever runs the model: segments, video probabilities, embeddings, top-k.

Pure numpy (no TensorFlow import), so live loops and reports can use it cheaply. Every runtime
uses the one softmax, the one top-k ordering and the one way to turn segments into labelled
frame ranges (tiling the video, equal neighbours merged). A Scoring says how logits become the
probabilities predictions report: softmax or independent sigmoids (multi-label weights), an
optional temperature (calibration), per-class thresholds and a confidence floor.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from adapter.video.clips import LabelledRange


def top_k_labels(probabilities: np.ndarray, labels: Sequence[str], top_k: int) -> list[tuple[str, float]]:
    order = np.argsort(-probabilities, kind="stable")[: min(top_k, len(labels))]
    return [(labels[i], float(probabilities[i])) for i in order]


def temporal_ranges(segments: Sequence[Segment], labels: Sequence[str], last_frame: int) -> list[LabelledRange]:
    """Stretch segments to cover frames 0..last_frame without gaps, merging equal neighbours.

    A merged range's confidence is the frame-weighted mean of its parts.
    """
    segments = sorted(segments, key=lambda segment: segment.first_index)
    ranges: list[LabelledRange] = []
    for i, segment in enumerate(segments):
        first = 0 if i == 0 else segment.first_index
        last = segments[i + 1].first_index - 1 if i + 1 < len(segments) else last_frame
        label = labels[segment.class_index]
        if ranges and ranges[-1].label == label:
            previous = ranges[-1]
            previous_frames = previous.last_frame - previous.first_frame + 1
            frames = last - first + 1
            confidence = (previous.confidence * previous_frames + segment.confidence * frames) / (
                previous_frames + frames
            )
            ranges[-1] = LabelledRange(label, previous.first_frame, last, confidence)
        else:
            ranges.append(LabelledRange(label, first, last, segment.confidence))
    return ranges


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


def softmax(logits: np.ndarray, temperature: float | None = None) -> np.ndarray:
    """Probabilities over the last axis (numerically stable; every runtime uses this one).

    Args:
        logits: (..., num_classes).
        temperature: divides the logits first (calibration); None leaves them as they are.
    Returns:
        float32 probabilities of the same shape.
    """
    logits = np.asarray(logits, np.float32)
    if temperature is not None:
        logits = logits / np.float32(temperature)
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def sigmoid(logits: np.ndarray, temperature: float | None = None) -> np.ndarray:
    """Independent per-class probabilities (multi-label heads), numerically stable.

    Args:
        logits: (..., num_classes).
        temperature: divides the logits first (calibration); None leaves them as they are.
    Returns:
        float32 probabilities of the same shape.
    """
    logits = np.asarray(logits, np.float64)
    if temperature is not None:
        logits = logits / temperature
    return np.exp(-np.logaddexp(0.0, -logits)).astype(np.float32)


# Probabilities are clipped this far from 0 and 1 before their log or logit is taken.
_PROBABILITY_EPSILON = 1e-7


@dataclasses.dataclass(frozen=True)
class Scoring:
    """How a model's logits become the probabilities its predictions report, and which classes they name.

    The default (softmax, no temperature, no floor) is what pretrained presets use: exactly the
    probabilities and labels of plain softmax top-k. A temperature is applied to fused
    probabilities (a clip's, or the mean of a video's clips) as softmax(log p / T), or
    sigmoid(logit p / T) for multi-label weights: for one clip that is softmax(logits / T), and it
    never changes the order of the classes, so calibration changes confidences, not labels.
    """

    multi_label: bool = False  # independent sigmoids (trained with binary cross-entropy)
    temperature: float | None = None  # None: uncalibrated
    thresholds: tuple[float, ...] | None = None  # multi-label: per class; None: 0.5 each
    min_confidence: float = 0.0  # a best probability below this names no class

    def raw(self, logits: np.ndarray) -> np.ndarray:
        """The model's own (uncalibrated) probabilities of logits.

        Args:
            logits: (..., num_classes).
        Returns:
            softmax or sigmoid probabilities, float32.
        """
        return sigmoid(logits) if self.multi_label else softmax(logits)

    def calibrate(self, probabilities: np.ndarray) -> np.ndarray:
        """Apply the temperature to uncalibrated (possibly averaged) probabilities; unchanged without one.

        Args:
            probabilities: raw() output, or a mean of several.
        Returns:
            The calibrated probabilities (the same array when there is no temperature).
        """
        if self.temperature is None:
            return probabilities
        p = np.clip(np.asarray(probabilities, np.float64), _PROBABILITY_EPSILON, 1.0 - _PROBABILITY_EPSILON)
        if self.multi_label:
            return sigmoid(np.log(p) - np.log1p(-p), self.temperature)
        return softmax(np.log(p), self.temperature)

    def uncalibrate(self, probabilities: np.ndarray) -> np.ndarray:
        """Undo calibrate(): the probabilities before the temperature (for before/after reports).

        Args:
            probabilities: calibrate() output.
        Returns:
            The uncalibrated probabilities (the same array when there is no temperature).
        """
        if self.temperature is None:
            return probabilities
        return dataclasses.replace(self, temperature=1.0 / self.temperature).calibrate(probabilities)

    def threshold(self, class_index: int) -> float:
        """The probability a class needs to be named: its threshold (multi-label), else 0.

        Args:
            class_index: the class.
        Returns:
            The threshold.
        """
        if not self.multi_label:
            return 0.0
        return self.thresholds[class_index] if self.thresholds is not None else 0.5

    def names(self, class_index: int, confidence: float) -> bool:
        """Whether a segment whose best class is class_index at confidence gets that label.

        Args:
            class_index: the segment's best class.
            confidence: its calibrated probability.
        Returns:
            True when it passes min_confidence and (multi-label) the class's threshold.
        """
        return confidence >= self.min_confidence and confidence >= self.threshold(class_index)

    def video_labels(self, probabilities: np.ndarray, labels: Sequence[str], top_k: int) -> list[tuple[str, float]]:
        """The labels a video is annotated with, most probable first.

        Softmax: the top_k classes. Multi-label: every class over its threshold, at most top_k.
        Either way none when the best probability is below min_confidence ("none of these").

        Args:
            probabilities: the video's calibrated probabilities.
            labels: the label map.
            top_k: the most labels to name.
        Returns:
            (label, probability) pairs.
        """
        ranked = top_k_labels(probabilities, labels, len(labels) if self.multi_label else top_k)
        if not ranked or ranked[0][1] < self.min_confidence:
            return []
        if self.multi_label:
            index = {label: i for i, label in enumerate(labels)}
            ranked = [(label, p) for label, p in ranked if p >= self.threshold(index[label])][:top_k]
        return ranked


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
