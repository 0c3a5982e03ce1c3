"""The training-curves picture: loss and accuracy per epoch, train and validation, the kept epoch marked."""
from __future__ import annotations


def plot_training_curves(history: dict[str, list[float]], path: str, best_epoch: int | None = None) -> str:
    """Draw the loss and accuracy curves side by side into a PNG.

    Args:
        history: Keras log key (loss, val_loss, accuracy, val_accuracy) -> one value per epoch.
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
        for key, legend in ((name, "train"), (f"val_{name}", "validation")):
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
