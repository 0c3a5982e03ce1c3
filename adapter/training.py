"""Fine-tuning in base mode: dataset -> samples -> tf.data clips -> fit -> the weights load() reads.

train_model_on_folder() is MovinetAdapter.train(): it reads the train and validation
subsets that prepare_data downloaded (adapter.dataset), starts from the pretrained
weights the adapter loaded (the TF Hub model, or fine-tuned weights from the model's
artifacts) with a new head sized to the label map, and fits with Keras. Each epoch its
losses and accuracies go to the model's metrics on the platform, the SDK's
on_epoch_end_callback is called, the epoch is checkpointed in output_path, and the
training-curves picture is redrawn. The epoch with the best validation accuracy is kept
and reloaded into the adapter, so predict() right after train() uses it.

save_trained() is MovinetAdapter.save(); run_offline_training() runs the same train()
and save() from the command line, without a platform.

Input pipeline: tf.data maps sample -> clip in parallel and prefetches, so clips are
ready before the step needs them. A clip is decoded, resampled and preprocessed by
adapter.dataset (the same preprocess_frame as predict); training ranges are decoded once,
in the first epoch, into a frame cache (dataset.RangeCache) that later epochs slice, as
decoding every clip again costs more CPU than two cores can hide behind the model
(benchmarks/train_throughput.py).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import tempfile
import time
from typing import Callable, Sequence

import numpy as np
import tensorflow as tf
import tf_keras
from official.projects.movinet.modeling import movinet_layers
from tqdm import tqdm

from adapter import network
from adapter.config import ConfigError, MovinetConfig
from adapter.dataset import (
    TRAIN_SUBSET,
    DatasetError,
    RangeCache,
    Sample,
    labels_in_subset,
    load_subset,
    read_clip,
    train_and_validation_subsets,
)
from adapter.loading import DEFAULT_WEIGHTS_FILENAME, FineTunedInfo, LoadedModel, load_model, save_finetuned
from adapter.preprocessing import CENTRE

logger = logging.getLogger(__name__)

CHECKPOINTS_DIRNAME = "checkpoints"
BEST_CHECKPOINT = "best"  # the epoch with the best validation accuracy: what training keeps
LAST_CHECKPOINT = "last"
CURVES_FILENAME = "training_curves.png"
HISTORY_FILENAME = "training_history.json"

# Validation clips are identical every epoch, so they are decoded once and kept in memory
# when they fit in this much.
VALIDATION_CACHE_BYTES = 512 * 2**20

# Photometric jitter of training clips (augment): one draw per clip, the same for all its
# frames, so motion between frames is untouched. No horizontal flip: it would turn a
# left-moving clip into a right-moving one, and direction can be what the labels mean.
BRIGHTNESS_JITTER = 0.1  # added, in [0, 1] pixel units
CONTRAST_JITTER = 0.2  # scale about the clip's mean, 1 +/- this

# Keras log key -> (platform figure, legend)
PLATFORM_METRICS = {
    "loss": ("loss", "train"),
    "val_loss": ("loss", "validation"),
    "accuracy": ("accuracy", "train"),
    "val_accuracy": ("accuracy", "validation"),
}


@dataclasses.dataclass
class TrainingResult:
    history: dict[str, list[float]]  # Keras log key -> one value per epoch
    best_epoch: int  # 0-based
    best_val_accuracy: float
    checkpoint_dir: str  # the kept (best) epoch, in the format save() writes
    curves_path: str
    labels: list[str]


# ---------------------------------------------------------------------------------- checks


def check_trainable(config: MovinetConfig) -> None:
    """Only base models train; say so (naming the key) before any data is read."""
    if config.model_mode != "base":
        raise ConfigError(
            f"Fine-tuning trains base models only, but this model has model_mode={config.model_mode!r}. "
            "Set the configuration key 'model_mode' to 'base' to fine-tune (stream models cannot be trained here)."
        )


def training_labels(adapter, config: MovinetConfig) -> list[str]:
    """The model's label map: the configuration's id_to_label_map, else the model entity's labels."""
    labels = config.labels_from_map()
    if not labels:
        entity = getattr(adapter, "_model_entity", None)
        labels = list(entity.labels) if entity is not None and entity.labels else None
    if not labels:
        raise ConfigError(
            "The model has no label map to train for: set the model's labels "
            "(or the configuration key 'id_to_label_map')"
        )
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise ConfigError(f"The model's labels {duplicates!r} appear more than once; each class needs one label")
    return list(labels)


