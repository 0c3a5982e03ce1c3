"""The Keras callbacks of a training run: checkpoints, history and curves, metrics sink, epoch log."""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable

import tf_keras
from tqdm import tqdm

from adapter.core.files import write_json
from adapter.evaluation.plots import plot_training_curves

logger = logging.getLogger(__name__)

# Keras log key -> (figure, legend) of the platform's training plots
PLATFORM_METRICS = {
    "loss": ("loss", "train"),
    "val_loss": ("loss", "validation"),
    "accuracy": ("accuracy", "train"),
    "val_accuracy": ("accuracy", "validation"),
    "top5_accuracy": ("top-5 accuracy", "train"),  # only with more than 5 labels
    "val_top5_accuracy": ("top-5 accuracy", "validation"),
    "val_map": ("mAP", "validation"),  # multi-label only (MultiLabelScores)
    "val_f1": ("F1", "validation"),
}
# Multi-label: each class's validation AP, as "val_ap/<label>", goes to one figure, a line per label.
AP_KEY_PREFIX = "val_ap/"
AP_FIGURE = "AP per class"

# (epoch, [(figure, legend, value)]) -> whether the receiver accepted them (False: it refused)
MetricsSink = Callable[[int, list[tuple[str, str, float]]], bool]


class EpochReporter(tf_keras.callbacks.Callback):
    """The epoch's metrics in the log, then the platform's epoch callback; a progress bar on a terminal.

    In a service (stderr not a terminal) there is no bar: its carriage-return fragments
    would clutter the service log, which gets the one line per epoch.
    """

    def __init__(self, num_epochs: int, steps: int, on_epoch_end_callback: Callable[[int, int], None] | None = None):
        super().__init__()
        self.num_epochs = num_epochs
        self.steps = steps
        self.on_epoch_end_callback = on_epoch_end_callback
        self._bar = None
        self._started = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()
        if sys.stderr.isatty():
            self._bar = tqdm(total=self.steps, desc=f"epoch {epoch + 1}/{self.num_epochs}", unit="batch", leave=False)

    def on_train_batch_end(self, batch, logs=None):
        if self._bar is None:
            return
        self._bar.update(1)
        if logs and "loss" in logs:
            self._bar.set_postfix(loss=f"{logs['loss']:.4f}")

    def on_epoch_end(self, epoch, logs=None):
        self._close_bar()
        logs = logs or {}
        values = ", ".join(f"{key} {logs[key]:.4f}" for key in PLATFORM_METRICS if key in logs)
        logger.info("Epoch %d/%d: %s (%.1f s)", epoch + 1, self.num_epochs, values, time.perf_counter() - self._started)
        if self.on_epoch_end_callback is not None:
            self.on_epoch_end_callback(epoch, self.num_epochs)

    def on_train_end(self, logs=None):
        self._close_bar()

    def _close_bar(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class EpochMetrics(tf_keras.callbacks.Callback):
    """Hands each epoch's losses and accuracies to a metrics sink (the platform's training plots)."""

    def __init__(self, sink: MetricsSink):
        super().__init__()
        self.sink = sink

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        values = []
        chosen = [(key, figure, legend) for key, (figure, legend) in PLATFORM_METRICS.items()]
        chosen += [(key, AP_FIGURE, key[len(AP_KEY_PREFIX) :]) for key in logs if key.startswith(AP_KEY_PREFIX)]
        for key, figure, legend in chosen:
            if key not in logs:
                continue
            value = float(logs[key])
            if math.isfinite(value):
                values.append((figure, legend, value))
            else:  # the platform rejects NaN/inf or plots them badly: a gap is honest
                logger.warning("Epoch %d %s is %s: not sent to the platform's %s plot", epoch + 1, key, value, figure)
        if not values:
            return
        try:
            sent = self.sink(epoch, values)
        except Exception as err:  # a lost plot point must not end a training run
            logger.warning("Could not send epoch %d metrics to the platform: %s", epoch, err)
        else:
            if sent is False:
                logger.warning("The platform did not accept epoch %d metrics", epoch)


class MultiLabelScores(tf_keras.callbacks.Callback):
    """Multi-label runs: the validation clips' mAP, per-class AP and F1 (at 0.5) added to the epoch's logs.

    Placed before BestEpoch, which then keeps the epoch with the best val_map; the logs
    also reach the platform's plots (EpochMetrics) and training_history.json (TrainingCurves).
    """

    def __init__(self, validation_data, labels: list[str]):
        super().__init__()
        self.validation_data = validation_data
        self.labels = labels

    def on_epoch_end(self, epoch, logs=None):
        from adapter.evaluation.multilabel import f1_scores, mean_average_precision, per_class_average_precision
        from adapter.runtime.results import sigmoid

        if logs is None:
            return
        logits, targets = validation_outputs(self.model, self.validation_data)
        probabilities = sigmoid(logits)
        aps = per_class_average_precision(probabilities, targets)
        mean_ap = mean_average_precision(aps)
        f1 = f1_scores(probabilities, targets, [0.5] * len(self.labels))["macro"]
        logs["val_map"] = float("nan") if mean_ap is None else mean_ap
        logs["val_f1"] = float("nan") if f1 is None else f1
        for label, ap in zip(self.labels, aps):
            if ap is not None:
                logs[AP_KEY_PREFIX + label] = ap


def validation_outputs(model: tf_keras.Model, dataset):
    """The model's logits on every validation clip, with the clips' targets, in the dataset's order.

    Args:
        model: the classifier.
        dataset: the (unshuffled) validation tf.data.Dataset of (clips, targets).

    Returns:
        (logits (clips, classes) float32, targets: class indices or multi-hot rows).
    """
    import numpy as np

    logits, targets = [], []
    for clips, batch_targets in dataset:
        logits.append(np.asarray(model(clips, training=False), np.float32))
        targets.append(batch_targets.numpy())
    return np.concatenate(logits), np.concatenate(targets)


class BestEpoch(tf_keras.callbacks.Callback):
    """Which epoch is the best so far, by a validation score (ties: lower validation loss).

    The score is val_accuracy, or val_map for multi-label runs (monitor). Its checkpoint is kept
    by ResumeCheckpoint (adapter.training.resume), which runs after it.
    """

    def __init__(
        self,
        best_epoch: int | None = None,
        best_val_accuracy: float = float("nan"),
        best_val_loss: float = float("inf"),
        monitor: str = "val_accuracy",
    ):
        """best_*: the record so far of a resumed run; monitor: the score (a Keras log key)."""
        super().__init__()
        self.monitor = monitor
        self.best_epoch = best_epoch
        self.best_key: tuple[float, float] | None = (
            (best_val_accuracy, -best_val_loss) if best_epoch is not None else None
        )
        self.best_val_accuracy = best_val_accuracy

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        accuracy = float(logs.get(self.monitor, float("nan")))
        key = (accuracy, -float(logs.get("val_loss", float("inf"))))
        if self.best_key is None or key > self.best_key:
            self.best_key, self.best_epoch, self.best_val_accuracy = key, epoch, accuracy


class TrainingCurves(tf_keras.callbacks.Callback):
    """Redraws the loss and accuracy curves (PNG) and the history (JSON) after every epoch.

    The JSON names the run and says whether it finished (finish()), so a resume state of a
    finished run is recognised as stale.
    """

    def __init__(
        self,
        png_path: str,
        json_path: str,
        best: BestEpoch,
        run_id: str,
        history: dict[str, list[float]] | None = None,
    ):
        """history: the epochs so far of a resumed run."""
        super().__init__()
        self.png_path = png_path
        self.json_path = json_path
        self.best = best
        self.run_id = run_id
        self.history: dict[str, list[float]] = {key: list(values) for key, values in (history or {}).items()}
        # The kept epoch's validation confusion matrix, once the run has it (fit.fine_tune).
        self.confusion: dict | None = None
        # What the end of the run adds: calibration, multi-label scores (fit.fine_tune).
        self.final: dict = {}

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        self.write(finished=False)

    def write(self, finished: bool) -> None:
        """Write the history JSON and the curves PNG.

        Args:
            finished: whether the run ended (its kept epoch is final).

        Returns:
            None.
        """
        record = {
            "run_id": self.run_id,
            "finished": finished,
            "best_epoch": self.best.best_epoch,
            "history": self.history,
        }
        if self.confusion is not None:
            record["confusion_matrix"] = self.confusion
        record.update(self.final)
        write_json(self.json_path, record, indent=2)
        plot_training_curves(self.history, self.png_path, best_epoch=self.best.best_epoch)
