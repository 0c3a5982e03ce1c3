"""The cache of the tflite runtime's conversions, so a model is converted once.

An entry is keyed by what it was converted from: the source handle or weights file, a digest of
the weights, the variant, class count, input size (and n_frames for base), the precision (for
int8 also a digest of the calibration videos and the ops kept in float), and the TensorFlow and
LiteRT versions. Entries live beside the model (a fine-tuned model's artifacts carry theirs) and in
the user's cache folder; they are written into a temporary folder and renamed into place, and
checked by digest when read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from importlib import metadata

from adapter.core.config import MovinetConfig
from adapter.model.loading import LoadedModel

logger = logging.getLogger(__name__)


CACHE_DIRNAME = "tflite-cache"


# Bump when what is converted changes (signatures, head model), so old entries are not reused.
FORMAT_VERSION = 1


_STEP_FILE, _HEAD_FILE, _MANIFEST_FILE = "step.tflite", "head.tflite", "manifest.json"


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
        from adapter.model.hub import kinetics_handle

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
    if config.precision != "float32":  # float32 keys stay as they were
        key["precision"] = config.precision
    if config.precision == "int8":
        from adapter.runtime.calibration import calibration_files
        from adapter.runtime.conversion import INT8_FLOAT_OPS

        key["calibration_sha256"] = _digest_files(calibration_files(config.calibration_videos))
        key["int8_float_ops"] = list(INT8_FLOAT_OPS)
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
            logger.info("Reusing the TF Lite conversion of %s in %s", config.model_name, folder)
            return entry
    logger.info(
        "Converting %s (imgz %d) to TF Lite for the tflite runtime; this takes seconds to a minute, once",
        config.model_name,
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
    from adapter.runtime import conversion

    info = loaded.finetuned
    # Fine-tuning makes base models only: the conversion is the base clip model.
    if info is None or config.runtime == "tensorflow" or info.model_mode != "base":
        return
    saved = LoadedModel(loaded.model, loaded.labels, source=folder, finetuned=info)
    deployed = config.replace(imgz=info.imgz, n_frames=info.n_frames)
    try:
        cached_conversion(saved, deployed, conversion.convert_base, (conversion.CLIP_FILE,))
    except Exception as err:  # the weights are saved either way; only the replicas' head start is lost
        logger.warning(
            "Could not add the TF Lite conversion to the artifacts in %s (replicas will convert on their first "
            "prediction): %s: %s",
            folder,
            type(err).__name__,
            err,
        )
