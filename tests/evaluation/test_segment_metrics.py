"""Temporal segment metrics (evaluation.segment_metrics): frame accuracy, segment F1 at IoU 0.5, edit score."""

from __future__ import annotations

import pytest

from adapter.evaluation.segment_metrics import (
    format_segment_report,
    frame_labels,
    score_segments,
    segments_of,
    summarize_segments,
)

TRUTH = [("left", 0, 49), ("right", 50, 99)]


def test_a_perfect_prediction_scores_one_everywhere():
    summary = summarize_segments([score_segments("v", TRUTH, TRUTH, 100)])

    assert summary["frame_accuracy"] == 1.0
    assert summary["f1_at_50"] == 1.0
    assert summary["edit"] == 1.0
    assert summary["per_class"]["left"] == {"f1_at_50": 1.0, "tp": 1, "fp": 0, "fn": 0}


def test_one_noisy_clip_splitting_an_action_costs_segments_far_more_than_frames():
    # "left" split in three by a 4-frame "right" blip: 96 of 100 frames right.
    predicted = [("left", 0, 19), ("right", 20, 23), ("left", 24, 49), ("right", 50, 99)]

    score = score_segments("v", predicted, TRUTH, 100)
    summary = summarize_segments([score])

    assert summary["frame_accuracy"] == pytest.approx(0.96)
    # left: [24, 49] has IoU 26/50 >= 0.5 -> one TP; [0, 19] (IoU 0.4) is a FP. right: [50, 99] TP, blip FP.
    assert score.counts == {"left": [1, 1, 0], "right": [1, 1, 0]}
    assert summary["f1_at_50"] == pytest.approx(2 * 2 / (2 * 2 + 2))
    assert summary["edit"] == pytest.approx(1 - 2 / 4)  # two inserted segments over four
    assert "segment F1@0.5 0.667" in format_segment_report(summary)


def test_an_over_segmented_action_matches_once_and_uncovered_truth_is_missed():
    predicted = [("left", 0, 30), ("left", 33, 49)]  # a gap of two unlabelled frames

    score = score_segments("v", predicted, TRUTH, 100)

    # [0, 30]: IoU 31/50 -> TP; [33, 49]: IoU 17/50 -> FP; right has no prediction -> FN.
    assert score.counts == {"left": [1, 1, 0], "right": [0, 0, 1]}
    assert score.correct_frames == 48


def test_frames_take_the_later_range_where_ground_truth_overlaps_and_open_ends_reach_the_video_ends():
    labels = frame_labels([("a", None, 5), ("b", 4, None)], 8)

    assert labels == ["a", "a", "a", "a", "b", "b", "b", "b"]
    assert segments_of(["a", None, "a", "a"]) == [("a", 0, 0), ("a", 2, 3)]


def test_counts_add_over_videos_before_f1():
    perfect = score_segments("a", TRUTH, TRUTH, 100)
    wrong = score_segments("b", [("right", 0, 99)], TRUTH, 100)

    summary = summarize_segments([perfect, wrong])

    # "right" over the whole video overlaps right's half with IoU 50/100 = 0.5: a match; left is missed.
    assert wrong.counts == {"right": [1, 0, 0], "left": [0, 0, 1]}
    assert summary["f1_at_50"] == pytest.approx(2 * 3 / (2 * 3 + 0 + 1))
    assert summary["frame_accuracy"] == pytest.approx(150 / 200)
