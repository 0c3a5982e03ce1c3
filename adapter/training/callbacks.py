"""The Keras callbacks of a training run: checkpoints, history and curves, metrics sink, epoch log."""
from __future__ import annotations

import json
import logging
import time
from typing import Callable

import tf_keras
from tqdm import tqdm

from adapter.loading import FineTunedInfo, save_finetuned
from adapter.training.curves import plot_training_curves

logger = logging.getLogger(__name__)

# Keras log key -> (figure, legend) of the platform's training plots
PLATFORM_METRICS = {
    "loss": ("loss", "train"),
    "val_loss": ("loss", "validation"),
    "accuracy": ("accuracy", "train"),
    "val_accuracy": ("accuracy", "validation"),
}

# (epoch, [(figure, legend, value)]) -> whether the receiver accepted them (False: it refused)
MetricsSink = Callable[[int, list[tuple[str, str, float]]], bool]


class EpochReporter(tf_keras.callbacks.Callback):
    """A progress bar per epoch, the epoch's metrics in the log, then the platform's epoch callback."""

    def __init__(self, num_epochs: int, steps: int, on_epoch_end_callback: Callable[[int, int], None] | None = None):
        super().__init__()
        self.num_epochs = num_epochs
        self.steps = steps
        self.on_epoch_end_callback = on_epoch_end_callback
        self._bar = None
        self._started = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()
        self._bar = tqdm(total=self.steps, desc=f"epoch {epoch + 1}/{self.num_epochs}", unit="batch", leave=False)

    def on_train_batch_end(self, batch, logs=None):
        self._bar.update(1)
        if logs and "loss" in logs:
            self._bar.set_postfix(loss=f"{logs['loss']:.4f}")

    def on_epoch_end(self, epoch, logs=None):
        self._bar.close()
        logs = logs or {}
        values = ", ".join(f"{key} {logs[key]:.4f}" for key in PLATFORM_METRICS if key in logs)
        logger.info("Epoch %d/%d: %s (%.1f s)", epoch + 1, self.num_epochs, values, time.perf_counter() - self._started)
        if self.on_epoch_end_callback is not None:
            self.on_epoch_end_callback(epoch, self.num_epochs)

    def on_train_end(self, logs=None):
        if self._bar is not None:
            self._bar.close()


class EpochMetrics(tf_keras.callbacks.Callback):
    """Hands each epoch's losses and accuracies to a metrics sink (the platform's training plots)."""

    def __init__(self, sink: MetricsSink):
        super().__init__()
        self.sink = sink

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        values = [(figure, legend, float(logs[key])) for key, (figure, legend) in PLATFORM_METRICS.items() if key in logs]
        try:
            sent = self.sink(epoch, values)
        except Exception as err:  # a lost plot point must not end a training run
            logger.warning("Could not send epoch %d metrics to the platform: %s", epoch, err)
        else:
            if sent is False:
                logger.warning("The platform did not accept epoch %d metrics", epoch)


class BestCheckpoint(tf_keras.callbacks.Callback):
    """Checkpoints every epoch (last) and the best by validation accuracy (ties: lower validation loss)."""

    def __init__(self, best_dir: str, last_dir: str, info: FineTunedInfo):
        super().__init__()
        self.best_dir = best_dir
        self.last_dir = last_dir
        self.info = info
        self.best_epoch: int | None = None
        self.best_key: tuple[float, float] | None = None
        self.best_val_accuracy = float("nan")

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        save_finetuned(self.model, self.last_dir, self.info)
        accuracy = float(logs.get("val_accuracy", float("nan")))
        key = (accuracy, -float(logs.get("val_loss", float("inf"))))
        if self.best_key is None or key > self.best_key:
            self.best_key, self.best_epoch, self.best_val_accuracy = key, epoch, accuracy
            save_finetuned(self.model, self.best_dir, self.info)


class TrainingCurves(tf_keras.callbacks.Callback):
    """Redraws the loss and accuracy curves (PNG) and the history (JSON) after every epoch."""

    def __init__(self, png_path: str, json_path: str, best: BestCheckpoint):
        super().__init__()
        self.png_path = png_path
        self.json_path = json_path
        self.best = best
        self.history: dict[str, list[float]] = {}

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        with open(self.json_path, "w") as file:
            json.dump({"best_epoch": self.best.best_epoch, "history": self.history}, file, indent=2)
        plot_training_curves(self.history, self.png_path, best_epoch=self.best.best_epoch)
