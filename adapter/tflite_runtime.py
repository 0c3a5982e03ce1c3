"""The "tflite" runtime: stream models run frame by frame by the LiteRT interpreter.

(Base models' clip model and classifier: tflite_base.py; the choice and the cache are here.)

The loaded stream model is converted once (tflite_export.stream_step_function: one frame in,
the states as inputs and outputs) and cached beside the model, keyed by what it was converted
from: the source handle or weights file, a digest of the weights, the input size, the class
count and the TensorFlow version. The next load reuses the file and needs no conversion.

The classifier keeps StreamVideoClassifier's contract (segments(), classify(), embed()) and its
results: the model pools its head feature as a running sum and frame count in the states, so a
window's own probabilities are the head (a second, tiny TF Lite model) applied to the mean of
the window's frames, and the embedding is the mean over every frame seen.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from importlib import metadata
from typing import Callable, Iterable, Iterator

import numpy as np

from adapter.clips import Clip
from adapter.config import MovinetConfig
from adapter.devices import usable_cores
from adapter.inference import _HEAD_POOL_SUM, BaseVideoClassifier, StreamVideoClassifier, WindowClassifier
from adapter.loading import LoadedModel

logger = logging.getLogger(__name__)

CACHE_DIRNAME = "tflite-cache"
# Bump when what is converted changes (signatures, head model), so old entries are not reused.
FORMAT_VERSION = 1
_STEP_FILE, _HEAD_FILE, _MANIFEST_FILE = "step.tflite", "head.tflite", "manifest.json"


def make_classifier(config: MovinetConfig, loaded: LoadedModel, converter: Callable | None = None):
    """The classifier prediction and embedding use, for the configuration's runtime.

    Args:
        config: the loaded configuration (model_mode, runtime, imgz, batch_size).
        loaded: the model load_model() resolved.
        converter: converts (loaded, config) to the step and head flatbuffers; the default
            converts with tflite_export (tests pass a spy).
    Returns:
        A BaseVideoClassifier, TFLiteBaseClassifier, StreamVideoClassifier or
        TFLiteStreamClassifier; all offer classify() and embed(), the stream ones segments() too.
    """
    runtime = runtime_for(config)
    if config.model_mode == "base":
        if runtime == "tensorflow":
            return BaseVideoClassifier(loaded.model, config.batch_size)
        from adapter import tflite_base

        (clip,) = cached_conversion(loaded, config, converter or tflite_base.convert_base, (tflite_base.CLIP_FILE,))
        return tflite_base.TFLiteBaseClassifier(clip)
    if runtime == "tensorflow":
        return StreamVideoClassifier(loaded.model)
    step, head = cached_conversion(loaded, config, converter or convert_stream)
    return TFLiteStreamClassifier(step, head)


def runtime_for(config: MovinetConfig, gpus: list | None = None) -> str:
    """The runtime the model runs on here: the configured one, else tflite, except base models on a GPU.

    Args:
        config: the configuration (runtime, model_mode).
        gpus: the visible GPUs (None: ask TensorFlow, only when it matters).
    Returns:
        "tensorflow" or "tflite".
    """
    if config.runtime is None and config.model_mode == "base":
        from adapter.fast_conv import temporal_taps_preferred

        # LiteRT runs on the CPU only: a GPU service keeps the base network on it (unmeasured there).
        return "tflite" if temporal_taps_preferred(gpus) else "tensorflow"
    return config.resolved_runtime


def _digest_files(paths: Iterable[str]) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(os.path.basename(path).encode())
        with open(path, "rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def weight_files(loaded: LoadedModel) -> list[str]:
    """The files holding loaded's weights (fine-tuned weights file, or the SavedModel's variables).

    Args:
        loaded: a loaded model.
    Returns:
        Their paths.
    """
    if loaded.finetuned is not None:
        return [os.path.join(loaded.source, loaded.finetuned.weights_filename)]
    variables = os.path.join(loaded.source, "variables")
    return [os.path.join(variables, name) for name in os.listdir(variables)]


def conversion_key(loaded: LoadedModel, config: MovinetConfig) -> dict:
    """What a conversion is made from: another value of any field means another conversion.

    Args:
        loaded: the loaded model (its source and weights).
        config: gives the variant and input size.
    Returns:
        A JSON-able dict; its digest names the cache entry.
    """
    import tensorflow as tf

    if loaded.finetuned is not None:
        source = f"finetuned:{loaded.finetuned.weights_filename}"
    else:  # the handle, not the local path: the tfhub cache path differs between machines
        from adapter.hub import kinetics_handle

        source = config.hub_handle or kinetics_handle(config)
    key = {
        "format": FORMAT_VERSION,
        "source": source,
        "weights_sha256": _digest_files(weight_files(loaded)),
        "variant": f"{config.model_id}-{config.model_mode}",
        "num_classes": len(loaded.labels),
        "imgz": config.imgz,
        "tensorflow": tf.__version__,
        "litert": metadata.version("ai-edge-litert"),
    }
    if config.model_mode == "base":  # a fixed-length clip model (stream keys stay as they were)
        key["n_frames"] = config.n_frames
    return key


def _key_digest(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]


def cache_dirs(loaded: LoadedModel) -> list[str]:
    """Where conversions are cached, in order: beside the model, else the user's cache folder.

    Args:
        loaded: the loaded model.
    Returns:
        Candidate folders.
    """
    user = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return [os.path.join(loaded.source, CACHE_DIRNAME), os.path.join(user, "movinet-adapter", CACHE_DIRNAME)]


def _read_entry(folder: str, key: dict, names: tuple[str, ...]) -> tuple[bytes, ...] | None:
    """The entry's files when complete and intact (the manifest's digests match), else None."""
    try:
        with open(os.path.join(folder, _MANIFEST_FILE)) as file:
            manifest = json.load(file)
        contents = []
        for name in names:
            with open(os.path.join(folder, name), "rb") as file:
                data = file.read()
            if hashlib.sha256(data).hexdigest() != manifest["files"][name]:
                raise ValueError(f"{name} does not match its digest")
            contents.append(data)
        if manifest["key"] != key:
            raise ValueError("made from something else")
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as err:
        logger.warning("Ignoring the TF Lite cache entry %s: %s", folder, err)
        return None
    return tuple(contents)


def _write_entry(folder: str, key: dict, files: dict[str, bytes]) -> None:
    """Write the entry into a temporary folder and rename it into place, so readers never see half of it."""
    parent = os.path.dirname(folder)
    os.makedirs(parent, exist_ok=True)
    partial = tempfile.mkdtemp(prefix=".partial-", dir=parent)
    os.chmod(partial, 0o755)  # mkdtemp makes it private; the cache is shared like the model
    for name, data in files.items():
        with open(os.path.join(partial, name), "wb") as file:
            file.write(data)
    manifest = {"key": key, "files": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}}
    with open(os.path.join(partial, _MANIFEST_FILE), "w") as file:
        json.dump(manifest, file, indent=2)
    if os.path.isdir(folder):  # a damaged entry: replace it
        shutil.rmtree(folder, ignore_errors=True)
    try:
        os.rename(partial, folder)
    except OSError:  # another process won the race; its entry is as good
        shutil.rmtree(partial, ignore_errors=True)


def cached_conversion(
    loaded: LoadedModel, config: MovinetConfig, converter: Callable, names: tuple[str, ...] = (_STEP_FILE, _HEAD_FILE)
) -> tuple[bytes, ...]:
    """The flatbuffers for loaded (stream: step and head; base: the clip model): cached, or converted and cached.

    Args:
        loaded: the loaded model.
        config: the configuration it was loaded with.
        converter: (loaded, config) -> a flatbuffer per name, called on a miss.
        names: the entry's file names, in the order converter returns them.
    Returns:
        The flatbuffers, in the order of names.
    """
    key = conversion_key(loaded, config)
    name = _key_digest(key)
    folders = [os.path.join(root, name) for root in cache_dirs(loaded)]
    for folder in folders:
        entry = _read_entry(folder, key, names)
        if entry is not None:
            logger.info("Reusing the TF Lite conversion of %s in %s", key["variant"], folder)
            return entry
    logger.info(
        "Converting movinet-%s (imgz %d) to TF Lite for the tflite runtime; this takes seconds to a minute, once",
        key["variant"],
        config.imgz,
    )
    flatbuffers = tuple(converter(loaded, config))
    for folder in folders:
        try:
            _write_entry(folder, key, dict(zip(names, flatbuffers)))
        except OSError as err:
            logger.warning("Cannot cache the TF Lite conversion in %s: %s", folder, err)
            continue
        logger.info("Cached the TF Lite conversion in %s", folder)
        if loaded.finetuned is None:
            break
        # Fine-tuned weights come down into a new folder on each deploy: keep a copy the next finds.
    return flatbuffers


def convert_into_artifacts(loaded: LoadedModel, config: MovinetConfig, folder: str) -> None:
    """Put the tflite runtime's conversion of fine-tuned weights saved in folder into folder/tflite-cache.

    The SDK uploads folder as the model's artifacts, so a replica that downloads them reuses the
    conversion on its first prediction instead of making it (a service scaling from zero).
    Nothing is made for the "tensorflow" runtime; a failed conversion is logged, and the
    replicas convert as they would without it.

    Args:
        loaded: the fine-tuned model the adapter holds; its weights are saved in folder.
        config: the adapter's configuration (runtime; the deploy uses the weights' own imgz
            and n_frames, as load() does).
        folder: the artifacts folder save() wrote.
    Returns:
        None (cached_conversion logs where the entry went, or why a folder was not writable).
    """
    from adapter import tflite_base

    info = loaded.finetuned
    # Fine-tuning makes base models only: the conversion is the base clip model.
    if info is None or config.runtime == "tensorflow" or info.model_mode != "base":
        return
    saved = LoadedModel(loaded.model, loaded.labels, source=folder, finetuned=info)
    deployed = config.replace(imgz=info.imgz, n_frames=info.n_frames)
    try:
        cached_conversion(saved, deployed, tflite_base.convert_base, (tflite_base.CLIP_FILE,))
    except Exception as err:  # the weights are saved either way; only the replicas' head start is lost
        logger.warning(
            "Could not add the TF Lite conversion to the artifacts in %s (replicas will convert on their first "
            "prediction): %s: %s",
            folder,
            type(err).__name__,
            err,
        )


def convert_stream(loaded: LoadedModel, config: MovinetConfig) -> tuple[bytes, bytes]:
    """Convert a stream model's one-frame step and its classifier head to TF Lite.

    Args:
        loaded: the loaded stream model.
        config: gives imgz.
    Returns:
        (step flatbuffer, head flatbuffer).
    """
    import tensorflow as tf

    from adapter import tflite_export
    from adapter.network import classifier_head

    model = loaded.model
    step_function, initial = tflite_export.stream_step_function(model, config.imgz)
    head_layer = classifier_head(model)
    pooled = initial[_HEAD_POOL_SUM]

    @tf.function(input_signature=[tf.TensorSpec(pooled.shape, tf.float32, name="pooled")])
    def head(pooled):
        return {tflite_export.LOGITS_OUTPUT: head_layer(pooled, training=False)}

    step = tflite_export.convert(step_function, model, "none")
    return step, tflite_export.convert(head.get_concrete_function(), model, "none")


class TFLiteStreamClassifier(WindowClassifier):
    """Stream model as TF Lite: frames one at a time, states carried; StreamVideoClassifier's results."""

    def __init__(self, step: bytes, head: bytes, num_threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        threads = self._threads = num_threads or usable_cores()  # one interpreter thread per core
        # BUILTIN applies LiteRT's default delegate, XNNPACK, with these threads.
        kwargs = dict(num_threads=threads, experimental_op_resolver_type=OpResolverType.BUILTIN)
        self._step = Interpreter(model_content=step, **kwargs).get_signature_runner()
        self._head = Interpreter(model_content=head, **kwargs).get_signature_runner()
        details = self._step.get_input_details()
        self._initial = {name: np.zeros(d["shape"], d["dtype"]) for name, d in details.items() if name != "image"}
        self.imgz = int(details["image"]["shape"][2])

    def _steps(self, windows: Iterable[Clip]) -> Iterator[tuple[Clip, np.ndarray, dict, dict]]:
        """Run every frame of each window; yields (window, logits after it, states before, states after)."""
        states = self._initial
        for window in windows:
            before = states
            for frame in window.frames:
                outputs = self._step(image=np.asarray(frame, np.float32)[None, None], **states)
                logits = outputs.pop("logits")
                states = outputs
            yield window, logits, before, states

    def _head_logits(self, feature: np.ndarray) -> np.ndarray:
        return self._head(pooled=feature)["logits"]
