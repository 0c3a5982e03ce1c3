"""Training input: labelled samples -> tf.data batches of (clips, label indices).

tf.data maps sample -> clip in parallel and prefetches, so clips are ready before the step
needs them. A clip is decoded, resampled and preprocessed by datasets.sample_clips (the same
preprocess_frame as predict); training ranges are decoded once, in the first epoch, into a
frame cache (sample_clips.RangeCache) that later epochs slice, as decoding every clip again
costs more CPU than two cores can hide behind the model (benchmarks/train_throughput.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from adapter.core.config import MovinetConfig
from adapter.datasets.layout import Sample
from adapter.datasets.sample_clips import RangeCache, clip_targets, read_clip
from adapter.video.preprocessing import CENTRE

# Validation clips are identical every epoch, so they are decoded once and kept in memory
# when they fit in this much.
VALIDATION_CACHE_BYTES = 512 * 2**20

# Photometric jitter of training clips (augment): one draw per clip, the same for all its
# frames, so motion between frames is untouched. No horizontal flip: it would turn a
# left-moving clip into a right-moving one, and direction can be what the labels mean.
BRIGHTNESS_JITTER = 0.1  # added, in [0, 1] pixel units
CONTRAST_JITTER = 0.2  # scale about the clip's mean, 1 +/- this


class ClipLoader:
    """Reads one sample's clip inside tf.data (called through tf.numpy_function).

    Training clips start at a random place in their range; with augment they also get a
    random crop position and photometric jitter. Each draw comes from the per-clip seed
    tf.data passes in, so a seeded run is repeatable whatever the thread interleaving, and
    resumable: the seeds depend on the run's seed and the epoch only.
    Validation clips are centred, centre-cropped and never jittered. With a RangeCache,
    clips come from each range's frames decoded once instead of from the video.
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        config: MovinetConfig,
        *,
        training: bool,
        cache: RangeCache | None = None,
        num_classes: int | None = None,
    ):
        """num_classes: with config.multi_label, the length of each clip's multi-hot targets."""
        self.samples = list(samples)
        self.num_classes = num_classes if config.multi_label else None
        self.config = config
        self.training = training
        self.augment = training and config.augment
        self.cache = cache

    def clip(self, index: int, seed: int) -> tuple[np.ndarray, int | np.ndarray]:
        """One clip of a sample.

        Args:
            index: the sample's position in the samples list.
            seed: the per-clip seed every random draw of this clip comes from.

        Returns:
            (frames, target): n_frames x imgz x imgz x 3 float32 in [0, 1], and the sample's class
            index, or (multi-label) the multi-hot targets of the labels overlapping the clip's frames.
        """
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
        if self.num_classes is not None:
            return frames, clip_targets(sample, clip.first_index, clip.last_index, self.num_classes)
        return frames, sample.label_index

    def __call__(self, index, seed):
        # numpy_function hands over numpy scalars; seeds arrive as any int64.
        frames, label = self.clip(int(index), int(seed) & 0x7FFF_FFFF_FFFF_FFFF)
        return frames, (label if self.num_classes is not None else np.int32(label))


def jitter_clip(frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Small brightness and contrast change, the same for every frame of the clip.

    Args:
        frames: the clip, float32 in [0, 1].
        rng: where the contrast and brightness draws come from.

    Returns:
        The jittered clip, clipped to [0, 1].
    """
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
    first_epoch: int = 0,
    epochs: int = 1,
    num_classes: int | None = None,
) -> tf.data.Dataset:
    """Batches of (clips, label indices), or (multi_label) (clips, multi-hot targets): parallel decoding and prefetch.

    Training yields epochs first_epoch .. epochs-1 one after another, len(samples) // batch_size
    batches each (fit with that steps_per_epoch): each epoch a new order of the samples and
    new clip draws, both from (seed, epoch) alone, so a run resumed at epoch k sees the same
    data from there on as a run that never stopped. The last partial batch of an epoch is
    dropped, so every step has one shape (one trace of the train step); over epochs every
    sample is still drawn.

    Args:
        samples: the labelled ranges to draw clips from.
        config: n_frames, imgz, fps, augment and the default batch_size.
        training: random order, starts, crops and jitter per epoch; else fixed centred clips, once.
        batch_size: overrides config.batch_size.
        seed: where training's order and clip draws come from (None: a random one).
        cache: a RangeCache to slice training clips from instead of decoding each one.
        first_epoch: training only: the first epoch to yield (0-based).
        epochs: training only: yield epochs up to this one (excluded).
        num_classes: the label map's size (needed with config.multi_label).

    Returns:
        A prefetching tf.data.Dataset of (float32 clips, int32 labels).
    """
    if config.multi_label and not num_classes:
        raise ValueError("multi-label clips need num_classes, the length of their targets")
    loader = ClipLoader(samples, config, training=training, cache=cache, num_classes=num_classes)
    target_type, target_shape = (tf.float32, [num_classes]) if config.multi_label else (tf.int32, [])
    batch_size = batch_size or config.batch_size
    clip_shape = [config.n_frames, config.imgz, config.imgz, 3]
    if training:
        per_epoch = (len(samples) // batch_size) * batch_size
        run_seed = seed if seed is not None else int(np.random.default_rng().integers(2**31))

        def epoch_draws(epoch):
            rng = np.random.default_rng([run_seed, int(epoch)])
            order = rng.permutation(len(samples))[:per_epoch].astype(np.int64)
            return order, rng.integers(0, 2**63 - 1, size=per_epoch, dtype=np.int64)

        def epoch_slices(epoch):
            order, clip_seeds = tf.numpy_function(epoch_draws, [epoch], (tf.int64, tf.int64), name="epoch_draws")
            order.set_shape([per_epoch])
            clip_seeds.set_shape([per_epoch])
            return tf.data.Dataset.from_tensor_slices((order, clip_seeds))

        pairs = tf.data.Dataset.range(first_epoch, epochs).flat_map(epoch_slices)
    else:
        pairs = tf.data.Dataset.zip((tf.data.Dataset.range(len(samples)), tf.data.Dataset.range(len(samples))))

    def load(index, clip_seed):
        frames, label = tf.numpy_function(loader, [index, clip_seed], [tf.float32, target_type], name="read_clip")
        frames.set_shape(clip_shape)
        label.set_shape(target_shape)
        return frames, label

    dataset = pairs.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    if not training and len(samples) * int(np.prod(clip_shape)) * 4 <= VALIDATION_CACHE_BYTES:
        dataset = dataset.cache()
    dataset = dataset.batch(batch_size, drop_remainder=training)
    return dataset.prefetch(tf.data.AUTOTUNE)
