"""Offline evaluation: predict a subset in prepare_data's layout and score it against its class annotations.

Ground truth of a video: the labels of its class annotations that span the whole video (no
frame range, or one from frame 0 to its last frame), which is what the platform scores; a
video with none of those (only labelled ranges) has the labels of all its ranges, in the
order they start. A video's top-1 is right when it is one of its ground-truth labels; its
top-5 is right when one of the five most probable classes is. Ground-truth labels that are
not in the model's label map can never be predicted: they are reported and counted wrong.

Confusion matrix: rows are ground truth, columns the top-1 prediction; a video counts in
the row of its top-1 when that is one of its labels, else in the row of its first label.
Classes are those that occur (as ground truth or top-1), in the model's label order, then
the unknown ground-truth labels. Per-class precision and recall are read off the matrix.

Predictions are the video-level class annotations MovinetAdapter.predict makes (the first
is the top-1) and, for the top-5, the probabilities they come from.
"""

from __future__ import annotations

import collections
import dataclasses
import os
from typing import Callable, Iterable, Sequence

import numpy as np

from adapter.annotations import top_k_labels
from adapter.dataset import SKIP_BAD_JSON, SKIP_NO_CLASS_ANNOTATION, SKIP_NOT_A_VIDEO, DatasetError, annotated_items
from adapter.items import VideoInput
from adapter.video import is_video_mimetype

TOP_K = 5
MISSING_VIDEO = "its video is not in the subset's items/ folder"


@dataclasses.dataclass
class EvaluationItem:
    name: str  # the item's remote path
    video_path: str | None
    class_ranges: list[tuple[str, object, object]]  # (label, frame, endFrame) as annotated


@dataclasses.dataclass
class VideoScore:
    """One evaluated video: its ground truth and what the model predicted."""

    item: str
    truth: list[str]  # ground-truth labels, at least one
    top1: str
    top5: list[tuple[str, float]]  # (label, probability), most probable first

    @property
    def top1_correct(self) -> bool:
        return self.top1 in self.truth

    @property
    def top5_correct(self) -> bool:
        return any(label in self.truth for label, _ in self.top5)

    @property
    def matrix_row(self) -> str:
        """The ground-truth label the confusion matrix counts this video under."""
        return self.top1 if self.top1_correct else self.truth[0]


def evaluation_items(data_path: str | os.PathLike, subset: str) -> tuple[list[EvaluationItem], list[tuple[str, str]]]:
    """The subset's videos with class annotations, and the items left out with the reason.

    Args:
        data_path: the folder in prepare_data's layout (<data_path>/<subset>/items and json).
        subset: the subset to evaluate, e.g. "validation".

    Returns:
        (items to predict, [(item name, why it is left out)]).

    Raises:
        DatasetError: the subset has no json/ folder, or no item with a class annotation.
    """
    annotated, unreadable = annotated_items(data_path, subset)
    items, skipped = [], []
    for item in annotated:
        if item.mimetype is not None and not is_video_mimetype(item.mimetype):
            skipped.append((item.name, f"{SKIP_NOT_A_VIDEO} (mimetype {item.mimetype!r})"))
        elif not item.class_ranges:
            skipped.append((item.name, SKIP_NO_CLASS_ANNOTATION))
        else:
            items.append(EvaluationItem(item.name, item.video_path, item.class_ranges))
    if unreadable:
        skipped.append((f"{unreadable[SKIP_BAD_JSON]} JSON file(s) (named in the log)", SKIP_BAD_JSON))
    if not items:
        raise DatasetError(
            f"Subset {subset!r} of {data_path} has no video item with a class annotation to evaluate "
            f"({len(annotated)} item JSON(s) read)"
        )
    return items, skipped


def _frame(value) -> float | None:
    return None if isinstance(value, bool) or not isinstance(value, (int, float)) else float(value)


def ground_truth(class_ranges: Sequence[tuple[str, object, object]], num_frames: int) -> list[str]:
    """A video's ground-truth labels: its whole-video class annotations', else all its ranges' (module docstring).

    Args:
        class_ranges: (label, frame, endFrame) of each class annotation; None frames mean open ends.
        num_frames: the frames the video has (its last frame is num_frames - 1).

    Returns:
        The distinct labels, whole-video ones in annotation order, else range labels by first frame.
    """

    def whole(first, last) -> bool:
        starts = first is None or (_frame(first) is not None and _frame(first) <= 0)
        ends = last is None or (_frame(last) is not None and _frame(last) >= num_frames - 1)
        return starts and ends

    chosen = [label for label, first, last in class_ranges if whole(first, last)]
    if not chosen:
        ordered = sorted(class_ranges, key=lambda labelled: _frame(labelled[1]) or 0.0)
        chosen = [label for label, _, _ in ordered]
    return list(dict.fromkeys(chosen))


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
            top5 = top_k_labels(seen["prediction"].probabilities, adapter.loaded.labels, TOP_K)
            truth = ground_truth(item.class_ranges, seen["reader"].num_frames)
            scores.append(VideoScore(item.name, truth, video_level[0]["label"], top5))
    finally:
        adapter.on_video_predicted = previous_callback
        adapter.failures = []
    return scores, failed


def evaluation_classes(scores: Sequence[VideoScore], model_labels: Sequence[str]) -> list[str]:
    """The confusion matrix's classes: those that occur, in label-map order, then unknown ground-truth labels.

    Args:
        scores: the evaluated videos.
        model_labels: the model's label map.

    Returns:
        The class names, one per row and column.
    """
    used = {score.matrix_row for score in scores} | {score.top1 for score in scores}
    known = [label for label in model_labels if label in used]
    return known + sorted(used - set(known))


