"""What the commands' --model, --set and --weights name: a model entry, its configuration, a loaded adapter.

The models are the package's presets (adapter.core.presets), the entries dataloop.json ships, so
the commands work from any folder without the repository.
"""

from __future__ import annotations

import json
from pathlib import Path

from adapter.core.config import ConfigError, MovinetConfig
from adapter.core.presets import preset_configurations, preset_model
from adapter.core.variants import model_name

DEFAULT_MODEL = "movinet-a0-base"


def parse_set(values: list[str]) -> dict:
    """--set KEY=VALUE pairs; values parse as JSON where they do (96, true, null), else stay strings."""
    overrides = {}
    for text in values:
        key, sep, raw = text.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. --set imgz=96")
        try:
            overrides[key] = json.loads(raw)
        except json.JSONDecodeError:
            overrides[key] = raw
    return overrides


def manifest_model(manifest_path: Path | None, name: str) -> dict:
    """The model entry --model names: a package preset, or an entry of a given manifest.

    Args:
        manifest_path: a dataloop.json to read the model from; None for the package's presets.
        name: the model name, e.g. "movinet-a1-stream".

    Returns:
        The model entry (name, configuration, labels).
    """
    if manifest_path is None:
        model = preset_model(name)
        if model is not None:
            return model
        names, source = list(preset_configurations()), "the presets"
    else:
        with open(manifest_path) as file:
            models = json.load(file)["components"]["models"]
        for model in models:
            if model["name"] == name:
                return model
        names, source = [model["name"] for model in models], str(manifest_path)
    raise ConfigError(f"--model {name!r} is not a model in {source}; choose one of: {', '.join(names)}")


def offline_adapter(model_json: dict, overrides: dict):
    """A MovinetAdapter bound to a local model entity built from a manifest model entry."""
    configuration = {**model_json.get("configuration", {}), **overrides}
    MovinetConfig.from_dict(configuration)  # fail on a bad key or value before importing TensorFlow

    from adapter.movinet_adapter import MovinetAdapter
    from adapter.platform.offline_model import offline_model

    model = offline_model({**model_json, "configuration": configuration})
    adapter = MovinetAdapter()
    adapter.model_entity = model
    return adapter


def finetuned_info(weights: str):
    """The fine-tuned model described in --weights DIR; an error when the folder holds none.

    Args:
        weights: the folder given with --weights.

    Returns:
        Its FineTunedInfo (movinet.json).
    """
    from adapter.model.loading import METADATA_FILENAME, FineTunedFolderError, find_finetuned

    try:
        found = find_finetuned(weights)
    except FineTunedFolderError as err:
        raise ConfigError(f"--weights: {err}") from err
    if found is None:
        # Never use the pretrained model when the user asked for their own weights.
        raise ConfigError(
            f"--weights {weights!r} holds no fine-tuned model ({METADATA_FILENAME} written by train/save)"
        )
    return found


def loaded_adapter(args):
    """The adapter for --model/--set/--weights, loaded; refuses a --weights folder without fine-tuned weights.

    Args:
        args: parsed options of predict, embed, watch or evaluate (read, never changed).
    Returns:
        A loaded MovinetAdapter bound to an offline model entity.
    """
    return load_adapter(args.model, parse_set(args.set), args.weights, args.manifest)


def load_adapter(model: str, overrides: dict, weights: str | None, manifest: Path | None):
    """A MovinetAdapter for a model entry with overrides, loaded from weights (a fine-tuned folder) or the hub.

    Args:
        model: the model name, e.g. "movinet-a0-base".
        overrides: configuration keys that replace the entry's.
        weights: a folder of fine-tuned weights, or None for the pretrained model.
        manifest: a dataloop.json to read the model from; None for the package's presets.
    Returns:
        The loaded adapter.
    """
    if weights is not None:
        finetuned_info(weights)
    adapter = offline_adapter(manifest_model(manifest, model), overrides)
    adapter.load(weights)
    return adapter


def export_adapter(args, command: str):
    """The adapter an export command writes out: --model, or --weights alone (they name their model).

    Args:
        args: parsed options of export-tflite or export-savedmodel (model, weights, set, manifest); read only.
        command: the command's name, for the error.
    Returns:
        A loaded MovinetAdapter on the TensorFlow runtime (the export converts by itself, so
        no runtime conversion is made at load).
    Raises:
        ConfigError: both --model and --weights are given, or --weights holds no fine-tuned model.
    """
    model = args.model
    if args.weights is not None:
        if args.model is not None:
            raise ConfigError(
                f"{command} takes --model or --weights, not both (the weights name their model). "
                f"Received: --model={args.model!r}, --weights={args.weights!r}"
            )
        info = finetuned_info(args.weights)
        model = model_name(info.model_id, info.model_mode)  # the preset the weights were trained from
    overrides = {**parse_set(args.set or []), "runtime": "tensorflow"}
    return load_adapter(model or DEFAULT_MODEL, overrides, args.weights, args.manifest)
