"""Probabilities -> Dataloop class annotations on a video item.

Video-level: the top_k classes, ordered by confidence, each spanning the whole video.
Temporal (optional): each clip's or window's top-1 class over its own frame range,
ranges stretched to tile the video and adjacent ranges with the same label merged.
Frame numbers are the item's own (source frames, 0-based).
"""

from __future__ import annotations

from typing import Sequence

import dtlpy as dl
import numpy as np

from adapter.clips import LabelledRange
from adapter.inference import Segment, VideoPrediction


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


def build_annotations(
    prediction: VideoPrediction,
    labels: Sequence[str],
    *,
    item: dl.Item,
    num_frames: int,
    top_k: int,
    temporal: bool,
    model_name: str | None = None,
    model_id: str | None = None,
) -> dl.AnnotationCollection:
    collection = dl.AnnotationCollection(item=item)
    last_frame = num_frames - 1
    video_level = [
        LabelledRange(label, 0, last_frame, confidence)
        for label, confidence in top_k_labels(prediction.probabilities, labels, top_k)
    ]
    temporal_level = temporal_ranges(prediction.segments, labels, last_frame) if temporal else []
    for level, ranges in (("video", video_level), ("segment", temporal_level)):
        for labelled in ranges:
            collection.add(
                annotation_definition=dl.Classification(label=labelled.label),
                model_info={"name": model_name, "model_id": model_id, "confidence": labelled.confidence},
                metadata={"user": {"movinet": {"level": level}}},
                frame_num=labelled.first_frame,
                # Video annotations are tracked objects: each needs its own numeric id.
                object_id=str(len(collection.annotations) + 1),
            )
            # Set the end frame directly: add(end_frame_num=...) writes a snapshot per frame.
            collection.annotations[-1].end_frame = labelled.last_frame
    return collection