# ---------------------------------------------------------------------------------- input pipeline


class ClipLoader:
    """Reads one sample's clip inside tf.data (called through tf.numpy_function).

    Training clips start at a random place in their range; with augment they also get a
    random crop position and photometric jitter. Each draw comes from the per-clip seed
    tf.data passes in, so a seeded run is repeatable whatever the thread interleaving.
    Validation clips are centred, centre-cropped and never jittered. With a RangeCache,
    clips come from each range's frames decoded once instead of from the video.
    """

    def __init__(
        self, samples: Sequence[Sample], config: MovinetConfig, *, training: bool, cache: RangeCache | None = None
    ):
        self.samples = list(samples)
        self.config = config
        self.training = training
        self.augment = training and config.augment
        self.cache = cache

    def clip(self, index: int, seed: int) -> tuple[np.ndarray, int]:
        sample = self.samples[index]
        rng = np.random.default_rng(seed)
        start_fraction = rng.uniform() if self.training else 0.5
        crop_position = tuple(rng.uniform(size=2)) if self.augment else CENTRE
        if self.cache is not None:
            clip = self.cache.clip(
                sample, n_frames=self.config.n_frames, start_fraction=start_fraction, crop_position=crop_position
            )
        else:
            clip = read_clip(
                sample,
                n_frames=self.config.n_frames,
                imgz=self.config.imgz,
                fps=self.config.frame_rate,
                start_fraction=start_fraction,
                crop_position=crop_position,
            )
        frames = clip.frames
        if self.augment:
            frames = jitter_clip(frames, rng)
        return frames, sample.label_index

    def __call__(self, index, seed):
        # numpy_function hands over numpy scalars; seeds arrive as any int64.
        frames, label = self.clip(int(index), int(seed) & 0x7FFF_FFFF_FFFF_FFFF)
        return frames, np.int32(label)


