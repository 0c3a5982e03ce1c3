"""`movinet evaluate`: predict each video of a subset with the adapter and score it (evaluation.metrics).

Predictions are the video-level class annotations MovinetAdapter.predict makes (the first
is the top-1) and, for the top-5, the probabilities they come from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from adapter.evaluation.metrics import TOP_K, VideoScore, ground_truth
from adapter.evaluation.segment_metrics import SegmentScore, score_segments
from adapter.evaluation.subset import MISSING_VIDEO, EvaluationItem
from adapter.runtime.results import top_k_labels
from adapter.video.inputs import VideoInput


def predict_items(
    adapter,
    items: Sequence[EvaluationItem],
    progress: Callable[[Iterable], Iterable] = iter,
    segment_scores: list[SegmentScore] | None = None,
) -> tuple[list[VideoScore], list[tuple[str, str]]]:
    """Run the adapter's predict on each item and score it; a failing video is recorded, the others go on.

    Args:
        adapter: a loaded MovinetAdapter.
        items: what evaluation_items returned.
        progress: wraps the items' iteration (e.g. tqdm).
        segment_scores: when given, each video's temporal annotations (the adapter's
            temporal_annotations must be on) are scored against its labelled ranges into it.

    Returns:
        (the scores of the videos predicted, [(item name, reason)] of those that failed).
    """
    seen: dict = {}
    previous_callback = adapter.on_video_predicted
    adapter.on_video_predicted = lambda video, prediction, reader: seen.update(prediction=prediction, reader=reader)
    scores, failed = [], []
    try:
        for item in progress(items):
            if item.video_path is None:
                failed.append((item.name, MISSING_VIDEO))
                continue
            seen.clear()
            adapter.failures = []
            (collection,) = adapter.predict([VideoInput(name=item.name, path=item.video_path)])
            if adapter.failures:
                failed.extend(adapter.failures)
                continue
            annotations = collection.to_json()["annotations"]
            video_level = [a for a in annotations if a["metadata"]["user"]["movinet"]["level"] == "video"]
            top5 = top_k_labels(seen["prediction"].probabilities, adapter.loaded.labels, TOP_K)
            truth = ground_truth(item.class_ranges, seen["reader"].num_frames)
            scores.append(VideoScore(item.name, truth, video_level[0]["label"], top5))
            if segment_scores is not None:
                predicted = [
                    (a.label, a.start_frame, a.end_frame)
                    for a in collection.annotations
                    if a.metadata["user"]["movinet"]["level"] == "segment"
                ]
                num_frames = seen["reader"].num_frames
                segment_scores.append(score_segments(item.name, predicted, item.class_ranges, num_frames))
    finally:
        adapter.on_video_predicted = previous_callback
        adapter.failures = []
    return scores, failed
