"""evaluate_model's temporal segment metrics: the run's downloaded item JSONs -> segment_metrics.

dtlpymetrics scores whole-video class annotations only. When evaluation uploads temporal
annotations (evaluate_temporal_annotations), the items' annotations it downloads hold both
the ground truth (class annotations with a frame range, made by people) and this model's
segment annotations; they are scored here as `movinet evaluate` scores them.
"""

from __future__ import annotations

import json
import logging
import os

from adapter.evaluation.segment_metrics import SegmentScore, score_segments, summarize_segments

logger = logging.getLogger(__name__)


def _model_name(annotation: dict) -> str | None:
    metadata = annotation.get("metadata") or {}
    for scope in ("user", "system"):
        name = ((metadata.get(scope) or {}).get("model") or {}).get("name")
        if name:
            return name
    return None


def _frames(annotation: dict) -> tuple[object, object]:
    system = (annotation.get("metadata") or {}).get("system") or {}
    return system.get("frame"), system.get("endFrame")


def _item_jsons(folder: str):
    for directory, _, files in os.walk(folder):
        for name in sorted(files):
            if not name.endswith(".json"):
                continue
            try:
                with open(os.path.join(directory, name)) as file:
                    content = json.load(file)
            except (OSError, ValueError) as err:
                logger.warning("Skipped %s in the evaluation's annotations: %s", name, err)
                continue
            for item in content if isinstance(content, list) else [content]:
                if isinstance(item, dict) and isinstance(item.get("annotations"), list):
                    yield item


def item_segment_score(item: dict, model_name: str) -> SegmentScore | None:
    """One item's segment score from its annotations JSON; None when it has no ground-truth range or no segment.

    Args:
        item: an item JSON with its annotations (as the platform exports it).
        model_name: the evaluated model's name (its annotations carry it).
    Returns:
        The SegmentScore, or None.
    """
    truth, predicted = [], []
    for annotation in item["annotations"]:
        if annotation.get("type") != "class":
            continue
        first, last = _frames(annotation)
        if _model_name(annotation) == model_name:
            level = (((annotation.get("metadata") or {}).get("user") or {}).get("movinet") or {}).get("level")
            if level == "segment":
                predicted.append((annotation.get("label"), first, last))
        elif _model_name(annotation) is None:
            truth.append((annotation.get("label"), first, last))
    if not truth or not predicted:
        return None
    # The segments tile the video: the last one ends on its last frame.
    ends = [last for _, _, last in predicted + truth if isinstance(last, (int, float))]
    num_frames = int(max(ends)) + 1 if ends else 1
    return score_segments(item.get("filename") or item.get("name") or "?", predicted, truth, num_frames)


def segment_summary(folder: str, model_name: str) -> dict | None:
    """The segment metrics of every downloaded item with ground truth and this model's segments.

    Args:
        folder: where the evaluation's item annotations were downloaded.
        model_name: the evaluated model's name.
    Returns:
        summarize_segments' dict, or None when no item could be scored.
    """
    scores = [score for item in _item_jsons(folder) if (score := item_segment_score(item, model_name)) is not None]
    return summarize_segments(scores) if scores else None
