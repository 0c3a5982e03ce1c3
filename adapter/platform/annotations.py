"""Probabilities -> Dataloop class annotations on a video item.

Video-level: the top_k classes, ordered by confidence, each spanning the whole video (multi-label
weights: every class over its threshold, at most top_k; none below min_confidence).
Temporal (optional): each clip's or window's top-1 class over its own frame range,
ranges stretched to tile the video and adjacent ranges with the same label merged
(runtime.results). Frame numbers are the item's own (source frames, 0-based).
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Sequence

import dtlpy as dl

from adapter.runtime.results import Scoring, VideoPrediction, temporal_ranges
from adapter.runtime.segments import SegmentOptions, clean_temporal_ranges
from adapter.video.clips import LabelledRange

logger = logging.getLogger(__name__)


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
    scoring: Scoring | None = None,
) -> dl.AnnotationCollection:
    """The video's class annotations: top_k over the whole video, and the temporal ones when asked.

    Args:
        prediction: the classifier's VideoPrediction.
        labels: the model's labels by class index.
        item: the item the annotations belong to.
        num_frames: the item's frames (its last frame is num_frames - 1).
        top_k: video-level annotations (at most; scoring may name fewer).
        temporal: also annotate segments.
        model_name, model_id: recorded in each annotation's model_info.
        segment_options: smoothing, minimum length and confidence floor of the temporal
            annotations (runtime.segments); None or all off: each clip's top-1, equal neighbours merged.
        source_fps: the item's frame rate (turns the options' seconds into frames).
        scoring: which classes the probabilities name (multi-label thresholds, min_confidence);
            None: plain top-k.
    Returns:
        The dl.AnnotationCollection.
    """
    scoring = scoring or Scoring()
    collection = dl.AnnotationCollection(item=item)
    last_frame = num_frames - 1
    video_level = [
        LabelledRange(label, 0, last_frame, confidence)
        for label, confidence in scoring.video_labels(prediction.probabilities, labels, top_k)
    ]
    if not temporal:
        temporal_level = []
    elif segment_options is not None and segment_options.active:
        temporal_level = clean_temporal_ranges(prediction.segments, labels, last_frame, source_fps, segment_options)
    else:
        temporal_level = temporal_ranges(prediction.segments, labels, last_frame)
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


# ---------------------------------------------------------------------------------------------
# Replacing a model's earlier annotations without touching a person's work.
#
# Before uploading, dtlpy deletes every annotation of the item carrying the model's name in
# metadata.user.model or metadata.system.model, including predictions a person has since
# corrected. Here only the annotations this model (its id) uploaded under that name and nobody
# changed afterwards are replaced. The SDK's pool threads run the upload, so what a call
# decided (a failed video, the evaluation's name) travels on the predictions themselves.

_FAILED_VIDEO = "_movinet_failed_video"
_PREDICTION_NAME = "_movinet_prediction_name"
# An annotation whose updatedAt is later than its createdAt by more than this was changed after
# the upload that created it (the upload itself sets both at once).
EDIT_TOLERANCE_S = 5.0


def evaluation_name(model_name: str) -> str:
    """The name evaluate_model's predictions carry, apart from the model's own predictions.

    dtlpymetrics scores, as the model's predictions, the annotations whose
    metadata.user.model.name is the name it is given; the model's own predictions (its
    configured top_k and temporal ranges) carry the model's name and are left alone.
    """
    return f"{model_name}-evaluation"


def failed_video_predictions(item: dl.Item) -> dl.AnnotationCollection:
    """An empty collection for a video that failed: its upload keeps the item's earlier annotations."""
    collection = dl.AnnotationCollection(item=item)
    setattr(collection, _FAILED_VIDEO, True)
    return collection


def is_failed_video(predictions) -> bool:
    return bool(getattr(predictions, _FAILED_VIDEO, False))


def name_predictions(predictions: dl.AnnotationCollection, name: str) -> dl.AnnotationCollection:
    """Mark the collection to carry name as its model name (the SDK stamps the model's name first)."""
    setattr(predictions, _PREDICTION_NAME, name)
    return predictions


def prediction_name(predictions, default: str) -> str:
    return getattr(predictions, _PREDICTION_NAME, None) or default


def stamp_prediction_name(predictions) -> None:
    """Write a named collection's name over the model name the SDK's stamp put in each annotation."""
    name = getattr(predictions, _PREDICTION_NAME, None)
    if name is None:
        return
    for annotation in predictions:
        for scope in ("user", "system"):
            model_info = annotation.metadata.get(scope, {}).get("model")
            if model_info is not None:
                model_info["name"] = name


def _timestamp(value) -> datetime.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        stamp = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=datetime.UTC)


def changed_after_upload(annotation: dict) -> bool:
    """Whether someone changed the annotation after it was created (platform JSON).

    A person's edit in the studio makes updatedBy their email (the creator of a model's
    prediction is the service's bot) and moves updatedAt.
    """
    creator, updated_by = annotation.get("creator"), annotation.get("updatedBy")
    if creator and updated_by and updated_by != creator:
        return True
    created, updated = _timestamp(annotation.get("createdAt")), _timestamp(annotation.get("updatedAt"))
    return created is not None and updated is not None and (updated - created).total_seconds() > EDIT_TOLERANCE_S


def replaceable(annotation: dict, name: str, model_id: str) -> bool:
    """Whether a re-prediction may delete this annotation (platform JSON).

    Only one this model uploaded under this name (the SDK stamps metadata.system.model with
    both) that nobody changed since; a person's own annotation carries no model, and an
    edited prediction is theirs now.
    """
    model_info = (annotation.get("metadata") or {}).get("system", {}).get("model") or {}
    return (
        model_info.get("model_id") == model_id
        and model_info.get("name") == name
        and not changed_after_upload(annotation)
    )


def changed_prediction(annotation: dict, name: str) -> bool:
    """Whether the annotation (platform JSON) carries name as its model and was changed after its upload."""
    model_info = (annotation.get("metadata") or {}).get("user", {}).get("model") or {}
    return model_info.get("name") == name and changed_after_upload(annotation)


def replace_model_annotations(item: dl.Item, predictions, *, name: str, model_id: str):
    """Delete the item's replaceable annotations of this model and name, then upload predictions.

    Args:
        item: the platform item.
        predictions: the new annotations (a dl.AnnotationCollection).
        name: the model name the predictions carry (the model's, or evaluation_name()).
        model_id: the model's id.

    Returns:
        What item.annotations.upload returns.
    """
    query = dl.Filters(resource=dl.FiltersResource.ANNOTATION)
    query.add(field="metadata.user.model.name", values=name, method=dl.FiltersMethod.OR)
    query.add(field="metadata.system.model.name", values=name, method=dl.FiltersMethod.OR)
    earlier = [annotation.to_json() for annotation in item.annotations.list(filters=query)]
    stale = [annotation["id"] for annotation in earlier if replaceable(annotation, name, model_id)]
    if len(stale) < len(earlier):
        logger.info(
            "Kept %d annotation(s) named %r on item %r (id %s): changed by a person or not this model's (id %s)",
            len(earlier) - len(stale),
            name,
            item.name,
            item.id,
            model_id,
        )
    if stale:
        by_id = dl.Filters(
            resource=dl.FiltersResource.ANNOTATION, field="id", values=stale, operator=dl.FiltersOperations.IN
        )
        by_id.pop(field="type")  # the ids alone decide
        item.annotations.delete(filters=by_id)
    return item.annotations.upload(annotations=predictions)
