"""The pictures of a training run and an evaluation: loss and accuracy per epoch, and one confusion matrix.

Both are drawn with matplotlib's object API, not pyplot: no global figure state and no display
backend, so they work in services and worker threads.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from adapter.core.files import atomic_open


def save_figure(figure, path: str) -> None:
    """Save a matplotlib figure atomically: a save that fails (disk full) leaves no half picture.

    Args:
        figure: a matplotlib Figure.
        path: the file to write; its extension picks the format (PNG when it has none).
    """
    image_format = os.path.splitext(path)[1].lstrip(".").lower() or "png"
    with atomic_open(path, "wb") as file:
        figure.savefig(file, format=image_format)


def plot_confusion_matrix(
    matrix: Sequence[Sequence[int]], classes: Sequence[str], path: str, title: str = "", unit: str = "videos"
) -> str:
    """Draw a confusion matrix into a PNG: rows shaded by the fraction of their true class, counts as numbers.

    Args:
        matrix: counts (evaluation.metrics.confusion_matrix), row = true class, column = predicted class.
        classes: the class of each row and column.
        path: the PNG to write.
        title: what was predicted (e.g. "validation subset, kept epoch 3").
        unit: what a count counts ("videos", "clips"), for the title.

    Returns:
        path.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    size = len(classes)
    counts = np.asarray(matrix, dtype=np.int64).reshape(size, size)
    # Readable up to a few dozen classes; beyond that the numbers are left out, the shading stays.
    side = min(4 + 0.45 * size, 24)
    figure = Figure(figsize=(side + 1.5, side), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    totals = counts.sum(axis=1, keepdims=True)
    fractions = np.divide(counts, totals, out=np.zeros(counts.shape, dtype=float), where=totals > 0)
    image = axes.imshow(fractions, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="fraction of the true class")
    if size <= 30:
        for (row, column), count in np.ndenumerate(counts):
            colour = "white" if fractions[row, column] > 0.5 else "black"
            axes.text(column, row, str(int(count)), ha="center", va="center", color=colour, fontsize=8)
    axes.set_xticks(range(size), labels=list(classes), rotation=90 if size > 6 else 0)
    axes.set_yticks(range(size), labels=list(classes))
    axes.set_xlabel("predicted (top-1)")
    axes.set_ylabel("true")
    heading = f"Confusion matrix ({int(counts.sum())} {unit})"
    axes.set_title(f"{heading}\n{title}" if title else heading)
    figure.tight_layout()
    save_figure(figure, path)
    return path


def plot_training_curves(history: dict[str, list[float]], path: str, best_epoch: int | None = None) -> str:
    """Draw the loss and accuracy curves side by side into a PNG.

    Args:
        history: Keras log key (loss, val_loss, accuracy, val_accuracy, top5_accuracy, ...) -> one value per epoch.
        path: the PNG to write.
        best_epoch: 0-based epoch to mark as the kept one, or None.

    Returns:
        path.
    """
    # The object API, not pyplot: no global figure state, no display backend needed.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(figure)
    for position, name in enumerate(("loss", "accuracy"), start=1):
        axes = figure.add_subplot(1, 2, position)
        lines = [(name, "train"), (f"val_{name}", "validation")]
        if name == "accuracy":  # present with more than 5 labels
            lines += [("top5_accuracy", "train top-5"), ("val_top5_accuracy", "validation top-5")]
            lines += [("val_map", "validation mAP"), ("val_f1", "validation F1 at 0.5")]  # multi-label runs
        for key, legend in lines:
            values = history.get(key)
            if values:
                axes.plot(range(1, len(values) + 1), values, marker="o", label=legend)
        if best_epoch is not None:
            axes.axvline(best_epoch + 1, color="grey", linestyle="--", linewidth=1, label="kept epoch")
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_title(name)
        axes.grid(True, alpha=0.3)
        axes.legend()
    figure.tight_layout()
    save_figure(figure, path)
    return path


def plot_per_class_scores(report: dict, path: str, title: str = "") -> str:
    """Bars of each class's AP and F1 at its threshold (a multi-label evaluation), mAP in the title.

    Args:
        report: evaluation.multilabel.multi_label_report's dict.
        path: the PNG to write.
        title: what was evaluated.

    Returns:
        path.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels = list(report["per_class"])
    figure = Figure(figsize=(max(5.0, 0.6 * len(labels) + 2), 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    positions = np.arange(len(labels))
    for offset, key, name in ((-0.2, "ap", "AP"), (0.2, "f1", "F1 at the threshold")):
        values = [report["per_class"][label][key] for label in labels]
        axes.bar(positions + offset, [v if v is not None else 0.0 for v in values], width=0.4, label=name)
    axes.set_xticks(positions, labels=labels, rotation=90 if len(labels) > 6 else 0)
    axes.set_ylim(0, 1.05)
    map_text = "n/a" if report["map"] is None else f"{report['map']:.3f}"
    axes.set_title(f"{title}: mAP {map_text}" if title else f"mAP {map_text}", fontsize=9)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    return path
