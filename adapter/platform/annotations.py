"""Probabilities -> Dataloop class annotations on a video item.

Video-level: the top_k classes, ordered by confidence, each spanning the whole video.
Temporal (optional): each clip's or window's top-1 class over its own frame range,
ranges stretched to tile the video and adjacent ranges with the same label merged
(runtime.results). Frame numbers are the item's own (source frames, 0-based).
"""

from __future__ import annotations

from collections.abc import Sequence

import dtlpy as dl

from adapter.runtime.results import VideoPrediction, temporal_ranges, top_k_labels
from adapter.video.clips import LabelledRange


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
