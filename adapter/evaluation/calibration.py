"""Confidence calibration: one temperature fitted on validation logits, expected calibration error, reliability.

Temperature scaling divides every logit by one T > 0 (fitted by minimising the negative log
likelihood of the true classes on held-out data): the order of the classes never changes, only
how confident the probabilities are. Multi-label heads fit T on their binary cross-entropy.
Expected calibration error (ECE) bins predictions by their top-1 confidence (15 equal-width bins)
and averages |accuracy - confidence| over the bins, weighted by how many predictions each holds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from adapter.runtime.results import sigmoid, softmax

ECE_BINS = 15
# The temperature search: log-spaced between these, then refined by golden-section search.
_TEMPERATURE_RANGE = (0.05, 20.0)


def negative_log_likelihood(
    logits: np.ndarray, targets: np.ndarray, temperature: float = 1.0, multi_label: bool = False
) -> float:
    """Mean NLL of the targets under logits / temperature.

    Args:
        logits: (samples, classes).
        targets: class indices (samples,), or multi-hot (samples, classes) when multi_label.
        temperature: divides the logits.
        multi_label: sigmoids and binary cross-entropy (mean over samples and classes) instead of softmax.

    Returns:
        The mean negative log likelihood.
    """
    scaled = np.asarray(logits, np.float64) / temperature
    if multi_label:
        y = np.asarray(targets, np.float64)
        # log(1 + exp(-x)) for positives, log(1 + exp(x)) for negatives.
        return float(np.mean(y * np.logaddexp(0.0, -scaled) + (1.0 - y) * np.logaddexp(0.0, scaled)))
    shifted = scaled - scaled.max(axis=1, keepdims=True)
    log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    indices = np.asarray(targets, np.int64)
    return float(-np.mean(log_probabilities[np.arange(len(indices)), indices]))


def fit_temperature(logits: np.ndarray, targets: np.ndarray, multi_label: bool = False) -> float:
    """The temperature that minimises the NLL of targets (a 1-D search over log T; NLL is smooth in it).

    Args:
        logits: (samples, classes) validation logits.
        targets: class indices, or multi-hot targets when multi_label.
        multi_label: fit on binary cross-entropy.

    Returns:
        T in _TEMPERATURE_RANGE (1.0 when there are no samples).
    """
    if len(logits) == 0:
        return 1.0

    def loss(log_t: float) -> float:
        return negative_log_likelihood(logits, targets, float(np.exp(log_t)), multi_label)

    low, high = np.log(_TEMPERATURE_RANGE[0]), np.log(_TEMPERATURE_RANGE[1])
    grid = np.linspace(low, high, 61)
    values = [loss(x) for x in grid]
    best = int(np.argmin(values))
    a, b = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    for _ in range(60):  # golden-section search inside the best grid cell's neighbours
        if loss(c) < loss(d):
            b = d
        else:
            a = c
        c, d = b - ratio * (b - a), a + ratio * (b - a)
    return float(np.exp((a + b) / 2.0))


@dataclasses.dataclass(frozen=True)
class ReliabilityBins:
    """Top-1 confidence against accuracy in equal-width bins; empty bins have count 0 and NaN means."""

    edges: np.ndarray  # (bins + 1,)
    counts: np.ndarray  # (bins,)
    confidence: np.ndarray  # mean confidence per bin
    accuracy: np.ndarray  # fraction correct per bin

    @property
    def expected_calibration_error(self) -> float:
        total = int(self.counts.sum())
        if total == 0:
            return float("nan")
        used = self.counts > 0
        gaps = np.abs(self.accuracy[used] - self.confidence[used])
        return float(np.sum(gaps * self.counts[used]) / total)

    def to_json(self) -> dict:
        return {
            "ece": self.expected_calibration_error,
            "bins": [
                {
                    "low": float(low),
                    "high": float(high),
                    "count": int(n),
                    "confidence": _finite(c),
                    "accuracy": _finite(a),
                }
                for low, high, n, c, a in zip(
                    self.edges[:-1], self.edges[1:], self.counts, self.confidence, self.accuracy
                )
            ],
        }


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def reliability(confidences: Sequence[float], correct: Sequence[bool], bins: int = ECE_BINS) -> ReliabilityBins:
    """Bin top-1 confidences (bins equal-width bins of [0, 1]; 1.0 falls in the last).

    Args:
        confidences: each prediction's top-1 probability.
        correct: whether that top-1 was right.
        bins: the number of bins (15 for the reported ECE).

    Returns:
        The bins; .expected_calibration_error is the ECE.
    """
    confidences = np.asarray(confidences, np.float64)
    correct = np.asarray(correct, np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, confidences, side="right") - 1, 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.bincount(which, weights=confidences, minlength=bins) / counts
        accuracy = np.bincount(which, weights=correct, minlength=bins) / counts
    return ReliabilityBins(edges, counts, confidence, accuracy)


def calibration_report(logits: np.ndarray, targets: np.ndarray, temperature: float, multi_label: bool = False) -> dict:
    """NLL and ECE before and after a temperature, for training_history.json and the log.

    Single-label: ECE of the top-1 confidence. Multi-label: of every class's probability as a
    yes/no prediction (confidence max(p, 1 - p), right when it agrees with the target).

    Args:
        logits: (samples, classes).
        targets: class indices, or multi-hot when multi_label.
        temperature: the fitted T.
        multi_label: sigmoids instead of softmax.

    Returns:
        {"temperature", "nll_before", "nll_after", "ece_before", "ece_after", "samples"}.
    """
    report = {"temperature": temperature, "samples": int(len(logits))}
    for name, t in (("before", 1.0), ("after", temperature)):
        report[f"nll_{name}"] = negative_log_likelihood(logits, targets, t, multi_label)
        report[f"ece_{name}"] = prediction_reliability(logits, targets, t, multi_label).expected_calibration_error
    return report


def prediction_reliability(
    logits: np.ndarray, targets: np.ndarray, temperature: float = 1.0, multi_label: bool = False
) -> ReliabilityBins:
    """Reliability bins of logits / temperature against the targets (see calibration_report).

    Args:
        logits: (samples, classes).
        targets: class indices, or multi-hot when multi_label.
        temperature: divides the logits.
        multi_label: sigmoids instead of softmax.

    Returns:
        The ReliabilityBins.
    """
    if multi_label:
        p = sigmoid(logits, temperature).astype(np.float64).reshape(-1)
        y = np.asarray(targets, np.float64).reshape(-1) > 0.5
        return reliability(np.maximum(p, 1.0 - p), (p >= 0.5) == y)
    p = softmax(logits, temperature)
    return reliability(p.max(axis=1), p.argmax(axis=1) == np.asarray(targets))


def plot_reliability(before: ReliabilityBins, after: ReliabilityBins | None, path: str, title: str = "") -> str:
    """Draw a reliability diagram (accuracy against confidence per bin, the diagonal is perfect) into a PNG.

    Args:
        before: the uncalibrated bins.
        after: the calibrated bins, or None (only before is drawn).
        path: the PNG to write (atomically).
        title: what was predicted.

    Returns:
        path.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from adapter.core.files import atomic_open

    figure = Figure(figsize=(5.5, 5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    axes.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfectly calibrated")
    for bins, name, marker in ((before, "before", "o"), (after, "after", "s")):
        if bins is None:
            continue
        used = bins.counts > 0
        axes.plot(
            bins.confidence[used],
            bins.accuracy[used],
            marker=marker,
            label=f"{name} calibration (ECE {bins.expected_calibration_error:.3f})",
        )
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_xlabel(f"confidence (mean per bin, {len(before.counts)} bins)")
    axes.set_ylabel("accuracy")
    axes.legend(loc="upper left", fontsize=8)
    if title:
        axes.set_title(title, fontsize=9)
    figure.tight_layout()
    with atomic_open(path, "wb") as file:
        figure.savefig(file, format="png")
    return path


def video_reliability(
    scores, model_labels: Sequence[str], scoring=None
) -> tuple[ReliabilityBins, ReliabilityBins | None]:
    """Reliability of an evaluation's videos before and after the model's temperature.

    Single-label: each video's top-1 confidence against whether the top-1 is one of its
    ground-truth labels. Multi-label: every class's probability as a yes/no call.

    Args:
        scores: evaluation.metrics.VideoScore with probabilities (the calibrated ones predict reported).
        model_labels: the label map.
        scoring: the model's Scoring (None: plain softmax, no temperature).

    Returns:
        (before, after): after is None when the model has no temperature.
    """
    from adapter.runtime.results import Scoring

    scoring = scoring or Scoring()
    calibrated = np.stack([np.asarray(score.probabilities, np.float64) for score in scores])
    versions = [scoring.uncalibrate(calibrated)] + ([calibrated] if scoring.temperature is not None else [])
    results = []
    for probabilities in versions:
        probabilities = np.asarray(probabilities, np.float64)
        if scoring.multi_label:
            targets = _multi_hot(scores, model_labels)
            yes = probabilities >= 0.5
            results.append(
                reliability(np.maximum(probabilities, 1 - probabilities).reshape(-1), (yes == targets).reshape(-1))
            )
        else:
            best = probabilities.argmax(axis=1)
            correct = [model_labels[b] in score.truth for b, score in zip(best, scores)]
            results.append(reliability(probabilities.max(axis=1), correct))
    return results[0], (results[1] if len(results) > 1 else None)


def _multi_hot(scores, model_labels: Sequence[str]) -> np.ndarray:
    index = {label: i for i, label in enumerate(model_labels)}
    targets = np.zeros((len(scores), len(model_labels)), bool)
    for row, score in enumerate(scores):
        for label in score.truth:
            if label in index:
                targets[row, index[label]] = True
    return targets


def video_calibration(scores, model_labels: Sequence[str], scoring=None) -> dict:
    """evaluation.metrics.summarize's calibration (and multi-label) part.

    Args:
        scores: VideoScores with probabilities.
        model_labels: the label map.
        scoring: the model's Scoring, or None.

    Returns:
        {"calibration": {"bins", "temperature", "ece_before", "ece_after", "reliability_before",
        "reliability_after"}} and, for multi-label models, "multi_label" (multilabel.multi_label_report).
    """
    from adapter.evaluation.multilabel import multi_label_report
    from adapter.runtime.results import Scoring

    scoring = scoring or Scoring()
    before, after = video_reliability(scores, model_labels, scoring)
    result = {
        "calibration": {
            "bins": ECE_BINS,
            "temperature": scoring.temperature,
            "ece_before": _finite(before.expected_calibration_error),
            "ece_after": _finite(after.expected_calibration_error) if after is not None else None,
            "reliability_before": before.to_json()["bins"],
            "reliability_after": after.to_json()["bins"] if after is not None else None,
        }
    }
    if scoring.multi_label:
        probabilities = np.stack([score.probabilities for score in scores])
        thresholds = [scoring.threshold(c) for c in range(len(model_labels))]
        result["multi_label"] = multi_label_report(
            probabilities, _multi_hot(scores, model_labels), thresholds, model_labels
        )
    return result
