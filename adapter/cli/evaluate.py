"""`movinet evaluate`: predict each video of a subset with the adapter and score it (evaluation.metrics).

Predictions are the video-level class annotations MovinetAdapter.predict makes (the first
is the top-1) and, for the top-5, the probabilities they come from.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterable, Sequence

from adapter.core.errors import InputError, failure_reason
from adapter.evaluation.metrics import TOP_K, VideoScore, ground_truth
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
        # The top-1 is the first video-level annotation predict() makes: the same ordering.
        top5 = top_k_labels(prediction.probabilities, adapter.loaded.labels, TOP_K)
        truth = ground_truth(item.class_ranges, reader.num_frames)
        scores.append(VideoScore(item.name, truth, top5[0][0], top5))
        if segment_scores is not None:
            predicted = [
                (labelled.label, labelled.first_frame, labelled.last_frame)
                for labelled in clean_temporal_ranges(
                    prediction.segments,
                    adapter.loaded.labels,
                    reader.num_frames - 1,
                    float(reader.source_fps or 0),
                    SegmentOptions.from_config(adapter.config),
                )
            ]
            segment_scores.append(score_segments(item.name, predicted, item.class_ranges, reader.num_frames))
    return scores, failed
