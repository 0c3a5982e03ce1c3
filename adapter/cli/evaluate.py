"""`movinet evaluate`: predict each video of a subset with the adapter and score it (evaluation.metrics).

Predictions are the video-level class annotations MovinetAdapter.predict makes (the first
is the top-1; none: metrics.NO_CLASS) and, for the top-5, calibration and multi-label scores,
the (calibrated) probabilities they come from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from adapter.evaluation.metrics import NO_CLASS, TOP_K, VideoScore, ground_truth
from adapter.evaluation.subset import MISSING_VIDEO, EvaluationItem
from adapter.runtime.results import top_k_labels
from adapter.video.inputs import VideoInput


def predict_items(
    adapter, items: Sequence[EvaluationItem], progress: Callable[[Iterable], Iterable] = iter
) -> tuple[list[VideoScore], list[tuple[str, str]]]:
    """Run the adapter's predict on each item and score it; a failing video is recorded, the others go on.

    Args:
        adapter: a loaded MovinetAdapter.
        items: what evaluation_items returned.
        progress: wraps the items' iteration (e.g. tqdm).

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
            probabilities = seen["prediction"].probabilities
            top5 = top_k_labels(probabilities, adapter.loaded.labels, TOP_K)
            truth = ground_truth(item.class_ranges, seen["reader"].num_frames)
            predicted = [a["label"] for a in video_level]
            top1 = predicted[0] if predicted else NO_CLASS  # min_confidence or no class over its threshold
            scores.append(VideoScore(item.name, truth, top1, top5, probabilities=probabilities, predicted=predicted))
    finally:
        adapter.on_video_predicted = previous_callback
        adapter.failures = []
    return scores, failed
