"""Scoring (adapter.runtime.results): softmax or sigmoids, the temperature, thresholds, min_confidence."""

from __future__ import annotations

import numpy as np
import pytest

from adapter.runtime.classifiers import ClipClassifier
from adapter.runtime.results import Scoring, sigmoid, softmax, top_k_labels
from adapter.video.clips import Clip

LABELS = ["a", "b", "c", "d"]


class FixedLogits(ClipClassifier):
    """A base classifier whose clips' logits are given (no model)."""

    def __init__(self, logits, scoring=None):
        self.logits = np.asarray(logits, np.float32)
        if scoring is not None:
            self.scoring = scoring

    def _logits(self, clips):
        clips = list(clips)
        yield clips, self.logits[: len(clips)]


def _clips(n):
    return [Clip(np.zeros((1, 1, 1, 3), np.float32), 10 * i, 10 * i + 9) for i in range(n)]


def test_the_default_scoring_is_plain_softmax_top_k_bit_for_bit():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3.0, size=(5, 4))
    prediction = FixedLogits(logits).classify(_clips(5))
    # What prediction computed before scoring existed: the mean of the clips' softmax.
    exp = np.exp(logits.astype(np.float32) - logits.astype(np.float32).max(axis=1, keepdims=True))
    expected = (exp / exp.sum(axis=1, keepdims=True)).sum(axis=0) / 5
    np.testing.assert_array_equal(prediction.probabilities, expected.astype(np.float32))
    assert Scoring().video_labels(prediction.probabilities, LABELS, 3) == top_k_labels(expected, LABELS, 3)
    assert Scoring().calibrate(expected) is expected


def test_a_temperature_on_one_clip_is_softmax_of_the_scaled_logits():
    logits = np.array([[4.0, 1.0, -2.0, 0.5]])
    calibrated = Scoring(temperature=2.5).calibrate(softmax(logits))
    np.testing.assert_allclose(calibrated, softmax(logits / 2.5), rtol=1e-5)
    np.testing.assert_allclose(Scoring(temperature=2.5).uncalibrate(calibrated), softmax(logits), rtol=1e-4)
    multi = Scoring(multi_label=True, temperature=2.0).calibrate(sigmoid(logits))
    np.testing.assert_allclose(multi, sigmoid(logits / 2.0), rtol=1e-5)


def test_calibration_keeps_the_labels_and_their_order_and_changes_only_confidences():
    rng = np.random.default_rng(1)
    for trial in range(50):
        logits = rng.normal(scale=4.0, size=(6, 4))
        plain = FixedLogits(logits).classify(_clips(6))
        calibrated = FixedLogits(logits, Scoring(temperature=3.0)).classify(_clips(6))
        plain_labels = Scoring().video_labels(plain.probabilities, LABELS, 4)
        calibrated_labels = Scoring().video_labels(calibrated.probabilities, LABELS, 4)
        assert [label for label, _ in plain_labels] == [label for label, _ in calibrated_labels], trial
        assert [s.class_index for s in plain.segments] == [s.class_index for s in calibrated.segments]
    # T > 1 softens: the top confidence drops.
    assert calibrated_labels[0][1] < plain_labels[0][1]


def test_min_confidence_leaves_a_video_without_a_class():
    probabilities = np.array([0.4, 0.3, 0.2, 0.1], np.float32)
    assert Scoring(min_confidence=0.5).video_labels(probabilities, LABELS, 3) == []
    assert [label for label, _ in Scoring(min_confidence=0.4).video_labels(probabilities, LABELS, 3)] == ["a", "b", "c"]
    assert not Scoring(min_confidence=0.5).names(0, 0.4) and Scoring(min_confidence=0.5).names(0, 0.5)


def test_multi_label_names_every_class_over_its_threshold_at_most_top_k():
    probabilities = np.array([0.9, 0.3, 0.7, 0.65], np.float32)
    scoring = Scoring(multi_label=True, thresholds=(0.5, 0.2, 0.8, 0.6))
    assert scoring.video_labels(probabilities, LABELS, 3) == [
        ("a", pytest.approx(0.9)),
        ("d", pytest.approx(0.65)),
        ("b", pytest.approx(0.3)),
    ]
    assert [label for label, _ in scoring.video_labels(probabilities, LABELS, 2)] == ["a", "d"]
    assert Scoring(multi_label=True).video_labels(probabilities, LABELS, 4)[-1][0] == "d"  # 0.5 each without thresholds
    assert not scoring.names(2, 0.7) and scoring.names(3, 0.7)


def test_multi_label_clips_are_scored_with_independent_sigmoids():
    logits = np.array([[3.0, 2.0, -4.0, -1.0]])
    prediction = FixedLogits(logits, Scoring(multi_label=True)).classify(_clips(1))
    np.testing.assert_allclose(prediction.probabilities, 1 / (1 + np.exp(-logits[0])), rtol=1e-6)
    assert prediction.probabilities.sum() > 1.0  # not one distribution


@pytest.mark.parametrize("mode", ["base", "stream"])
def test_pretrained_presets_score_with_plain_softmax_whatever_the_new_keys(hub_cache, mode, caplog):
    """A hub model has no movinet.json: no temperature, no thresholds, softmax; calibrate changes nothing."""
    from adapter.core.config import MovinetConfig
    from adapter.core.presets import preset_configuration
    from adapter.model.loading import load_model
    from adapter.runtime.backend import scoring_for

    config = MovinetConfig.from_dict(preset_configuration("a0", mode))
    loaded = load_model(config, None)
    assert scoring_for(config, loaded) == Scoring()
    assert scoring_for(config.replace(calibrate=False), loaded) == Scoring()
    # Asking a softmax-trained model for multi-label prediction only warns: it predicts as trained.
    assert scoring_for(config.replace(multi_label=True), loaded) == Scoring()
    assert "not trained multi-label" in caplog.text
