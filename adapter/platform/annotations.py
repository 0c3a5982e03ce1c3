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
from adapter.runtime.segments import SegmentOptions, clean_temporal_ranges
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
    segment_options: SegmentOptions | None = None,
    source_fps: float = 0.0,
) -> dl.AnnotationCollection:
    """The video's class annotations: top_k over the whole video, and the temporal ones when asked.

    Args:
        prediction: the classifier's VideoPrediction.
        labels: the model's labels by class index.
        item: the item the annotations belong to.
        num_frames: the item's frames (its last frame is num_frames - 1).
        top_k: video-level annotations.
        temporal: also annotate segments.
        model_name, model_id: recorded in each annotation's model_info.
        segment_options: smoothing, minimum length and confidence floor of the temporal
            annotations (runtime.segments); None or all off: each clip's top-1, equal neighbours merged.
        source_fps: the item's frame rate (turns the options' seconds into frames).
    Returns:
        The dl.AnnotationCollection.
    """
    collection = dl.AnnotationCollection(item=item)
    last_frame = num_frames - 1
    video_level = [
        LabelledRange(label, 0, last_frame, confidence)
        for label, confidence in top_k_labels(prediction.probabilities, labels, top_k)
    ]
    if not temporal:
        temporal_level = []
    elif segment_options is not None and segment_options.active:
        temporal_level = clean_temporal_ranges(prediction.segments, labels, last_frame, source_fps, segment_options)
    else:
        temporal_level = temporal_ranges(prediction.segments, labels, last_frame)
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
