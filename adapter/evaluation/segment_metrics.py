"""Temporal segment metrics: predicted temporal annotations against ground-truth labelled ranges.

As in the temporal action segmentation literature (Lea et al., 2017):

- frame accuracy: of the frames that carry a ground-truth label, the share whose predicted
  label is the same (a frame no predicted segment covers counts wrong);
- segment F1 at IoU 0.5: each predicted segment, in time order, is a true positive when its
  best-overlapping ground-truth segment of the same label reaches IoU >= 0.5 and was not matched
  before, else a false positive; unmatched ground-truth segments are false negatives. Counted
  per class and over all classes (summed over videos, then F1 = 2TP / (2TP + FP + FN));
- edit score: 1 - the Levenshtein distance between the predicted and the true sequence of
  segment labels over the longer one's length (order errors and over-segmentation), mean over videos.

A video's segments are its frames' labels with equal neighbours merged; where ground-truth
ranges overlap, the one that starts later labels the shared frames.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from adapter.evaluation.metrics import format_ratio

IOU_THRESHOLD = 0.5


def _frame(value, default: int) -> int:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    return int(value)


def frame_labels(ranges: Sequence[tuple[str, object, object]], num_frames: int) -> list[str | None]:
    """Each frame's label from (label, first frame, last frame) ranges (None ends: the video's ends).

    Args:
        ranges: labelled ranges, inclusive; out-of-video frames are clipped.
        num_frames: the video's frames.
    Returns:
        num_frames labels, None where no range covers the frame.
    """
    labels: list[str | None] = [None] * num_frames
    for label, first, last in sorted(ranges, key=lambda r: _frame(r[1], 0)):
        start = max(0, _frame(first, 0))
        end = min(num_frames - 1, _frame(last, num_frames - 1))
        for index in range(start, end + 1):
            labels[index] = label
    return labels


def segments_of(labels: Sequence[str | None]) -> list[tuple[str, int, int]]:
    """(label, first, last) runs of equal frame labels; unlabelled frames make none."""
    runs: list[tuple[str, int, int]] = []
    for index, label in enumerate(labels):
        if runs and runs[-1][0] == label and runs[-1][2] == index - 1:
            runs[-1] = (label, runs[-1][1], index)
        elif label is not None:
            runs.append((label, index, index))
    return runs


def _edit_distance(a: Sequence[str], b: Sequence[str]) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (x != y))
    return row[-1]


@dataclasses.dataclass
class SegmentScore:
    """One video's segment counts."""

    item: str
    labelled_frames: int  # frames with a ground-truth label
    correct_frames: int
    edit: float  # in [0, 1]
    counts: dict[str, list[int]]  # label -> [TP, FP, FN]


def score_segments(
    item: str,
    predicted: Sequence[tuple[str, object, object]],
    truth: Sequence[tuple[str, object, object]],
    num_frames: int,
) -> SegmentScore:
    """Frame accuracy, segment matches at IoU 0.5 and the edit score of one video.

    Args:
        item: the video's name.
        predicted: the predicted temporal ranges (label, first frame, last frame).
        truth: the ground-truth ranges, as annotated.
        num_frames: the video's frames.
    Returns:
        The SegmentScore.
    """
    predicted_frames = frame_labels(predicted, num_frames)
    true_frames = frame_labels(truth, num_frames)
    labelled = [i for i, label in enumerate(true_frames) if label is not None]
    correct = sum(predicted_frames[i] == true_frames[i] for i in labelled)
    predicted_segments, true_segments = segments_of(predicted_frames), segments_of(true_frames)
    counts: dict[str, list[int]] = {}
    matched = [False] * len(true_segments)
    for label, first, last in predicted_segments:
        best, best_iou = None, 0.0
        for k, (true_label, true_first, true_last) in enumerate(true_segments):
            if true_label != label:
                continue
            overlap = min(last, true_last) - max(first, true_first) + 1
            if overlap <= 0:
                continue
            iou = overlap / (max(last, true_last) - min(first, true_first) + 1)
            if iou > best_iou:
                best, best_iou = k, iou
        entry = counts.setdefault(label, [0, 0, 0])
        if best is not None and best_iou >= IOU_THRESHOLD and not matched[best]:
            matched[best] = True
            entry[0] += 1
        else:
            entry[1] += 1
    for (label, _, _), hit in zip(true_segments, matched):
        if not hit:
            counts.setdefault(label, [0, 0, 0])[2] += 1
    a, b = [s[0] for s in predicted_segments], [s[0] for s in true_segments]
    edit = 1.0 - _edit_distance(a, b) / max(len(a), len(b)) if (a or b) else 1.0
    return SegmentScore(item, len(labelled), correct, edit, counts)


def _f1(tp: int, fp: int, fn: int) -> float | None:
    return 2 * tp / (2 * tp + fp + fn) if (tp + fp + fn) else None


def summarize_segments(scores: Sequence[SegmentScore]) -> dict:
    """The segment metrics over videos, ready for JSON.

    Args:
        scores: score_segments of each video.
    Returns:
        videos, frame_accuracy, f1_at_50 (over all classes), edit (mean, 0..1), and per_class:
        label -> {"f1_at_50", "tp", "fp", "fn"}; ratios are None when undefined.
    """
    totals: dict[str, np.ndarray] = {}
    for score in scores:
        for label, entry in score.counts.items():
            totals[label] = totals.get(label, np.zeros(3, np.int64)) + np.asarray(entry)
    overall = sum(totals.values(), np.zeros(3, np.int64))
    labelled = sum(s.labelled_frames for s in scores)
    return {
        "videos": len(scores),
        "frame_accuracy": sum(s.correct_frames for s in scores) / labelled if labelled else None,
        "f1_at_50": _f1(*map(int, overall)),
        "edit": float(np.mean([s.edit for s in scores])) if scores else None,
        "per_class": {
            label: {"f1_at_50": _f1(*map(int, t)), "tp": int(t[0]), "fp": int(t[1]), "fn": int(t[2])}
            for label, t in sorted(totals.items())
        },
    }


def format_segment_report(summary: dict) -> str:
    """The segment metrics as text lines.

    Args:
        summary: what summarize_segments returned.
    Returns:
        The lines, joined.
    """

    lines = [
        f"temporal segments of {summary['videos']} video(s): frame accuracy {format_ratio(summary['frame_accuracy'])}, "
        f"segment F1@0.5 {format_ratio(summary['f1_at_50'])}, edit {format_ratio(summary['edit'])}"
    ]
    width = max([len("class"), *map(len, summary["per_class"])])
    lines.append(f"{'class':<{width}}  F1@0.5   TP   FP   FN")
    for label, entry in summary["per_class"].items():
        lines.append(
            f"{label:<{width}}  {format_ratio(entry['f1_at_50']):>6} {entry['tp']:>4} {entry['fp']:>4} {entry['fn']:>4}"
        )
    return "\n".join(lines)
