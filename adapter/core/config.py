"""Typed adapter configuration, parsed once from the model entity's configuration dict.

Every key has a default; a wrong value raises ConfigError naming the key, the value
and what is allowed; an unknown key is a warning naming the closest known key.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import math
from collections.abc import Mapping
from typing import Any

from adapter.core.errors import UsageError
from adapter.core.files import is_plain_filename
from adapter.core.variants import MODEL_IDS, MODEL_MODES, VARIANTS, model_name

logger = logging.getLogger(__name__)

RUNTIMES = ("tensorflow", "tflite")
# Numbers the tflite runtime computes in (the conversion's quantization).
PRECISIONS = ("float32", "float16", "int8")

# Keys the Dataloop SDK and platform keep in a model's configuration. They are not
# ours to validate, but they are not typos either.
PLATFORM_KEYS = frozenset(
    {
        "include_background",
        "include_model_annotations",
        "upload_annotations",
        "clean_annotations",
        "overwrite_annotations",
        "upload_features",
        "root_path",
        "data_path",
        "output_path",
        "label_to_id_map",
        "column",
    }
)


# Names users bring from other video and training tools, and the key they mean here.
KEY_ALIASES = {
    "resolution": "imgz",
    "image_size": "imgz",
    "img_size": "imgz",
    "imgsz": "imgz",
    "frame_rate": "fps",
    "num_frames": "n_frames",
    "frames": "n_frames",
    "lr": "learning_rate",
    "epochs": "num_epochs",
    "mode": "model_mode",
    "variant": "model_id",
}


CLASS_WEIGHTINGS = ("none", "balanced")

# Upper bounds of imgz and n_frames, from the memory one clip takes (docs/data-safety.md).
# A clip is n_frames frames of imgz x imgz pixels. Running one through the network raised the
# peak resident memory by 133 (a0), 205 (a2) and 441 (a5) bytes per pixel of the clip
# (benchmarks/clip_memory.py, TensorFlow on CPU); ACTIVATION_BYTES_PER_PIXEL covers the largest
# variant. A clip is bounded by CLIP_MEMORY_BOUND_BYTES: far above MoViNet's own inputs (a5's
# 120 frames at 320 px take 6.3 GB by this estimate) and about what one accelerator or worker
# holds, so a configuration past it is a typo (imgz=100000) that would otherwise be converted
# and cached before every video failed to allocate.
ACTIVATION_BYTES_PER_PIXEL = 512
CLIP_MEMORY_BOUND_BYTES = 16 * 2**30
MAX_CLIP_PIXELS = CLIP_MEMORY_BOUND_BYTES // ACTIVATION_BYTES_PER_PIXEL  # n_frames x imgz x imgz
# One frame alone may take the whole bound: imgz up to isqrt(MAX_CLIP_PIXELS) = 5792.
MAX_IMGZ = math.isqrt(MAX_CLIP_PIXELS)
# Multi-view testing (base): views per clip, and how their probabilities become the clip's.
TEST_CROPS = (1, 3)
VIEW_FUSIONS = ("mean", "max_confidence")


class ConfigError(UsageError, ValueError):
    """A configuration value that the adapter cannot use."""


@dataclasses.dataclass(frozen=True)
class MovinetConfig:
    # Documented keys and defaults (names fixed by the product).
    hub_version: int = 3
    model_id: str = "a0"
    model_mode: str = "base"
    imgz: int = 224
    batch_size: int = 2
    num_epochs: int = 8
    n_frames: int = 13
    top_k: int = 3
    learning_rate: float = 0.001
    # Frame rate the video is resampled to; None means the variant's recommended rate.
    fps: float | None = None
    # A mirror URL or local SavedModel directory used instead of the tfhub.dev handle.
    hub_handle: str | None = None
    # Also label each clip (base) or window (stream) over its own frame range.
    temporal_annotations: bool = False
    # evaluate_model scores top-1 whole-video annotations; temporal ones only when this asks.
    evaluate_temporal_annotations: bool = False
    # Fine-tuning.
    freeze_backbone: bool = False
    pretrained: bool = True
    augment: bool = True
    dropout_rate: float = 0.2
    # float16 compute with float32 variables and head: "auto" (on when TensorFlow sees a GPU), true, false.
    mixed_precision: str | bool = "auto"
    # Loss weights per class: "none", or "balanced" (inversely proportional to the train subset's counts).
    class_weighting: str = "none"
    # While train_model runs, upload the resume checkpoint to the model's artifacts at most this
    # often (minutes; 0: after every epoch). A killed pod loses at most this plus one epoch.
    checkpoint_upload_minutes: float = 10.0
    # Multi-label: independent sigmoids trained with binary cross-entropy; a clip's targets are every
    # label whose annotation overlaps it; predict names every class over its threshold (at most top_k).
    multi_label: bool = False
    # Fit one temperature on the validation logits at the end of training, and predict with it.
    calibrate: bool = True
    # A video or segment whose best (calibrated) probability is below this gets no class annotation.
    min_confidence: float = 0.0
    # Written by save() from movinet.json (which is what predict uses): the fitted temperature and
    # the per-class thresholds of a multi-label model.
    temperature: float | None = None
    class_thresholds: list | None = None
    # Written by save(): the fine-tuned weights in the model's artifacts and their labels.
    weights_filename: str | None = None
    id_to_label_map: dict | None = None
    # Length of the vectors embed uploads (the SDK sizes the feature set with it); None means
    # the variant's pooled-feature size, the only length the network produces.
    embeddings_size: int | None = None
    # How the model runs: "tensorflow" or "tflite" (LiteRT); None: tflite (base on a GPU: tensorflow).
    runtime: str | None = None
    # What the tflite runtime computes in: "float32", "float16" (weights) or "int8" (convolutions;
    # calibrated on calibration_videos). Another than float32 selects the tflite runtime.
    precision: str = "float32"
    # A local folder of videos like the ones to classify, for int8's calibration.
    calibration_videos: str | None = None
    # The SDK's key: videos per predict_dataset/embed_dataset execution (its default is 1000).
    predict_embed_subset_limit: int = 1000
    # The SDK's key: how long (s) a predict_dataset/embed_dataset execution waits for the child
    # executions it starts (its default is 86400); it must end before the execution's timeout.
    predict_embed_timeout: int = 86400

    @property
    def model_name(self) -> str:
        """The variant and mode as one name, e.g. "movinet-a0-base"."""
        return model_name(self.model_id, self.model_mode)

    # Multi-view testing (base): 1 centre crop, or 3 square crops along the frame's long side.
    test_crops: int = 1
    # How the views' probabilities make a clip's: "mean" (average) or "max_confidence" (the surest view).
    view_fusion: str = "mean"
    # Clips per video (base): 0 tiles the whole video; N > 0 takes N evenly spaced clips.
    test_clips: int = 0
    # Temporal segments: seconds of clips (base: centred) or windows (stream: causal) averaged; 0 = off.
    temporal_smoothing: float = 0.0
    # Temporal segments shorter than this (seconds) join the neighbour they fit best; 0 = off.
    min_segment_seconds: float = 0.0
    # A temporal span whose (smoothed) top probability is below this gets no label; 0 = off.
    segment_min_confidence: float = 0.0

    @property
    def frame_rate(self) -> float:
        """The rate (frames per second) videos are resampled to before the model."""
        return float(self.fps) if self.fps is not None else float(VARIANTS[self.model_id].fps)

    @property
    def resolved_runtime(self) -> str:
        """The runtime prediction uses on CPU: runtime when set, else "tflite" (faster per step and to start).

        (runtime.backend.runtime_for keeps unset base models on "tensorflow" where there is a GPU.)
        """
        return self.runtime if self.runtime is not None else "tflite"  # precision needs tflite too

    @property
    def variant_embeddings_size(self) -> int:
        """The length of this variant's embeddings (its pooled backbone feature)."""
        return VARIANTS[self.model_id].embeddings_size

    def check_embeddings_size(self) -> int:
        """The embeddings size to upload with; a set embeddings_size must be the variant's.

        Returns:
            The variant's embeddings size.
        Raises:
            ConfigError: embeddings_size is set to another length (vectors of that length
                cannot be produced, and the SDK would skip every vector).
        """
        expected = self.variant_embeddings_size
        if self.embeddings_size is not None and self.embeddings_size != expected:
            raise ConfigError(
                f"configuration key 'embeddings_size': {self.embeddings_size!r} does not match "
                f"movinet-{self.model_id}, whose embeddings have {expected} values; set it to {expected} or remove it"
            )
        return expected

    @classmethod
    def from_dict(cls, configuration: Mapping[str, Any] | None) -> MovinetConfig:
        """Validate a configuration mapping; absent keys take their defaults."""
        if configuration is None:
            configuration = {}
        if not isinstance(configuration, Mapping):
            raise ConfigError(
                f"the configuration must be a mapping of key to value, got {type(configuration).__name__}"
            )
        configuration = dict(configuration)
        known = {field.name for field in dataclasses.fields(cls)}
        for key in configuration:
            if key in known or key in PLATFORM_KEYS:
                continue
            suggestion = KEY_ALIASES.get(str(key).lower())
            if suggestion is None:
                close = difflib.get_close_matches(str(key), sorted(known), n=1, cutoff=0.6)
                suggestion = close[0] if close else None
            hint = f"; did you mean {suggestion!r}?" if suggestion else ""
            logger.warning("Unknown configuration key %r is ignored%s", key, hint)
        values = {key: configuration[key] for key in known if key in configuration}
        config = cls(**values)
        config.validate()
        return config

    def replace(self, **changes) -> MovinetConfig:
        config = dataclasses.replace(self, **changes)
        config.validate()
        return config

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def validate(self) -> None:
        _check_int(self, "hub_version", minimum=1)
        _check_choice(self, "model_id", MODEL_IDS)
        _check_choice(self, "model_mode", MODEL_MODES)
        # MoViNet downsamples space by 32; smaller frames leave nothing to pool.
        _check_int(self, "imgz", minimum=32)
        _check_int(self, "batch_size", minimum=1)
        _check_int(self, "num_epochs", minimum=1)
        _check_int(self, "n_frames", minimum=1)
        self._check_clip_memory()
        _check_int(self, "top_k", minimum=1)
        _check_int(self, "predict_embed_subset_limit", minimum=1)
        _check_int(self, "predict_embed_timeout", minimum=1)
        _check_number(self, "learning_rate", exclusive_minimum=0.0)
        if self.fps is not None:
            _check_number(self, "fps", exclusive_minimum=0.0)
        _check_number(self, "dropout_rate", minimum=0.0, exclusive_maximum=1.0)
        _check_number(self, "checkpoint_upload_minutes", minimum=0.0)
        if not isinstance(self.mixed_precision, bool) and self.mixed_precision != "auto":
            _fail("mixed_precision", self.mixed_precision, "'auto', true or false")
        _check_choice(self, "class_weighting", CLASS_WEIGHTINGS)
        _check_number(self, "min_confidence", minimum=0.0, maximum=1.0)
        if self.temperature is not None:
            _check_number(self, "temperature", exclusive_minimum=0.0)
        if self.class_thresholds is not None and (
            not isinstance(self.class_thresholds, list)
            or not self.class_thresholds
            or any(
                isinstance(t, bool) or not isinstance(t, (int, float)) or not 0.0 <= t <= 1.0
                for t in self.class_thresholds
            )
        ):
            _fail("class_thresholds", self.class_thresholds, "a non-empty list of numbers in [0, 1], or null")
        for key in (
            "temporal_annotations",
            "evaluate_temporal_annotations",
            "freeze_backbone",
            "pretrained",
            "augment",
            "multi_label",
            "calibrate",
        ):
            _check_bool(self, key)
        if self.multi_label and self.class_weighting != "none":
            # Keras's class_weight reads a one-hot target's argmax: meaningless for several labels at once.
            raise ConfigError(
                f"configuration key 'class_weighting': {self.class_weighting!r} is not allowed with "
                "multi_label true (a clip has several labels); set class_weighting to 'none'"
            )
        if self.hub_handle is not None and (not isinstance(self.hub_handle, str) or not self.hub_handle):
            _fail("hub_handle", self.hub_handle, "a non-empty string or null")
        if self.weights_filename is not None and not is_plain_filename(self.weights_filename):
            # Joined to the model's artifacts folder: a separator or ".." would lead out of it.
            _fail("weights_filename", self.weights_filename, "a file name (no folder separator, not '..') or null")
        if self.id_to_label_map is not None:
            _check_label_map(self.id_to_label_map)
        if self.embeddings_size is not None:
            _check_int(self, "embeddings_size", minimum=1)
        if self.runtime is not None:
            _check_choice(self, "runtime", RUNTIMES)
        _check_choice(self, "precision", PRECISIONS)
        if self.calibration_videos is not None and (
            not isinstance(self.calibration_videos, str) or not self.calibration_videos
        ):
            _fail("calibration_videos", self.calibration_videos, "a folder path or null")
        if self.precision != "float32" and self.runtime == "tensorflow":
            raise ConfigError(
                f"configuration key 'precision': {self.precision!r} needs the tflite runtime, but runtime is "
                "'tensorflow'; set precision to 'float32' or runtime to 'tflite' (or null)"
            )
        if self.precision == "int8" and self.calibration_videos is None:
            raise ConfigError(
                "configuration key 'precision': 'int8' needs 'calibration_videos', a folder of videos like the ones "
                "to classify, to calibrate on"
            )
        self._validate_views_and_segments()

    def _validate_views_and_segments(self) -> None:
        if (
            isinstance(self.test_crops, bool)
            or not isinstance(self.test_crops, int)
            or self.test_crops not in TEST_CROPS
        ):
            _fail("test_crops", self.test_crops, "1 (centre crop) or 3 (three crops along the long side)")
        _check_choice(self, "view_fusion", VIEW_FUSIONS)
        _check_int(self, "test_clips", minimum=0)
        for key in ("temporal_smoothing", "min_segment_seconds"):
            _check_number(self, key, minimum=0.0)
        _check_number(self, "segment_min_confidence", minimum=0.0, exclusive_maximum=1.0)
        if self.model_mode == "stream":
            # A stream model carries its states through every frame in order: one view, every window.
            for key, off in (("test_crops", 1), ("test_clips", 0)):
                if getattr(self, key) != off:
                    raise ConfigError(
                        f"configuration key {key!r}: {getattr(self, key)!r} applies to base models only; "
                        f"set it to {off} or use model_mode 'base'. Received: model_mode='stream'"
                    )

    def _check_clip_memory(self) -> None:
        """imgz alone, then n_frames at this imgz, within the clip memory bound (see MAX_CLIP_PIXELS)."""
        if self.imgz > MAX_IMGZ:
            _fail(
                "imgz",
                self.imgz,
                f"at most {MAX_IMGZ}: one frame of imgz x imgz pixels takes about {ACTIVATION_BYTES_PER_PIXEL} bytes "
                f"of activations per pixel, and a clip is bounded by {CLIP_MEMORY_BOUND_BYTES / 2**30:g} GiB "
                "(MoViNet's own inputs are 172 to 320)",
            )
        max_frames = MAX_CLIP_PIXELS // (self.imgz * self.imgz)
        if self.n_frames > max_frames:
            _fail(
                "n_frames",
                self.n_frames,
                f"at most {max_frames} at imgz={self.imgz}: a clip of n_frames x imgz x imgz pixels takes about "
                f"{ACTIVATION_BYTES_PER_PIXEL} bytes of activations per pixel, bounded by "
                f"{CLIP_MEMORY_BOUND_BYTES / 2**30:g} GiB (lower imgz or n_frames)",
            )

    def labels_from_map(self) -> list[str] | None:
        """id_to_label_map as a list ordered by class index, or None when unset."""
        if self.id_to_label_map is None:
            return None
        return [self.id_to_label_map[key] for key in sorted(self.id_to_label_map, key=int)]


