"""The model presets dataloop.json ships and the CLI runs: movinet-<a0..a5>-<base|stream>.

A preset is the variants table (core.variants) plus the documented configuration defaults and the
600 Kinetics labels. The presets live in the package, so an installed copy needs no repository files.
"""

from __future__ import annotations

import importlib.resources

from adapter.core.variants import MODEL_IDS, MODEL_MODES, VARIANTS, model_name


def kinetics_600_labels() -> list[str]:
    """The 600 Kinetics label names, in the order of the pretrained model's outputs."""
    text = importlib.resources.files("adapter").joinpath("data/kinetics_600_labels.txt").read_text()
    labels = [line.strip() for line in text.splitlines() if line.strip()]
    if len(labels) != 600:
        raise RuntimeError(f"kinetics_600_labels.txt holds {len(labels)} labels, expected 600")
    return labels


# Documented keys every preset spells out. Their values are MovinetConfig's defaults,
# except imgz and fps, which are the variant's recommended input.
SHARED_KEYS = ("hub_version", "batch_size", "num_epochs", "n_frames", "top_k", "learning_rate")


# One-minute videos one predict_dataset (or embed_dataset) execution handles: the SDK's
# predict_embed_subset_limit; a larger dataset is split into child executions of this many. What
# one execution processes in CHILD_BUDGET_S at the cost measured on the default (tflite) runtime,
# rounded down, at most the SDK's default of 1000 (benchmarks/predict_cost.py prints them;
# docs/deploy.md, Dataset-scale runs). Longer videos lower it per run (platform.dataset_runs).
PREDICT_SUBSET_LIMITS = {"a0": 1000, "a1": 1000, "a2": 1000, "a3": 1000, "a4": 600, "a5": 250}
# The compute time one child execution of PREDICT_SUBSET_LIMITS one-minute videos is sized to.
CHILD_BUDGET_S = 3 * 60 * 60
# The deploy service's executionTimeout: the parent of a dataset run waits for its children
# inside it, so it bounds the whole run (children run CHILD_BUDGET_S each, in parallel).
DEPLOY_EXECUTION_TIMEOUT_S = 24 * 60 * 60


def longest_video_seconds(subset_limit: int) -> float:
    """The longest video one deploy execution can process before its timeout, at the presets' measured cost.

    A limit of L one-minute videos takes CHILD_BUDGET_S, so one video of L * 60 * (timeout /
    budget) seconds takes the whole DEPLOY_EXECUTION_TIMEOUT_S.

    Args:
        subset_limit: the model's predict_embed_subset_limit.

    Returns:
        Seconds of video.
    """
    return subset_limit * 60.0 * DEPLOY_EXECUTION_TIMEOUT_S / CHILD_BUDGET_S


# The parent's wait for its children (the SDK's predict_embed_timeout): it must end before the
# execution's timeout, leaving time to split the dataset first and to read the children's reports.
PREDICT_EMBED_TIMEOUT_S = DEPLOY_EXECUTION_TIMEOUT_S - 30 * 60


def json_number(value):
    """A JSON-friendly number: 12.0 is written as 12.

    Args:
        value: any value.

    Returns:
        value as an int when it is a float with no fraction, else value unchanged.
    """
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def preset_configuration(model_id: str, model_mode: str) -> dict:
    """The model configuration of preset movinet-<model_id>-<model_mode>.

    Args:
        model_id: a variant of MODEL_IDS, e.g. "a0".
        model_mode: "base" or "stream".

    Returns:
        The documented keys with the variant's imgz, fps and embeddings_size, and the
        SDK's predict_embed_subset_limit and predict_embed_timeout, sorted by key; validated.
    """
    # config imports this module for the variant table, so import it here, not at the top.
    from adapter.core.config import MovinetConfig

    defaults = MovinetConfig()
    variant = VARIANTS[model_id]
    configuration = {key: getattr(defaults, key) for key in SHARED_KEYS}
    configuration.update(model_id=model_id, model_mode=model_mode, imgz=variant.imgz, fps=json_number(variant.fps))
    # The SDK sizes the model's feature set with it: the variant's pooled-feature length.
    configuration["embeddings_size"] = variant.embeddings_size
    configuration["predict_embed_subset_limit"] = PREDICT_SUBSET_LIMITS[model_id]
    configuration["predict_embed_timeout"] = PREDICT_EMBED_TIMEOUT_S
    MovinetConfig.from_dict(configuration)  # fail here, not on the platform
    return {key: configuration[key] for key in sorted(configuration)}


def preset_configurations() -> dict[str, dict]:
    """Every preset's configuration.

    Returns:
        {model name: configuration} for every variant and mode, a0-base first.
    """
    return {
        model_name(model_id, model_mode): preset_configuration(model_id, model_mode)
        for model_id in MODEL_IDS
        for model_mode in MODEL_MODES
    }


def preset_model(name: str) -> dict | None:
    """The model entry of a preset as dataloop.json ships it, without the platform fields.

    Args:
        name: a model name such as "movinet-a1-stream".

    Returns:
        {"name", "configuration", "labels" (the 600 Kinetics labels)}, or None when no
        preset has that name.
    """
    configuration = preset_configurations().get(name)
    if configuration is None:
        return None
    return {"name": name, "configuration": configuration, "labels": kinetics_600_labels()}
