"""Probabilities -> Dataloop class annotations on a video item.

Video-level: the top_k classes, ordered by confidence, each spanning the whole video (multi-label
weights: every class over its threshold, at most top_k; none below min_confidence).
Temporal (optional): each clip's or window's top-1 class over its own frame range,
ranges stretched to tile the video and adjacent ranges with the same label merged
(runtime.results). Frame numbers are the item's own (source frames, 0-based).
"""

from __future__ import annotations

from collections.abc import Sequence

import dtlpy as dl

from adapter.runtime.results import Scoring, VideoPrediction, temporal_ranges
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
    scoring: Scoring | None = None,
) -> dl.AnnotationCollection:
    """scoring: which classes the probabilities name (thresholds, min_confidence); None: plain top-k."""
    scoring = scoring or Scoring()
    collection = dl.AnnotationCollection(item=item)
    last_frame = num_frames - 1
    video_level = [
        LabelledRange(label, 0, last_frame, confidence)
        for label, confidence in scoring.video_labels(prediction.probabilities, labels, top_k)
    ]
    temporal_level = temporal_ranges(prediction.segments, labels, last_frame) if temporal else []
    # A span below min_confidence (or, multi-label, its class's threshold) is left without a label.
    label_index = {label: index for index, label in enumerate(labels)}
    temporal_level = [r for r in temporal_level if scoring.names(label_index[r.label], r.confidence)]
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
