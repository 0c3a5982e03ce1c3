"""Imbalanced and small label sets: class counts, labels without training samples, class weights.

A sample is one labelled range (datasets.layout), so counts are of ranges, as the loss sees them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from adapter.datasets.layout import Sample

logger = logging.getLogger(__name__)


def class_counts(samples: Sequence[Sample], labels: Sequence[str]) -> list[int]:
    """How many samples each label of the map has.

    Args:
        samples: the labelled ranges of a subset.
        labels: the label map, by class index.

    Returns:
        One count per label, by class index.
    """
    counts = [0] * len(labels)
    for sample in samples:
        counts[sample.label_index] += 1
    return counts


def warn_unsampled_labels(counts: Sequence[int], labels: Sequence[str], subset: str) -> list[str]:
    """Warn, naming them, about the labels of the map that have no sample in a subset.

    Args:
        counts: class_counts of the subset.
        labels: the label map, by class index.
        subset: the subset's name, for the message.

    Returns:
        The labels without samples.
    """
    missing = [label for label, count in zip(labels, counts) if count == 0]
    if missing:
        logger.warning(
            "%d of the %d labels have no sample in the %s subset, so training never shows them to the model "
            "(it will rarely predict them): %s",
            len(missing),
            len(labels),
            subset,
            ", ".join(repr(label) for label in missing),
        )
    return missing


def class_weights(counts: Sequence[int], weighting: str) -> dict[int, float] | None:
    """The loss weight of each class for the class_weighting key.

    "balanced": total / (classes present x count), so every present class adds the same
    total weight to an epoch's loss, and the weights average 1 over the samples. A class
    without samples never occurs in the loss; it gets 1.

    Args:
        counts: class_counts of the train subset.
        weighting: "none" or "balanced".

    Returns:
        class index -> weight (Keras fit's class_weight), or None for "none".
    """
    if weighting == "none":
        return None
    present = [count for count in counts if count > 0]
    total = sum(present)
    return {index: (total / (len(present) * count) if count else 1.0) for index, count in enumerate(counts)}


def log_class_weights(weights: dict[int, float], counts: Sequence[int], labels: Sequence[str]) -> None:
    """Say at the start of training what each class weighs in the loss.

    Args:
        weights: from class_weights.
        counts: class_counts of the train subset.
        labels: the label map, by class index.

    Returns:
        None.
    """
    logger.info(
        "Class weighting 'balanced' (loss weight per label, from its training samples): %s",
        ", ".join(f"{labels[index]!r} {weight:.3g} ({counts[index]})" for index, weight in sorted(weights.items())),
    )