def jitter_clip(frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Small brightness and contrast change, the same for every frame of the clip."""
    contrast = 1.0 + rng.uniform(-CONTRAST_JITTER, CONTRAST_JITTER)
    brightness = rng.uniform(-BRIGHTNESS_JITTER, BRIGHTNESS_JITTER)
    mean = frames.mean()
    return np.clip((frames - mean) * contrast + mean + brightness, 0.0, 1.0).astype(np.float32)


def make_dataset(
    samples: Sequence[Sample],
    config: MovinetConfig,
    *,
    training: bool,
    batch_size: int | None = None,
    seed: int | None = None,
    cache: RangeCache | None = None,
) -> tf.data.Dataset:
    """Batches of (clips, label indices): parallel decoding and prefetch.

    Training reshuffles every epoch and drops the last partial batch, so every step has
    one shape (one trace of the train step); over epochs every sample is still drawn.
    """
    loader = ClipLoader(samples, config, training=training, cache=cache)
    batch_size = batch_size or config.batch_size
    indices = tf.data.Dataset.range(len(samples))
    if training:
        indices = indices.shuffle(len(samples), seed=seed, reshuffle_each_iteration=True)
    clip_seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    clip_shape = [config.n_frames, config.imgz, config.imgz, 3]

    def load(index, clip_seed):
        frames, label = tf.numpy_function(loader, [index, clip_seed], [tf.float32, tf.int32], name="read_clip")
        frames.set_shape(clip_shape)
        label.set_shape([])
        return frames, label

    dataset = tf.data.Dataset.zip((indices, clip_seeds)).map(load, num_parallel_calls=tf.data.AUTOTUNE)
    if not training and len(samples) * int(np.prod(clip_shape)) * 4 <= VALIDATION_CACHE_BYTES:
        dataset = dataset.cache()
    dataset = dataset.batch(batch_size, drop_remainder=training)
    return dataset.prefetch(tf.data.AUTOTUNE)


# ---------------------------------------------------------------------------------- model


def _classifier_head(model: tf_keras.Model) -> movinet_layers.ClassifierHead:
    heads = [layer for layer in model.layers if isinstance(layer, movinet_layers.ClassifierHead)]
    if len(heads) != 1:
        raise ValueError("expected a MovinetClassifier with one classifier head")
    return heads[0]


def starting_model(adapter, config: MovinetConfig) -> LoadedModel | None:
    """What training starts from: the model the adapter loaded, or the hub model; None for random init."""
    if not config.pretrained:
        logger.warning(
            "pretrained is false: training movinet-%s-base from random initialisation, not from pretrained "
            "weights (expect far more data and epochs to be needed)",
            config.model_id,
        )
        return None
    loaded = getattr(adapter, "loaded", None)
    loaded_config = getattr(adapter, "config", None)
    if loaded is not None and loaded_config is not None and (loaded_config.model_id, loaded_config.model_mode) == (
        config.model_id,
        config.model_mode,
    ):
        return loaded
    # Not loaded yet (or loaded for another variant): the pretrained hub model. If it cannot be
    # had, hub.py's error propagates; training never falls back to random weights silently.
    # (Its Kinetics labels are irrelevant: the head is replaced.)
    return load_model(config, None)


def build_training_model(config: MovinetConfig, labels: Sequence[str], start: LoadedModel | None) -> tf_keras.Model:
    """The base classifier to train: the starting model's backbone and a head sized to labels.

    The head's feature projection is carried over from the starting model (it is not tied
    to the classes); its class layer is new, unless the starting model is already
    fine-tuned on exactly these labels, in which case training continues from it whole.
    """
    backbone = start.model.backbone if start is not None else None
    model = network.build_classifier(
        config.model_id, "base", num_classes=len(labels), backbone=backbone, dropout_rate=config.dropout_rate
    )
    if start is not None:
        source_head, new_head = _classifier_head(start.model), _classifier_head(model)
        # ClassifierHead keeps its projection and class layer as _head and _classifier.
        parts = [(source_head._head, new_head._head)]  # noqa: SLF001
        same_classes = start.finetuned is not None and list(start.labels) == list(labels)
        if same_classes:
            parts.append((source_head._classifier, new_head._classifier))  # noqa: SLF001
        for source, target in parts:
            target.set_weights(source.get_weights())
        logger.info(
            "Starting from %s with %s",
            start.source,
            "its head (same labels)" if same_classes else f"a new head for {len(labels)} classes",
        )
    if config.freeze_backbone:
        # Frozen batch norm also runs in inference mode (Keras 2), keeping the pretrained statistics.
        model.backbone.trainable = False
    return model


def compile_for_training(model: tf_keras.Model, config: MovinetConfig) -> None:
    model.compile(
        optimizer=tf_keras.optimizers.Adam(learning_rate=config.learning_rate),
        loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[tf_keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )


# ---------------------------------------------------------------------------------- callbacks


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


class PlatformMetrics(tf_keras.callbacks.Callback):
    """Sends each epoch's losses and accuracies to the model's metrics (the platform's training plots)."""

    def __init__(self, model_entity):
        super().__init__()
        self.model_entity = model_entity

    def on_epoch_end(self, epoch, logs=None):
        import dtlpy as dl

        logs = logs or {}
        samples = [
            dl.PlotSample(figure=figure, legend=legend, x=epoch, y=float(logs[key]))
            for key, (figure, legend) in PLATFORM_METRICS.items()
            if key in logs
        ]
        try:
            sent = self.model_entity.metrics.create(samples=samples, dataset_id=self.model_entity.dataset_id)
        except Exception as err:  # a lost plot point must not end a training run
            sent = False
            logger.warning("Could not send epoch %d metrics to the platform: %s", epoch, err)
        else:
            if sent is False:
                logger.warning("The platform did not accept epoch %d metrics", epoch)


class BestCheckpoint(tf_keras.callbacks.Callback):
    """Checkpoints every epoch (last) and the best by validation accuracy (ties: lower validation loss)."""

    def __init__(self, checkpoints_dir: str, info: FineTunedInfo):
        super().__init__()
        self.best_dir = os.path.join(checkpoints_dir, BEST_CHECKPOINT)
        self.last_dir = os.path.join(checkpoints_dir, LAST_CHECKPOINT)
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

    def __init__(self, output_path: str, best: BestCheckpoint):
        super().__init__()
        self.png_path = os.path.join(output_path, CURVES_FILENAME)
        self.json_path = os.path.join(output_path, HISTORY_FILENAME)
        self.best = best
        self.history: dict[str, list[float]] = {}

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        with open(self.json_path, "w") as file:
            json.dump({"best_epoch": self.best.best_epoch, "history": self.history}, file, indent=2)
        plot_training_curves(self.history, self.png_path, best_epoch=self.best.best_epoch)


def plot_training_curves(history: dict[str, list[float]], path: str, best_epoch: int | None = None) -> str:
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


# ---------------------------------------------------------------------------------- train / save


def _model_entity(adapter):
    return getattr(adapter, "_model_entity", None)


def _reports_to_platform(entity) -> bool:
    from adapter.offline import OfflineModel

    # An offline model (command line) has no platform to send metrics to.
    return entity is not None and not isinstance(entity, OfflineModel)


def train_model_on_folder(
    adapter,
    data_path: str,
    output_path: str,
    on_epoch_end_callback: Callable[[int, int], None] | None = None,
    seed: int | None = None,
    **kwargs,
) -> TrainingResult:
    """MovinetAdapter.train: fine-tune on data_path (prepare_data's layout); outputs go to output_path.

    seed: makes the run repeatable (weights initialisation, shuffling, clip sampling).
    """
    config = adapter.read_config()
    check_trainable(config)
    if kwargs:
        logger.debug("train() ignores the arguments %s", sorted(kwargs))
    labels = training_labels(adapter, config)
    entity = _model_entity(adapter)
    train_subset, validation_subset = train_and_validation_subsets(entity.metadata if entity is not None else None)
    train_samples = load_subset(data_path, train_subset, labels).samples
    validation_samples = load_subset(data_path, validation_subset, labels).samples

    if seed is not None:
        tf_keras.utils.set_random_seed(seed)
    start = starting_model(adapter, config)
    model = build_training_model(config, labels, start)
    compile_for_training(model, config)

    # At least one full batch per epoch, however few training samples there are.
    train_batch = min(config.batch_size, len(train_samples))
    steps = len(train_samples) // train_batch
    # Training ranges are decoded once into a frame cache; validation clips are fixed and
    # cached by tf.data itself.
    cache_dir = tempfile.mkdtemp(prefix="movinet-frames-")
    range_cache = RangeCache(cache_dir, imgz=config.imgz, fps=config.frame_rate)
    train_data = make_dataset(train_samples, config, training=True, batch_size=train_batch, seed=seed, cache=range_cache)
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
    best = BestCheckpoint(os.path.join(output_path, CHECKPOINTS_DIRNAME), info)
    curves = TrainingCurves(output_path, best)
    callbacks = [best, curves]
    if _reports_to_platform(entity):
        callbacks.append(PlatformMetrics(entity))
    callbacks.append(EpochReporter(config.num_epochs, steps, on_epoch_end_callback))

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

    # Reload the kept epoch the way a deployed model is loaded, so predict() now uses it.
    adapter.load(best.best_dir)
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


def save_trained(adapter, local_path: str) -> str | None:
    """MovinetAdapter.save: the fine-tuned weights and movinet.json in local_path, and the
    weights file name and label map in the model configuration (which the SDK sends to the platform)."""
    loaded = getattr(adapter, "loaded", None)
    if loaded is None or loaded.finetuned is None:
        logger.warning(
            "Nothing fine-tuned to save in %s: the adapter holds the pretrained model, which load() resolves "
            "from TF Hub without any artifact",
            local_path,
        )
        return None
    info = loaded.finetuned
    weights_path = save_finetuned(loaded.model, local_path, info)
    adapter.configuration.update(
        {
            "weights_filename": info.weights_filename,
            "id_to_label_map": {index: label for index, label in enumerate(info.labels)},
        }
    )
    logger.info("Saved fine-tuned movinet-%s-%s (%d labels) to %s", info.model_id, info.model_mode, len(info.labels), weights_path)
    return weights_path


def run_offline_training(
    adapter, data_dir: str, output_dir: str, labels: Sequence[str] | None = None, **train_kwargs
) -> str:
    """`python -m adapter train`: load, train() and save() on a local folder in prepare_data's layout.

    labels: the label map; default the sorted labels of the train subset's class annotations.
    train_kwargs go to train() (e.g. seed). Returns the path of the saved weights.
    """
    config = adapter.read_config()
    check_trainable(config)
    if labels is None:
        labels = labels_in_subset(data_dir, TRAIN_SUBSET)
        if not labels:
            raise DatasetError(f"The {TRAIN_SUBSET!r} subset of {data_dir} has no class annotation to take labels from")
        logger.info("Label map from the %r subset: %s", TRAIN_SUBSET, ", ".join(labels))
    if config.pretrained:
        adapter.load(None)  # the pretrained hub model (its Kinetics labels are replaced below)
    adapter.configuration.update({"id_to_label_map": {index: label for index, label in enumerate(labels)}})
    adapter.train(data_dir, output_dir, **train_kwargs)
    adapter.save(output_dir)
    weights_path = os.path.join(output_dir, adapter.loaded.finetuned.weights_filename)
    logger.info("Fine-tuned weights written to %s; predict with: python -m adapter predict --weights %s VIDEO...", weights_path, output_dir)
    return weights_path
