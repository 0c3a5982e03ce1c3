"""The fit loop: a TrainingJob (everything the run needs, given explicitly) -> fitted model in output_path.

fine_tune() reads the train and validation subsets that prepare_data downloaded
(adapter.dataset), builds the model from the job's starting weights with a head sized to
the label map, and fits with Keras. Each epoch its losses and accuracies go to the job's
metrics sink, the SDK's on_epoch_end_callback is called, the epoch is checkpointed in
output_path, and the training-curves picture is redrawn. The epoch with the best
validation accuracy is kept; the caller loads it from TrainingResult.checkpoint_dir.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import tempfile
from typing import Callable

import tf_keras

from adapter.config import MovinetConfig
from adapter.dataset import RangeCache, load_subset
from adapter.loading import DEFAULT_WEIGHTS_FILENAME, FineTunedInfo, LoadedModel
from adapter.training.callbacks import BestCheckpoint, EpochMetrics, EpochReporter, MetricsSink, TrainingCurves
from adapter.training.model import build_training_model, compile_for_training
from adapter.training.outputs import (
    BEST_CHECKPOINT,
    CURVES_FILENAME,
    HISTORY_FILENAME,
    LAST_CHECKPOINT,
    checkpoint_dir,
)
from adapter.training.pipeline import make_dataset

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class TrainingJob:
    """Everything one fine-tuning run needs; the adapter builds it from the platform's objects."""

    config: MovinetConfig
    labels: list[str]  # the label map, by class index
    subsets: tuple[str, str]  # names of the train and validation subsets in data_path
    # The weights to start from (None: random initialisation); called only once the data is read.
    starting_model: Callable[[], LoadedModel | None]
    metrics_sink: MetricsSink | None = None  # None: nothing reports to a platform (offline)
    on_epoch_end_callback: Callable[[int, int], None] | None = None
    seed: int | None = None  # makes the run repeatable (initialisation, shuffling, clip sampling)


@dataclasses.dataclass
class TrainingResult:
    history: dict[str, list[float]]  # Keras log key -> one value per epoch
    best_epoch: int  # 0-based
    best_val_accuracy: float
    checkpoint_dir: str  # the kept (best) epoch, in the format save() writes
    curves_path: str
    labels: list[str]


def fine_tune(data_path: str, output_path: str, job: TrainingJob) -> TrainingResult:
    """Fine-tune on data_path (prepare_data's layout); checkpoints, history and curves go to output_path.

    Args:
        data_path: the folder with the job's train and validation subsets.
        output_path: where the run's outputs go (adapter.training.outputs).
        job: configuration, label map, starting weights, metrics sink, epoch callback, seed.

    Returns:
        The run's history and the kept epoch's checkpoint.
    """
    config, labels = job.config, job.labels
    train_subset, validation_subset = job.subsets
    train_samples = load_subset(data_path, train_subset, labels).samples
    validation_samples = load_subset(data_path, validation_subset, labels).samples

    if job.seed is not None:
        tf_keras.utils.set_random_seed(job.seed)
    model = build_training_model(config, labels, job.starting_model())
    compile_for_training(model, config)

    # At least one full batch per epoch, however few training samples there are.
    train_batch = min(config.batch_size, len(train_samples))
    steps = len(train_samples) // train_batch
    # Training ranges are decoded once into a frame cache; validation clips are fixed and
    # cached by tf.data itself.
    cache_dir = tempfile.mkdtemp(prefix="movinet-frames-")
    range_cache = RangeCache(cache_dir, imgz=config.imgz, fps=config.frame_rate)
    train_data = make_dataset(
        train_samples, config, training=True, batch_size=train_batch, seed=job.seed, cache=range_cache
    )
    validation_data = make_dataset(validation_samples, config, training=False)

    os.makedirs(output_path, exist_ok=True)
    info = FineTunedInfo(
        model_id=config.model_id,
        model_mode="base",
        labels=list(labels),
        imgz=config.imgz,
        n_frames=config.n_frames,
        fps=config.frame_rate,
        weights_filename=config.weights_filename or DEFAULT_WEIGHTS_FILENAME,
    )
    best = BestCheckpoint(
        checkpoint_dir(output_path, BEST_CHECKPOINT), checkpoint_dir(output_path, LAST_CHECKPOINT), info
    )
    curves = TrainingCurves(os.path.join(output_path, CURVES_FILENAME), os.path.join(output_path, HISTORY_FILENAME), best)
    callbacks = [best, curves]
    if job.metrics_sink is not None:
        callbacks.append(EpochMetrics(job.metrics_sink))
    callbacks.append(EpochReporter(config.num_epochs, steps, job.on_epoch_end_callback))

    logger.info(
        "Fine-tuning movinet-%s-base on %d training and %d validation samples (%d labels), %d epochs of %d steps, "
        "clips of %d x %dpx frames at %g fps%s",
        config.model_id,
        len(train_samples),
        len(validation_samples),
        len(labels),
        config.num_epochs,
        steps,
        config.n_frames,
        config.imgz,
        config.frame_rate,
        ", backbone frozen" if config.freeze_backbone else "",
    )
    try:
        model.fit(train_data, validation_data=validation_data, epochs=config.num_epochs, callbacks=callbacks, verbose=0)
    finally:
        logger.debug("Frame cache: %.1f MiB in %s (removed)", range_cache.size_bytes() / 2**20, cache_dir)
        shutil.rmtree(cache_dir, ignore_errors=True)

    logger.info(
        "Kept epoch %d/%d (validation accuracy %.4f); checkpoints in %s, training curves in %s",
        best.best_epoch + 1,
        config.num_epochs,
        best.best_val_accuracy,
        os.path.dirname(best.best_dir),
        curves.png_path,
    )
    return TrainingResult(
        history=curves.history,
        best_epoch=best.best_epoch,
        best_val_accuracy=best.best_val_accuracy,
        checkpoint_dir=best.best_dir,
        curves_path=curves.png_path,
        labels=list(labels),
    )