def confusion_matrix(scores: Sequence[VideoScore], classes: Sequence[str]) -> np.ndarray:
    """Counts of videos by (ground truth row, top-1 column).

    Args:
        scores: the evaluated videos.
        classes: every class that occurs (evaluation_classes).

    Returns:
        A len(classes) x len(classes) int array summing to len(scores).
    """
    index = {label: i for i, label in enumerate(classes)}
    matrix = np.zeros((len(classes), len(classes)), dtype=int)
    for score in scores:
        matrix[index[score.matrix_row], index[score.top1]] += 1
    return matrix


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def per_class_metrics(matrix: np.ndarray, classes: Sequence[str]) -> dict[str, dict]:
    """Precision and recall of each class from the confusion matrix (None where undefined: nothing to divide by).

    Args:
        matrix: confusion_matrix's counts.
        classes: the matrix's classes.

    Returns:
        class -> {"precision", "recall", "support" (ground-truth videos), "predicted" (top-1 videos)}.
    """
    metrics = {}
    for i, label in enumerate(classes):
        support, predicted, hits = int(matrix[i].sum()), int(matrix[:, i].sum()), int(matrix[i, i])
        metrics[label] = {
            "precision": _ratio(hits, predicted),
            "recall": _ratio(hits, support),
            "support": support,
            "predicted": predicted,
        }
    return metrics


def summarize(scores: Sequence[VideoScore], model_labels: Sequence[str]) -> dict:
    """All the metrics of an evaluation, ready for JSON.

    Args:
        scores: the evaluated videos.
        model_labels: the model's label map.

    Returns:
        videos, top1_accuracy, top5_accuracy (None without videos), classes, confusion_matrix,
        per_class, unknown_labels (label -> items whose ground truth has it) and predictions.
    """
    classes = evaluation_classes(scores, model_labels)
    matrix = confusion_matrix(scores, classes)
    known = set(model_labels)
    unknown = collections.defaultdict(list)
    for score in scores:
        for label in score.truth:
            if label not in known:
                unknown[label].append(score.item)
    return {
        "videos": len(scores),
        "top1_accuracy": _ratio(sum(score.top1_correct for score in scores), len(scores)),
        "top5_accuracy": _ratio(sum(score.top5_correct for score in scores), len(scores)),
        "classes": classes,
        "confusion_matrix": matrix.tolist(),
        "per_class": per_class_metrics(matrix, classes),
        "unknown_labels": dict(sorted(unknown.items())),
        "predictions": [
            {
                "item": score.item,
                "truth": score.truth,
                "top1": score.top1,
                "top5": [{"label": label, "probability": p} for label, p in score.top5],
                "top1_correct": score.top1_correct,
                "top5_correct": score.top5_correct,
            }
            for score in scores
        ],
    }


def format_ratio(value: float | None) -> str:
    """A ratio for printing: three decimals, or "n/a" when undefined.

    Args:
        value: the ratio, or None.

    Returns:
        The text.
    """
    return "n/a" if value is None else f"{value:.3f}"


def format_report(summary: dict) -> str:
    """The metrics as text: accuracies, unknown labels, per-class table and confusion matrix.

    Args:
        summary: what summarize returned.

    Returns:
        Lines for a terminal.
    """
    lines = [
        f"{summary['videos']} video(s): top-1 accuracy {format_ratio(summary['top1_accuracy'])}, "
        f"top-{TOP_K} accuracy {format_ratio(summary['top5_accuracy'])}"
    ]
    for label, items in summary["unknown_labels"].items():
        lines.append(
            f"ground-truth label {label!r} is not in the model's label map (counted wrong): {len(items)} video(s)"
        )
    width = max([len("class"), *map(len, summary["classes"])])
    lines.append(f"{'class':<{width}}  precision  recall  support  predicted")
    for label, metrics in summary["per_class"].items():
        lines.append(
            f"{label:<{width}}  {format_ratio(metrics['precision']):>9}  {format_ratio(metrics['recall']):>6}  "
            f"{metrics['support']:>7}  {metrics['predicted']:>9}"
        )
    lines.append("confusion matrix (rows: ground truth, columns: top-1 prediction, in the order above):")
    for label, row in zip(summary["classes"], summary["confusion_matrix"]):
        lines.append(f"{label:<{width}}  " + " ".join(f"{count:>4}" for count in row))
    return "\n".join(lines)


def plot_confusion_matrix(matrix: Sequence[Sequence[int]], classes: Sequence[str], path: str, title: str = "") -> str:
    """Draw the confusion matrix as a PNG: counts as colour, and as numbers while the classes are few.

    Args:
        matrix: counts, rows ground truth, columns top-1 prediction.
        classes: the class of each row and column.
        path: the PNG to write.
        title: the picture's title.

    Returns:
        path.
    """
    # The object API, not pyplot: no global figure state, no display backend needed.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    counts = np.asarray(matrix, dtype=int).reshape(len(classes), len(classes))
    side = min(4 + 0.45 * len(classes), 40)
    figure = Figure(figsize=(side + 1, side), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    image = axes.imshow(counts, cmap="Blues", vmin=0)
    colorbar = figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="videos")
    colorbar.locator = MaxNLocator(integer=True)
    colorbar.update_ticks()
    positions = range(len(classes))
    axes.set_xticks(positions, labels=classes, rotation=90)
    axes.set_yticks(positions, labels=classes)
    axes.set_xlabel("top-1 prediction")
    axes.set_ylabel("ground truth")
    if len(classes) <= 40:
        threshold = counts.max() / 2 if counts.size else 0
        for (row, column), count in np.ndenumerate(counts):
            color = "white" if count > threshold else "black"
            axes.text(column, row, str(count), ha="center", va="center", color=color, fontsize=8)
    axes.set_title(title)
    figure.tight_layout()
    figure.savefig(path)
    return path