def _fail(key: str, value: Any, allowed: str):
    raise ConfigError(f"configuration key {key!r}: {value!r} is not allowed; expected {allowed}")


def _check_int(config, key, minimum):
    value = getattr(config, key)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        _fail(key, value, f"an integer >= {minimum}")


def _check_number(config, key, minimum=None, exclusive_minimum=None, exclusive_maximum=None, maximum=None):
    value = getattr(config, key)
    allowed = "a number" + "".join(
        text
        for bound, text in (
            (minimum, f" >= {minimum}"),
            (exclusive_minimum, f" > {exclusive_minimum}"),
            (exclusive_maximum, f" < {exclusive_maximum}"),
            (maximum, f" <= {maximum}"),
        )
        if bound is not None
    )
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        _fail(key, value, allowed)
    if (
        (minimum is not None and value < minimum)
        or (exclusive_minimum is not None and value <= exclusive_minimum)
        or (exclusive_maximum is not None and value >= exclusive_maximum)
        or (maximum is not None and value > maximum)
    ):
        _fail(key, value, allowed)


def _check_label_map(mapping):
    key = "id_to_label_map"
    if not isinstance(mapping, Mapping) or not mapping:
        _fail(key, mapping, "a non-empty mapping of class index to label")
    try:
        indices = sorted(int(index) for index in mapping)
    except (TypeError, ValueError):
        bad = [index for index in mapping if not str(index).lstrip("-").isdigit()]
        raise ConfigError(f"configuration key {key!r}: class indices {bad[:5]!r} are not integers") from None
    missing = sorted(set(range(len(indices))) - set(indices))
    if missing or len(set(indices)) != len(indices):
        raise ConfigError(
            f"configuration key {key!r}: class indices must be 0..{len(indices) - 1} without gaps or repeats; "
            f"missing {missing[:10]!r}"
        )
    labels = list(mapping.values())
    bad_labels = [label for label in labels if not isinstance(label, str) or not label]
    if bad_labels:
        raise ConfigError(f"configuration key {key!r}: labels must be non-empty strings, got {bad_labels[:5]!r}")
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise ConfigError(f"configuration key {key!r}: labels {duplicates[:5]!r} appear more than once")


def _check_choice(config, key, choices):
    value = getattr(config, key)
    if value not in choices:
        _fail(key, value, "one of " + ", ".join(repr(choice) for choice in choices))


def _check_bool(config, key):
    value = getattr(config, key)
    if not isinstance(value, bool):
        _fail(key, value, "true or false")
