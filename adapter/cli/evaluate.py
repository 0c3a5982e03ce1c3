"""`movinet evaluate`: predict each video of a subset with the adapter and score it (evaluation.metrics).

Predictions are the video-level labels MovinetAdapter.predict annotates (the classifier's
Scoring over its probabilities; the first is the top-1; none: metrics.NO_CLASS) and, for the
top-5, calibration and multi-label scores, the (calibrated) probabilities they come from.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterable, Sequence

from adapter.core.errors import InputError, failure_reason
from adapter.evaluation.metrics import NO_CLASS, TOP_K, VideoScore, ground_truth
from adapter.evaluation.segment_metrics import SegmentScore, score_segments
from adapter.evaluation.subset import MISSING_VIDEO, EvaluationItem
from adapter.runtime.results import top_k_labels
from adapter.runtime.segments import SegmentOptions, clean_temporal_ranges
from adapter.video.inputs import VideoInput

logger = logging.getLogger(__name__)


def predict_items(
    adapter,
    items: Sequence[EvaluationItem],
    progress: Callable[[Iterable], Iterable] = iter,
    segment_scores: list[SegmentScore] | None = None,
) -> tuple[list[VideoScore], list[tuple[str, str]]]:
    """Classify each item with the adapter and score it; a failing video is recorded, the others go on.

    Args:
        adapter: a loaded MovinetAdapter.
        items: what evaluation_items returned.
        progress: wraps the items' iteration (e.g. tqdm).
        segment_scores: when given, each video's temporal annotations (the adapter's
            temporal_annotations must be on) are scored against its labelled ranges into it.

    Returns:
        (the scores of the videos predicted, [(item name, reason)] of those that failed).
    """
    scores, failed = [], []
    labels = adapter.loaded.labels
    label_index = {label: index for index, label in enumerate(labels)}
    for item in progress(items):
        if item.video_path is None:
            failed.append((item.name, MISSING_VIDEO))
            continue
        try:
            prediction, reader = adapter.classify_video(VideoInput(name=item.name, path=item.video_path))
        except Exception as err:  # one video's failure is reported; the others are still scored
            if not isinstance(err, InputError):
                logger.error("Evaluation failed for %s:\n%s", item.name, traceback.format_exc())
            failed.append((item.name, failure_reason(err)))
            continue
        scoring = adapter.classifier.scoring  # built by classify_video
        probabilities = prediction.probabilities
        top5 = top_k_labels(probabilities, labels, TOP_K)
        truth = ground_truth(item.class_ranges, reader.num_frames)
        # The video-level labels predict() annotates (build_annotations): the same scoring and top_k.
        predicted = [label for label, _ in scoring.video_labels(probabilities, labels, adapter.config.top_k)]
        top1 = predicted[0] if predicted else NO_CLASS  # min_confidence or no class over its threshold
        scores.append(VideoScore(item.name, truth, top1, top5, probabilities=probabilities, predicted=predicted))
        if segment_scores is not None:
            spans = [
                (labelled.label, labelled.first_frame, labelled.last_frame)
                for labelled in clean_temporal_ranges(
                    prediction.segments,
                    labels,
                    reader.num_frames - 1,
                    float(reader.source_fps or 0),
                    SegmentOptions.from_config(adapter.config),
                )
                # As predict(): a span below min_confidence (multi-label: its threshold) is unlabelled.
                if scoring.names(label_index[labelled.label], labelled.confidence)
            ]
            segment_scores.append(score_segments(item.name, spans, item.class_ranges, reader.num_frames))
    return scores, failed
