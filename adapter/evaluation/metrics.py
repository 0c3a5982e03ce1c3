"""Scores of an evaluation: ground truth, top-1/top-5 accuracy, the confusion matrix, per-class metrics.

Ground truth of a video: the labels of its class annotations that span the whole video (no
frame range, or one from frame 0 to its last frame), which is what the platform scores; a
video with none of those (only labelled ranges) has the labels of all its ranges, in the
order they start. A video's top-1 is right when it is one of its ground-truth labels; its
top-5 is right when one of the five most probable classes is. Ground-truth labels that are
not in the model's label map can never be predicted: they are reported and counted wrong.

Confusion matrix (the one training uses too): rows are ground truth, columns the top-1
prediction; a video counts in the row of its top-1 when that is one of its labels, else in
the row of its first label. Classes are those that occur (as ground truth or top-1), in the
model's label order, then the unknown ground-truth labels. Per-class precision and recall are
read off the matrix.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Sequence

import numpy as np

TOP_K = 5
# The top-1 of a video that got no class annotation (min_confidence, or no class over its threshold).
NO_CLASS = "(no class)"


@dataclasses.dataclass
class VideoScore:
    """One evaluated video: its ground truth and what the model predicted."""

    item: str
    truth: list[str]  # ground-truth labels, at least one
    top1: str  # NO_CLASS when the video got no class annotation
    top5: list[tuple[str, float]]  # (label, probability), most probable first
    # The video's reported (calibrated) probabilities, for calibration and multi-label scores.
    probabilities: np.ndarray | None = dataclasses.field(default=None, repr=False)
    # Every class annotation it got (multi-label: all classes over their thresholds).
    predicted: list[str] | None = None

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


def confusion_matrix(true_indices, predicted_indices, num_classes: int) -> np.ndarray:
    """Count (true, predicted) class pairs: the one confusion matrix of training and evaluation.

    Args:
        true_indices: each sample's true class index.
        predicted_indices: each sample's predicted (top-1) class index.
        num_classes: the number of classes (rows and columns).

    Returns:
        A num_classes x num_classes int array: row = true class, column = predicted class.
    """
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(true_indices, dtype=np.int64), np.asarray(predicted_indices, dtype=np.int64)), 1)
    return matrix


def video_confusion_matrix(scores: Sequence[VideoScore], classes: Sequence[str]) -> np.ndarray:
    """Counts of videos by (ground truth row, top-1 column).

    Args:
        scores: the evaluated videos.
        classes: every class that occurs (evaluation_classes).

    Returns:
        A len(classes) x len(classes) int array summing to len(scores).
    """
    index = {label: i for i, label in enumerate(classes)}
    rows = [index[score.matrix_row] for score in scores]
    columns = [index[score.top1] for score in scores]
    return confusion_matrix(rows, columns, len(classes))


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


def summarize(scores: Sequence[VideoScore], model_labels: Sequence[str], scoring=None) -> dict:
    """All the metrics of an evaluation, ready for JSON.

    Args:
        scores: the evaluated videos.
        model_labels: the model's label map.
        scoring: the model's runtime.results.Scoring (temperature, multi-label thresholds,
            min_confidence); None: plain softmax.

    Returns:
        videos, top1_accuracy, top5_accuracy (None without videos), classes, confusion_matrix,
        per_class, unknown_labels (label -> items whose ground truth has it), no_class_videos
        (videos left without a class annotation), predictions, and with probabilities:
        calibration (ECE before/after, 15 bins) and, multi-label, multi_label (mAP, AP, F1).
    """
    classes = evaluation_classes(scores, model_labels)
    matrix = video_confusion_matrix(scores, classes)
    known = set(model_labels)
    unknown = collections.defaultdict(list)
    for score in scores:
        for label in score.truth:
            if label not in known:
                unknown[label].append(score.item)
    summary = {
        "videos": len(scores),
        "top1_accuracy": _ratio(sum(score.top1_correct for score in scores), len(scores)),
        "top5_accuracy": _ratio(sum(score.top5_correct for score in scores), len(scores)),
        "classes": classes,
        "confusion_matrix": matrix.tolist(),
        "per_class": per_class_metrics(matrix, classes),
        "unknown_labels": dict(sorted(unknown.items())),
        "no_class_videos": sum(score.top1 == NO_CLASS for score in scores),
        "predictions": [
            {
                "item": score.item,
                "truth": score.truth,
                "top1": score.top1,
                "top5": [{"label": label, "probability": p} for label, p in score.top5],
                "top1_correct": score.top1_correct,
                "top5_correct": score.top5_correct,
                **({"predicted": score.predicted} if score.predicted is not None else {}),
            }
            for score in scores
        ],
    }
    if scores and all(score.probabilities is not None for score in scores):
        from adapter.evaluation.calibration import video_calibration

        summary.update(video_calibration(scores, model_labels, scoring))
    return summary


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
    if summary.get("no_class_videos"):
        lines.append(
            f"{summary['no_class_videos']} video(s) got no class annotation (best probability under "
            f"min_confidence, or no class over its threshold): top-1 {NO_CLASS!r}, counted wrong"
        )
    calibration = summary.get("calibration")
    if calibration is not None:
        after = calibration["ece_after"]
        lines.append(
            f"expected calibration error ({calibration['bins']} bins): {format_ratio(calibration['ece_before'])} "
            + (
                f"before, {format_ratio(after)} after the temperature {calibration['temperature']:.4g}"
                if after is not None
                else "(no temperature: the model is not calibrated)"
            )
        )
    multi = summary.get("multi_label")
    if multi is not None:
        lines.append(
            f"multi-label: mAP {format_ratio(multi['map'])}, F1 at the thresholds {format_ratio(multi['f1_micro'])} "
            f"(micro) {format_ratio(multi['f1_macro'])} (macro)"
        )
        width = max([len("class"), *map(len, multi["per_class"])])
        lines.append(f"{'class':<{width}}      AP      F1  threshold  positives")
        for label, entry in multi["per_class"].items():
            lines.append(
                f"{label:<{width}}  {format_ratio(entry['ap']):>6}  {format_ratio(entry['f1']):>6}  "
                f"{entry['threshold']:>9.3f}  {entry['positives']:>9}"
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
