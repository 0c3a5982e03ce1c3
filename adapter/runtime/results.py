"""What a classifier returns, whatever runs the model: segments, video probabilities, embeddings, top-k.

Pure numpy (no TensorFlow import), so live loops and reports can use it cheaply. Every runtime
uses the one softmax, the one top-k ordering and the one way to turn segments into labelled
frame ranges (tiling the video, equal neighbours merged).
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
