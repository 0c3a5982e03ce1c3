"""The fit loop: a TrainingJob (everything the run needs, given explicitly) -> fitted model in output_path.

fine_tune() reads the train and validation subsets that prepare_data downloaded
(datasets.layout), builds the model from the job's starting weights with a head sized to
the label map, and fits with Keras. Each epoch its losses and accuracies go to the job's
metrics sink, the SDK's on_epoch_end_callback is called, the epoch is checkpointed in
output_path, and the training-curves picture is redrawn. The epoch with the best
validation accuracy (multi-label: mAP) is kept; the caller loads it from TrainingResult.checkpoint_dir.
Its validation predictions are drawn as a confusion matrix beside the curves (single-label), and
they calibrate it: with calibrate, one temperature is fitted on their logits (minimising the NLL);
with multi_label, each class's threshold is chosen on them (adapter.evaluation.multilabel). Both
are returned in TrainingResult.calibrated (the kept checkpoint stays as written, its digests
intact); the caller records them in the saved model's movinet.json, which prediction reads them from.

multi_label: the head's logits are trained as independent sigmoids with binary cross-entropy, and
a clip's targets are every label annotated on frames overlapping the clip's (a range annotated
with two labels is one sample).

The model is built, compiled and fitted under a tf.distribute strategy (several GPUs:
MirroredStrategy; batch_size is per device) and, with mixed_precision, in mixed_float16
(adapter.training.scaling). class_weighting "balanced" weighs the loss by the inverse of
each class's share of the train subset (adapter.training.balance).

With a resume state (adapter.training.resume) the run restores the stopped run's
checkpoint (weights and optimizer), its best-so-far record, history and data seed, and
continues at the next epoch instead of starting over: each epoch's data depends on the seed
and the epoch only (adapter.training.pipeline), so the epochs after a resume are those an
uninterrupted run would have trained (with dropout_rate 0; dropout masks are not saved).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import shutil
import tempfile
import uuid
from collections.abc import Callable

import tensorflow as tf
import tf_keras

from adapter.core.config import MovinetConfig
from adapter.datasets.layout import distinct_ranges, load_subset
from adapter.datasets.sample_clips import RangeCache
from adapter.evaluation import calibration, multilabel
from adapter.evaluation.metrics import confusion_matrix
from adapter.evaluation.plots import plot_confusion_matrix
from adapter.model.loading import DEFAULT_WEIGHTS_FILENAME, FineTunedInfo, LoadedModel
from adapter.runtime.results import sigmoid
from adapter.training import balance, checkpoints, scaling
from adapter.training.callbacks import (
    BestEpoch,
    EpochMetrics,
    EpochReporter,
    MetricsSink,
    MultiLabelScores,
    TrainingCurves,
    validation_outputs,
)
from adapter.training.model import build_training_model, compile_for_training
from adapter.training.outputs import CONFUSION_FILENAME, CURVES_FILENAME, HISTORY_FILENAME, RELIABILITY_FILENAME
from adapter.training.pipeline import make_dataset
from adapter.training.resume import (
    CheckpointSink,
    ResumeCheckpoint,
    ResumeState,
    restore_training_state,
    resume_weights_path,
    run_settings,
)

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
    resume: ResumeState | None = None  # a stopped run's checkpoint to continue from
    # Called after each epoch's checkpoint with (output_path, kept checkpoint folders): the platform's upload.
    on_checkpoint: CheckpointSink | None = None
    model_entity_id: str | None = None  # the platform model trained (recorded in checkpoints); None offline
    strategy: tf.distribute.Strategy | None = None  # None: scaling.choose_strategy() (several GPUs: mirrored)


@dataclasses.dataclass
class TrainingResult:
    history: dict[str, list[float]]  # Keras log key -> one value per epoch
    best_epoch: int  # 0-based
    best_val_accuracy: float
    checkpoint_dir: str  # the kept (best) epoch's checkpoint, which load() reads as fine-tuned weights
    curves_path: str
    labels: list[str]
    confusion_path: str | None = None  # the kept epoch's validation confusion matrix (PNG)
    # FineTunedInfo fields fitted on the kept epoch's validation logits (temperature, multi-label
    # thresholds): the caller records them in the model it saves (its checkpoint does not have them).
    calibrated: dict = dataclasses.field(default_factory=dict)


def fine_tune(data_path: str, output_path: str, job: TrainingJob) -> TrainingResult:
    """Fine-tune on data_path (prepare_data's layout); checkpoints, history and curves go to output_path.

    Args:
        data_path: the folder with the job's train and validation subsets.
        output_path: where the run's outputs go (adapter.training.outputs).
        job: configuration, label map, starting weights, metrics sink, epoch callback, seed, resume state.

    Returns:
        The run's history and the kept epoch's checkpoint.
    """
    config, labels = job.config, job.labels
    train_subset, validation_subset = job.subsets
    train_samples = load_subset(data_path, train_subset, labels).samples
    validation_samples = load_subset(data_path, validation_subset, labels).samples
    counts = balance.class_counts(train_samples, labels)
    balance.warn_unsampled_labels(counts, labels, train_subset)
    class_weight = balance.class_weights(counts, config.class_weighting)
    if class_weight is not None:
        balance.log_class_weights(class_weight, counts, labels)
    if config.multi_label:
        # A range annotated with several labels is one sample whose clips carry all of them.
        train_samples, validation_samples = distinct_ranges(train_samples), distinct_ranges(validation_samples)

    if job.seed is not None:
        tf_keras.utils.set_random_seed(job.seed)
    strategy = job.strategy or scaling.choose_strategy()
    mixed = scaling.use_mixed_precision(config.mixed_precision)
    resume = job.resume
    model = _resumed_model(config, labels, resume, strategy, mixed) if resume is not None else None
    if model is None:
        resume = None
        start = job.starting_model()  # outside the scope: only the new model's variables are mirrored
        with strategy.scope():
            model = build_training_model(config, labels, start, mixed)
            compile_for_training(model, config, mixed)
        del start

    # batch_size is per device. At least one full batch per epoch, however few training samples there are.
    replicas = strategy.num_replicas_in_sync
    global_batch = config.batch_size * replicas
    train_batch = min(global_batch, len(train_samples))
    steps = len(train_samples) // train_batch
    # Training ranges are decoded once into a frame cache; validation clips are fixed and
    # cached by tf.data itself.
    cache_dir = tempfile.mkdtemp(prefix="movinet-frames-")
    range_cache = RangeCache(cache_dir, imgz=config.imgz, fps=config.frame_rate)
    initial_epoch = resume.epochs_done if resume is not None else 0
    if resume is not None and resume.data_seed is not None:
        data_seed = resume.data_seed  # the stopped run's: its later epochs see the same data
    else:
        data_seed = job.seed if job.seed is not None else random.getrandbits(31)
    train_data = make_dataset(
        train_samples,
        config,
        training=True,
        batch_size=train_batch,
        seed=data_seed,
        cache=range_cache,
        first_epoch=initial_epoch,
        epochs=config.num_epochs,
        num_classes=len(labels),
    )
    validation_data = make_dataset(
        validation_samples, config, training=False, batch_size=global_batch, num_classes=len(labels)
    )

    os.makedirs(output_path, exist_ok=True)
    info = FineTunedInfo(
        model_id=config.model_id,
        model_mode="base",
        labels=list(labels),
        imgz=config.imgz,
        n_frames=config.n_frames,
        fps=config.frame_rate,
        weights_filename=config.weights_filename or DEFAULT_WEIGHTS_FILENAME,
        multi_label=config.multi_label,
    )
    monitor = "val_map" if config.multi_label else "val_accuracy"
    if resume is None:
        run_id = uuid.uuid4().hex
        best = BestEpoch(monitor=monitor)
    else:
        run_id = resume.run_id
        _carry_checkpoints(resume, output_path)
        best = BestEpoch(resume.best_epoch, resume.best_val_accuracy, resume.best_val_loss, monitor)
    curves = TrainingCurves(
        os.path.join(output_path, CURVES_FILENAME),
        os.path.join(output_path, HISTORY_FILENAME),
        best,
        run_id,
        history=resume.history if resume is not None else None,
    )
    saver = ResumeCheckpoint(
        output_path,
        info,
        run_id,
        config.num_epochs,
        run_settings(config, labels, job.model_entity_id),
        best,
        curves,
        data_seed=data_seed,
        on_saved=job.on_checkpoint,
    )
    callbacks = [best, curves, saver]
    if config.multi_label:  # its val_map decides the kept epoch: it runs first
        callbacks.insert(0, MultiLabelScores(validation_data, list(labels)))
    if job.metrics_sink is not None:
        callbacks.append(EpochMetrics(job.metrics_sink))
    callbacks.append(EpochReporter(config.num_epochs, steps, job.on_epoch_end_callback))

    logger.info(
        "Fine-tuning %s on %d training and %d validation samples (%d labels), %d epochs of %d steps, "
        "clips of %d x %dpx frames at %g fps%s",
        config.model_name,
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
    logger.info(
        "Devices: %d replica(s) under %s (global batch %d = batch_size %d x %d); mixed precision %s (%s)",
        replicas,
        type(strategy).__name__,
        train_batch,
        config.batch_size,
        replicas,
        "on: mixed_float16, float32 head, loss scaling" if mixed else "off: float32",
        f"mixed_precision={config.mixed_precision!r}",
    )
    if resume is not None:
        logger.info(
            "Resuming from epoch %d of %d (the checkpoint of the stopped run in %s; optimizer step %d, "
            "best epoch so far %s): training continues at epoch %d",
            resume.epochs_done,
            config.num_epochs,
            resume.checkpoint_path,
            int(model.optimizer.iterations.numpy()),
            resume.best_epoch + 1 if resume.best_epoch is not None else "none",
            resume.epochs_done + 1,
        )
    try:
        model.fit(
            train_data,
            validation_data=validation_data,
            epochs=config.num_epochs,
            initial_epoch=initial_epoch,
            steps_per_epoch=steps,
            callbacks=callbacks,
            class_weight=class_weight,
            verbose=0,
        )
    finally:
        logger.debug("Frame cache: %.1f MiB in %s (removed)", range_cache.size_bytes() / 2**20, cache_dir)
        shutil.rmtree(cache_dir, ignore_errors=True)
    if replicas > 1:
        # Keras's .weights.h5 reader assigns h5py datasets, which mirrored variables cannot
        # take: predict with a one-device copy.
        model = build_training_model(config, labels, None)
    # The kept epoch's validation clips: its confusion matrix, the temperature, the thresholds.
    # Its checkpoint folder is verified by digests on resume: nothing is written into it; the
    # fitted temperature and thresholds go to the TrainingResult, which the saved model records.
    best_dir = saver.best_dir()
    model.load_weights(os.path.join(best_dir, info.weights_filename))
    logits, targets = validation_outputs(model, validation_data)
    confusion_path = None
    if not config.multi_label:
        matrix = confusion_matrix(targets, logits.argmax(axis=-1), len(labels))
        confusion_path = plot_confusion_matrix(
            matrix,
            list(labels),
            os.path.join(output_path, CONFUSION_FILENAME),
            title=f"{validation_subset} subset, kept epoch {best.best_epoch + 1}",
            unit="clips",
        )
        curves.confusion = {"epoch": best.best_epoch, "labels": list(labels), "counts": matrix.tolist()}
    kept = _calibrate_kept_epoch(config, labels, logits, targets, output_path, f"{validation_subset} subset")
    calibrated = kept.pop("info")
    curves.final = kept
    curves.write(finished=True)

    logger.info(
        "Kept epoch %d/%d (%s %.4f); checkpoints in %s, training curves in %s%s",
        best.best_epoch + 1,
        config.num_epochs,
        monitor,
        best.best_val_accuracy,
        checkpoints.checkpoints_root(output_path),
        curves.png_path,
        f", its validation confusion matrix in {confusion_path}" if confusion_path else "",
    )
    return TrainingResult(
        history=curves.history,
        best_epoch=best.best_epoch,
        best_val_accuracy=best.best_val_accuracy,
        checkpoint_dir=best_dir,
        curves_path=curves.png_path,
        labels=list(labels),
        confusion_path=confusion_path,
        calibrated=calibrated,
    )


def _calibrate_kept_epoch(config: MovinetConfig, labels: list[str], logits, targets, output_path: str, subset: str):
    """The temperature (calibrate) and multi-label thresholds from the kept epoch's validation logits.

    Returns:
        {"info": the FineTunedInfo fields to record, "calibration": report or None, "multi_label": report
        (multi-label runs)}; the reliability diagram is written to output_path.
    """
    multi = config.multi_label
    temperature, report = None, None
    if config.calibrate:
        temperature = calibration.fit_temperature(logits, targets, multi)
        report = calibration.calibration_report(logits, targets, temperature, multi)
        calibration.plot_reliability(
            calibration.prediction_reliability(logits, targets, 1.0, multi),
            calibration.prediction_reliability(logits, targets, temperature, multi),
            os.path.join(output_path, RELIABILITY_FILENAME),
            title=f"{subset}: {len(logits)} clips, temperature {temperature:.3g}",
        )
        logger.info(
            "Calibration on %d validation clips: temperature %.4g; NLL %.4f -> %.4f, ECE (15 bins) %.4f -> %.4f",
            len(logits),
            temperature,
            report["nll_before"],
            report["nll_after"],
            report["ece_before"],
            report["ece_after"],
        )
    result = {"info": {"temperature": temperature}, "calibration": report}
    if multi:
        probabilities = sigmoid(logits, temperature)
        thresholds, floored = multilabel.choose_thresholds(probabilities, targets)
        scores = multilabel.multi_label_report(probabilities, targets, thresholds, labels)
        for label, was_floored in zip(labels, floored):
            scores["per_class"][label]["floored"] = was_floored
        if any(floored):
            logger.warning(
                "Fewer than %d positive validation clips for %s: threshold %.2f instead of an F1-best one",
                multilabel.MIN_POSITIVES,
                ", ".join(repr(label) for label, f in zip(labels, floored) if f),
                multilabel.FLOOR_THRESHOLD,
            )
        logger.info(
            "Multi-label validation: mAP %s, F1 %s (micro) at the chosen thresholds %s",
            _format(scores["map"]),
            _format(scores["f1_micro"]),
            ", ".join(f"{label} {t:.3f}" for label, t in zip(labels, thresholds)),
        )
        result["info"]["thresholds"] = thresholds
        result["multi_label"] = scores
    return result


def _format(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _resumed_model(
    config: MovinetConfig, labels: list[str], state: ResumeState, strategy: tf.distribute.Strategy, mixed: bool
) -> tf_keras.Model | None:
    """The compiled model with the failed run's last weights and optimizer state; None when they do not fit."""
    try:
        weights = None
        if strategy.num_replicas_in_sync > 1:
            # Mirrored variables cannot take Keras's .weights.h5 reader: read on one device, then copy.
            plain = build_training_model(config, labels, None, mixed)
            plain.load_weights(resume_weights_path(state))
            weights = plain.get_weights()
            del plain
        with strategy.scope():
            model = build_training_model(config, labels, None, mixed)
            compile_for_training(model, config, mixed)
            if weights is not None:
                model.set_weights(weights)
            restore_training_state(model, state, config, load_weights=weights is None)
    except (OSError, ValueError, AssertionError, tf.errors.OpError) as err:
        logger.warning(
            "Could not restore the checkpoint %s (%s): training from the start",
            state.checkpoint_path,
            err,
        )
        return None
    return model


def _carry_checkpoints(state: ResumeState, output_path: str) -> None:
    """Copy the resumed checkpoint and the best epoch's into this run's output, so they stay kept and uploaded."""
    for path in dict.fromkeys(p for p in (state.checkpoint_path, state.best_path) if p):
        checkpoints.copy_checkpoint(path, output_path)
