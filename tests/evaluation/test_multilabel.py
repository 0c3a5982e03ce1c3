"""Multi-label scores: AP, mAP, F1 and the per-class thresholds (adapter.evaluation.multilabel)."""

from __future__ import annotations

import numpy as np
import pytest

from adapter.evaluation.multilabel import (
    FLOOR_THRESHOLD,
    MIN_POSITIVES,
    average_precision,
    choose_thresholds,
    f1_scores,
    mean_average_precision,
    multi_label_report,
)


def test_average_precision_of_a_ranking_worked_by_hand():
    # Ranked: pos, neg, pos, neg -> precision at the positives 1/1 and 2/3.
    assert average_precision([0.9, 0.8, 0.7, 0.6], [True, False, True, False]) == pytest.approx((1 + 2 / 3) / 2)
    assert average_precision([0.9, 0.8], [True, True]) == 1.0
    assert average_precision([0.9, 0.8], [False, False]) is None
    assert mean_average_precision([0.5, None, 1.0]) == pytest.approx(0.75)


def test_thresholds_separate_the_classes_and_fall_back_to_the_floor_without_enough_positives():
    probabilities = np.array([[0.9, 0.2], [0.8, 0.9], [0.7, 0.1], [0.3, 0.8], [0.2, 0.3]])
    targets = np.array([[1, 0], [1, 1], [1, 0], [0, 1], [0, 0]])
    thresholds, floored = choose_thresholds(probabilities, targets)
    assert MIN_POSITIVES == 3  # class 1 has 2 positives: floored
    assert thresholds[0] == pytest.approx(0.5)  # halfway between 0.7 (lowest positive) and 0.3
    assert floored == [False, True] and thresholds[1] == FLOOR_THRESHOLD
    f1 = f1_scores(probabilities, targets, thresholds)
    assert f1["per_class"][0] == 1.0


def test_the_f1_best_threshold_accepts_a_false_positive_when_that_wins_recall():
    probabilities = np.array([[0.9], [0.6], [0.5], [0.4], [0.1]])
    targets = np.array([[1], [0], [1], [1], [0]])
    (threshold,), _ = choose_thresholds(probabilities, targets)
    # Cuts: >=0.9 F1 2/4, >=0.6 F1 2/5, >=0.5 F1 4/6, >=0.4 F1 6/7, >=0.1 F1 6/8.
    assert threshold == pytest.approx((0.4 + 0.1) / 2)


def test_the_report_names_every_class():
    report = multi_label_report(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([[1, 0], [0, 1]]), [0.5, 0.5], ["a", "b"])
    assert report["map"] == 1.0 and report["f1_micro"] == 1.0
    assert report["per_class"]["b"] == {"ap": 1.0, "f1": 1.0, "threshold": 0.5, "positives": 1}
