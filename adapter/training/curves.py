"""The pictures a run leaves: loss and accuracy per epoch (the kept epoch marked), and the kept epoch's
validation confusion matrix."""

from __future__ import annotations


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
    figure.savefig(path)
    return path


def confusion_matrix(true_indices, predicted_indices, num_classes: int):
    """Count (true, predicted) class pairs.

    Args:
        true_indices: each sample's class index.
        predicted_indices: each sample's predicted (top-1) class index.
        num_classes: the label map's size.

    Returns:
        A num_classes x num_classes int array: row = true class, column = predicted class.
    """
    import numpy as np

    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(true_indices, dtype=np.int64), np.asarray(predicted_indices, dtype=np.int64)), 1)
    return matrix


def plot_confusion_matrix(matrix, labels: list[str], path: str, title: str = "validation") -> str:
    """Draw a confusion matrix (counts, rows shaded by the fraction of their true class) into a PNG.

    Args:
        matrix: from confusion_matrix (row = true class, column = predicted class).
        labels: the label map, by class index.
        path: the PNG to write.
        title: what the predictions were (e.g. the kept epoch).

    Returns:
        path.
    """
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    matrix = np.asarray(matrix)
    size = len(labels)
    # Readable up to a few dozen labels; beyond that the numbers are left out, the shading stays.
    side = min(4 + 0.45 * size, 24)
    figure = Figure(figsize=(side + 1.5, side), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    totals = matrix.sum(axis=1, keepdims=True)
    fractions = np.divide(matrix, totals, out=np.zeros(matrix.shape, dtype=float), where=totals > 0)
    image = axes.imshow(fractions, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="fraction of the true class")
    if size <= 30:
        for row in range(size):
            for column in range(size):
                colour = "white" if fractions[row, column] > 0.5 else "black"
                axes.text(column, row, str(int(matrix[row, column])), ha="center", va="center", color=colour)
    axes.set_xticks(range(size))
    axes.set_yticks(range(size))
    axes.set_xticklabels(labels, rotation=90 if size > 6 else 0)
    axes.set_yticklabels(labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(f"Confusion matrix, {title} ({int(matrix.sum())} clips)")
    figure.tight_layout()
    figure.savefig(path)
    return path
