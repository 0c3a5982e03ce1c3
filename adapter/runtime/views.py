"""Multi-view testing: several views (crops) of one clip -> the clip's probabilities and feature.

"mean" averages the views' probabilities (the standard three-crop test, mmaction2's
average_clips='prob'). A view that sees none of the action can still be confidently wrong,
and averaging lets it outvote the view that sees it; "max_confidence" keeps, per clip, the
view whose top probability is highest. The same weights fuse the views' pooled features,
so embeddings and temporal annotations follow the fused output.
"""

from __future__ import annotations

import numpy as np


def view_weights(view_probabilities: np.ndarray, fusion: str) -> np.ndarray:
    """How much each view of one clip counts.

    Args:
        view_probabilities: (views, classes) probabilities of the clip's views.
        fusion: "mean" or "max_confidence".
    Returns:
        (views,) float32 weights summing to 1 (max_confidence: one-hot on the surest view;
        ties: the first).
    """
    probabilities = np.asarray(view_probabilities, np.float32)
    views = probabilities.shape[0]
    if fusion == "mean":
        return np.full(views, 1.0 / views, np.float32)
    if fusion == "max_confidence":
        weights = np.zeros(views, np.float32)
        weights[int(np.argmax(probabilities.max(axis=1)))] = 1.0
        return weights
    raise ValueError(f"unknown view fusion {fusion!r}; expected 'mean' or 'max_confidence'")


def fuse_views(view_values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The weighted sum over the first axis (views) of probabilities or features.

    Args:
        view_values: (views, ...) one row per view.
        weights: view_weights' output.
    Returns:
        The fused (...) array, float32.
    """
    values = np.asarray(view_values, np.float32)
    return np.tensordot(np.asarray(weights, np.float32), values, axes=1).astype(np.float32)
