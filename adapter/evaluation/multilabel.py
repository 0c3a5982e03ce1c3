"""Multi-label scores: average precision per class, mAP, per-class F1-best thresholds, F1 at thresholds.

Average precision (AP) of a class: the mean, over its positive samples, of the precision among
the samples ranked at or above each of them (by the class's probability); a class without
positives has no AP (None) and is left out of the mean (mAP). Thresholds are chosen on the
validation subset at the end of training: per class, the cut between consecutive distinct
probabilities that maximises F1, placed halfway between them; a class with fewer than
MIN_POSITIVES positive validation clips gets FLOOR_THRESHOLD instead, as an F1-best cut over one
or two positives says little about the next videos.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MIN_POSITIVES = 3
FLOOR_THRESHOLD = 0.5


def average_precision(scores: Sequence[float], positives: Sequence[bool]) -> float | None:
    """AP of one class (see the module docstring); ties in score count as ranked together.

    Args:
        scores: the class's probability for each sample.
        positives: whether each sample has the class.

    Returns:
        The AP in [0, 1], or None when there is no positive.
    """
    scores = np.asarray(scores, np.float64)
    positives = np.asarray(positives, bool)
    if not positives.any():
        return None
    precisions = []
    for score in scores[positives]:
        ranked = scores >= score
        precisions.append(positives[ranked].sum() / ranked.sum())
    return float(np.mean(precisions))


def per_class_average_precision(probabilities: np.ndarray, targets: np.ndarray) -> list[float | None]:
    """AP of every class.

    Args:
        probabilities: (samples, classes).
        targets: multi-hot (samples, classes).

    Returns:
        One AP (or None: no positive) per class.
    """
    probabilities, targets = np.asarray(probabilities), np.asarray(targets) > 0.5
    return [average_precision(probabilities[:, c], targets[:, c]) for c in range(probabilities.shape[1])]


def mean_average_precision(aps: Sequence[float | None]) -> float | None:
    """The mean of the defined APs (None when no class has a positive).

    Args:
        aps: per_class_average_precision's values.

    Returns:
        mAP, or None.
    """
    defined = [ap for ap in aps if ap is not None]
    return float(np.mean(defined)) if defined else None


def f1_scores(probabilities: np.ndarray, targets: np.ndarray, thresholds: Sequence[float]) -> dict:
    """F1 of each class and overall (micro: pooled counts; macro: mean over classes with any positive or prediction).

    Args:
        probabilities: (samples, classes).
        targets: multi-hot (samples, classes).
        thresholds: one per class; a class is predicted at p >= its threshold.

    Returns:
        {"per_class": [F1 or None], "micro": F1 or None, "macro": F1 or None}.
    """
    predicted = np.asarray(probabilities) >= np.asarray(thresholds)[None, :]
    truth = np.asarray(targets) > 0.5
    hits = (predicted & truth).sum(axis=0)
    per_class = []
    for c in range(truth.shape[1]):
        denominator = predicted[:, c].sum() + truth[:, c].sum()
        per_class.append(float(2 * hits[c] / denominator) if denominator else None)
    pooled = predicted.sum() + truth.sum()
    defined = [f1 for f1 in per_class if f1 is not None]
    return {
        "per_class": per_class,
        "micro": float(2 * hits.sum() / pooled) if pooled else None,
        "macro": float(np.mean(defined)) if defined else None,
    }


def choose_thresholds(probabilities: np.ndarray, targets: np.ndarray) -> tuple[list[float], list[bool]]:
    """Each class's F1-best threshold on these (validation) samples; the floor for classes with few positives.

    Args:
        probabilities: (samples, classes), calibrated.
        targets: multi-hot (samples, classes).

    Returns:
        (thresholds, floored): one threshold per class, and whether it is FLOOR_THRESHOLD for lack of positives.
    """
    probabilities = np.asarray(probabilities, np.float64)
    truth = np.asarray(targets) > 0.5
    thresholds, floored = [], []
    for c in range(probabilities.shape[1]):
        if truth[:, c].sum() < MIN_POSITIVES:
            thresholds.append(FLOOR_THRESHOLD)
            floored.append(True)
            continue
        distinct = np.unique(probabilities[:, c])[::-1]  # highest first
        best_f1, best_threshold = -1.0, FLOOR_THRESHOLD
        for i, score in enumerate(distinct):
            predicted = probabilities[:, c] >= score
            f1 = 2 * (predicted & truth[:, c]).sum() / (predicted.sum() + truth[:, c].sum())
            if f1 > best_f1:
                below = distinct[i + 1] if i + 1 < len(distinct) else 0.0
                best_f1, best_threshold = f1, float((score + below) / 2.0)
        thresholds.append(best_threshold)
        floored.append(False)
    return thresholds, floored


def multi_label_report(
    probabilities: np.ndarray, targets: np.ndarray, thresholds: Sequence[float], labels: Sequence[str]
) -> dict:
    """mAP, per-class AP and F1 at the thresholds, ready for JSON.

    Args:
        probabilities: (samples, classes).
        targets: multi-hot (samples, classes).
        thresholds: one per class.
        labels: the label map.

    Returns:
        {"map", "f1_micro", "f1_macro", "per_class": {label: {"ap", "f1", "threshold", "positives"}}}.
    """
    aps = per_class_average_precision(probabilities, targets)
    f1 = f1_scores(probabilities, targets, thresholds)
    positives = (np.asarray(targets) > 0.5).sum(axis=0)
    return {
        "map": mean_average_precision(aps),
        "f1_micro": f1["micro"],
        "f1_macro": f1["macro"],
        "per_class": {
            label: {
                "ap": aps[c],
                "f1": f1["per_class"][c],
                "threshold": float(thresholds[c]),
                "positives": int(positives[c]),
            }
            for c, label in enumerate(labels)
        },
    }
