"""Temperature fitting, expected calibration error and the reliability diagram (adapter.evaluation.calibration)."""

from __future__ import annotations

import numpy as np
import pytest

from adapter.evaluation.calibration import (
    calibration_report,
    fit_temperature,
    negative_log_likelihood,
    plot_reliability,
    prediction_reliability,
    reliability,
)


def _overconfident(scale: float, samples: int = 20000, classes: int = 4, seed: int = 0):
    """Labels drawn from softmax(base), logits reported as scale * base: the best temperature is scale."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(samples, classes))
    p = np.exp(base) / np.exp(base).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(classes, p=row) for row in p])
    return scale * base, labels


def test_the_fitted_temperature_undoes_a_known_overconfidence():
    logits, labels = _overconfident(3.0)
    temperature = fit_temperature(logits, labels)
    assert temperature == pytest.approx(3.0, rel=0.05)
    # And it is the minimum of the NLL: a brute-force scan finds nothing lower.
    scan = np.exp(np.linspace(np.log(0.1), np.log(10.0), 400))
    assert (
        negative_log_likelihood(logits, labels, temperature)
        <= min(negative_log_likelihood(logits, labels, t) for t in scan) + 1e-9
    )


def test_an_underconfident_model_gets_a_temperature_below_one():
    logits, labels = _overconfident(0.5)
    assert fit_temperature(logits, labels) == pytest.approx(0.5, rel=0.05)


def test_a_multi_label_temperature_minimises_binary_cross_entropy():
    rng = np.random.default_rng(1)
    base = rng.normal(scale=2.0, size=(20000, 3))
    targets = (rng.uniform(size=base.shape) < 1.0 / (1.0 + np.exp(-base))).astype(np.float32)
    assert fit_temperature(4.0 * base, targets, multi_label=True) == pytest.approx(4.0, rel=0.05)


def test_ece_of_a_constant_confidence_is_its_gap_to_the_accuracy():
    # 0.9 confident, 70 % right: one bin, |0.7 - 0.9| = 0.2.
    correct = [True] * 70 + [False] * 30
    assert reliability([0.9] * 100, correct).expected_calibration_error == pytest.approx(0.2)
    # Two half-filled bins, each exactly calibrated: 0.
    bins = reliability([0.25] * 4 + [0.95] * 20, [True] + [False] * 3 + [True] * 19 + [False])
    assert bins.expected_calibration_error == pytest.approx(0.0, abs=1e-12)
    assert len(bins.counts) == 15 and bins.counts.sum() == 24
    assert reliability([1.0], [True]).counts[-1] == 1  # 1.0 falls in the last bin


def test_calibration_lowers_the_ece_and_nll_of_an_overconfident_model(tmp_path):
    logits, labels = _overconfident(3.0, samples=5000)
    report = calibration_report(logits, labels, fit_temperature(logits, labels))
    assert report["ece_after"] < report["ece_before"] / 2
    assert report["nll_after"] < report["nll_before"]
    path = plot_reliability(
        prediction_reliability(logits, labels),
        prediction_reliability(logits, labels, report["temperature"]),
        str(tmp_path / "reliability.png"),
    )
    with open(path, "rb") as file:
        assert file.read(8) == b"\x89PNG\r\n\x1a\n"
