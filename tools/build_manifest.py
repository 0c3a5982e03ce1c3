#!/usr/bin/env python
"""Generate the preset configurations (configs/*.json) and the DPK manifest (dataloop.json).

Nothing in those files is written by hand: the per-variant numbers (frame size, frame
rate, embeddings size) come from adapter.presets.VARIANTS, the shared hyper-parameters from the defaults
of adapter.config.MovinetConfig, and the labels from adapter/data/kinetics_600_labels.txt.

    python tools/build_manifest.py           # (re)write configs/*.json and dataloop.json
    python tools/build_manifest.py --check   # exit 1 if any of them is out of date
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    # Run as a script, only tools/ is on the path; the adapter package lives at the root.
    sys.path.insert(0, str(ROOT))

from adapter.config import MovinetConfig  # noqa: E402
from adapter.presets import MODEL_IDS, MODEL_MODES, VARIANTS, kinetics_600_labels, model_name  # noqa: E402

logger = logging.getLogger(__name__)

MANIFEST_PATH = ROOT / "dataloop.json"
CONFIGS_DIR = ROOT / "configs"

NAME = "movinet"
DISPLAY_NAME = "MoViNet"
VERSION = "0.1.0"
GIT_URL = "https://github.com/dataloop-ai-apps/movinet-adapter.git"

MODULE_NAME = "movinet-module"
ENTRY_POINT = "adapter/movinet_adapter.py"
CLASS_NAME = "MovinetAdapter"

DEPLOY_CONFIG = "movinet-deploy"
TRAIN_CONFIG = "movinet-train-evaluate"
# Runner images with requirements.txt installed (TensorFlow CPU for serving, CUDA for training).
RUNNER_IMAGE_CPU = f"gcr.io/viewo-g/piper/agent/runner/apps/movinet-adapter:{VERSION}-cpu"
RUNNER_IMAGE_GPU = f"gcr.io/viewo-g/piper/agent/runner/apps/movinet-adapter:{VERSION}-gpu"
# Fine-tuning a video model on a T4 can take hours; the platform default would cut it off.
TRAIN_EXECUTION_TIMEOUT_S = 24 * 60 * 60

# Documented keys every preset spells out. Their values are MovinetConfig's defaults,
# except imgz and fps, which are the variant's recommended input, and embeddings_size,
# the variant's feature length (the SDK sizes the model's feature set with it).
SHARED_KEYS = ("hub_version", "batch_size", "num_epochs", "n_frames", "top_k", "learning_rate")

DESCRIPTION = (
    "MoViNet (Mobile Video Networks) video classifiers from TensorFlow Hub, pretrained on "
    "Kinetics-600 human actions. Sizes A0 (fastest) to A5 (most accurate), each as a base "
    "model that classifies whole clips or a stream model that carries a state from frame to "
    "frame. Predicts the top-k actions of each video and fine-tunes on your own labels."
)

ATTRIBUTES = {
    "Provider": "TensorFlow",
    "Category": "Model",
    "Computer Vision": "Video Classification",
    "Media Type": ["Video"],
    "License": "Apache 2.0",
    "Deployed By": "Dataloop",
}

_MODE_DESCRIPTIONS = {
    "base": "classifies each clip as a whole with 3D convolutions",
    "stream": "causal variant that carries a state from one chunk of frames to the next",
}


def _number(value):
    """JSON-friendly number: 12.0 is written as 12."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def preset_configuration(model_id: str, model_mode: str) -> dict:
    """The model configuration of preset movinet-<model_id>-<model_mode> (documented keys only)."""
    defaults = MovinetConfig()
    variant = VARIANTS[model_id]
    configuration = {key: getattr(defaults, key) for key in SHARED_KEYS}
    configuration.update(
        model_id=model_id,
        model_mode=model_mode,
        imgz=variant.imgz,
        fps=_number(variant.fps),
        embeddings_size=variant.embeddings_size,
    )
    MovinetConfig.from_dict(configuration)  # fail here, not on the platform
    return {key: configuration[key] for key in sorted(configuration)}


def preset_configurations() -> dict[str, dict]:
    """{model name: configuration} for every variant and mode, a0-base first."""
    return {
        model_name(model_id, model_mode): preset_configuration(model_id, model_mode)
        for model_id in MODEL_IDS
        for model_mode in MODEL_MODES
    }


def _model_description(model_id: str, model_mode: str) -> str:
    variant = VARIANTS[model_id]
    return (
        f"MoViNet-{model_id.upper()} {model_mode} ({_MODE_DESCRIPTIONS[model_mode]}), "
        f"pretrained on Kinetics-600; expects {variant.imgz}x{variant.imgz} frames "
        f"sampled at {_number(variant.fps)} fps."
    )


def _compute_config(name: str, pod_type: str, runner_image: str, execution_timeout: int | None = None) -> dict:
    config = {
        "name": name,
        "runtime": {
            "podType": pod_type,
            "concurrency": 1,
            "runnerImage": runner_image,
            "autoscaler": {
                "type": "rabbitmq",
                "minReplicas": 0,
                "maxReplicas": 2,
                "queueLength": 100,
            },
        },
    }
    if execution_timeout is not None:
        config["executionTimeout"] = execution_timeout
    return config


def _io(type_: str, name: str, description: str) -> dict:
    return {"type": type_, "name": name, "description": description}


def _functions() -> list[dict]:
    model_in = _io("Model", "model", "Dataloop Model Entity")
    dataset_in = _io("Dataset", "dataset", "Dataloop Dataset Entity")
    filters_in = _io("Json", "filters", "Dataloop Filter DQL")
    return [
        {
            "name": "predict_items",
            "input": [_io("Item[]", "items", "List of video items to classify")],
            "output": [
                _io("Item[]", "items", "The same input items"),
                _io("Annotation[]", "annotations", "The predicted class annotations"),
            ],
            "displayName": "Predict Items",
            "displayIcon": "",
            "description": "Classify the actions in a list of video items",
        },
        {
            "name": "predict_dataset",
            "input": [dataset_in, filters_in],
            "output": [],
            "displayName": "Predict Dataset",
            "displayIcon": "",
            "description": "Classify the actions in the dataset's videos that match the filters",
        },
        {
            "name": "embed_items",
            "input": [_io("Item[]", "items", "List of video items to embed")],
            "output": [
                _io("Item[]", "items", "The items that were embedded"),
                _io("Json[]", "features", "One unit-length feature vector per item"),
            ],
            "displayName": "Embed Items",
            "displayIcon": "",
            "description": "Upload one feature vector per video (the pooled backbone feature) to the model's feature set",
        },
        {
            "name": "embed_dataset",
            "input": [dataset_in, filters_in],
            "output": [],
            "displayName": "Embed Dataset",
            "displayIcon": "",
            "description": "Embed the dataset's videos that match the filters into the model's feature set",
        },
        {
            "name": "train_model",
            "computeConfig": TRAIN_CONFIG,
            "input": [model_in],
            "output": [model_in],
            "displayName": "Train a Model",
            "displayIcon": "",
            "description": "Fine-tune MoViNet on the model's dataset and labels",
        },
        {
            "name": "evaluate_model",
            "computeConfig": TRAIN_CONFIG,
            "input": [model_in, dataset_in, filters_in],
            "output": [model_in, dataset_in],
            "displayName": "Evaluate a Model",
            "displayIcon": "",
            "description": "Predict on the filtered dataset and score the predictions against its annotations",
        },
    ]


def _model_entry(name: str, configuration: dict, labels: list[str]) -> dict:
    configuration = dict(configuration)
    configuration["id_to_label_map"] = {str(index): label for index, label in enumerate(labels)}
    return {
        "name": name,
        "moduleName": MODULE_NAME,
        "scope": "project",
        "status": "pre-trained",
        "inputType": "video",
        "outputType": "class",
        "description": _model_description(configuration["model_id"], configuration["model_mode"]),
        "configuration": configuration,
        "labels": list(labels),
        # The pretrained weights are fetched from TF Hub when the model loads.
        "artifacts": [],
    }


def build_manifest() -> dict:
    """The dataloop.json manifest as a dict (deterministic: same inputs, same output)."""
    labels = kinetics_600_labels()
    return {
        "name": NAME,
        "displayName": DISPLAY_NAME,
        "version": VERSION,
        "scope": "public",
        "description": DESCRIPTION,
        "attributes": {key: ATTRIBUTES[key] for key in sorted(ATTRIBUTES)},
        "codebase": {"type": "git", "gitUrl": GIT_URL, "gitTag": VERSION},
        "components": {
            "computeConfigs": [
                _compute_config(DEPLOY_CONFIG, "regular-m", RUNNER_IMAGE_CPU),
                _compute_config(TRAIN_CONFIG, "gpu-t4", RUNNER_IMAGE_GPU, TRAIN_EXECUTION_TIMEOUT_S),
            ],
            "modules": [
                {
                    "name": MODULE_NAME,
                    "entryPoint": ENTRY_POINT,
                    "className": CLASS_NAME,
                    "computeConfig": DEPLOY_CONFIG,
                    "description": "MoViNet video classification module",
                    "initInputs": [{"type": "Model", "name": "model_entity"}],
                    "functions": _functions(),
                }
            ],
            "models": [
                _model_entry(name, configuration, labels)
                for name, configuration in preset_configurations().items()
            ],
        },
    }


def dumps(data: dict) -> str:
    """The file text for a generated JSON document: indent 2, trailing newline."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def generated_files() -> dict[Path, str]:
    """Every generated file and the text it must hold."""
    files = {CONFIGS_DIR / f"{name}.json": dumps(configuration) for name, configuration in preset_configurations().items()}
    files[MANIFEST_PATH] = dumps(build_manifest())
    return files


def _stale_configs(expected: dict[Path, str]) -> list[Path]:
    """Generated preset files left over from presets that no longer exist."""
    return sorted(path for path in CONFIGS_DIR.glob("movinet-*.json") if path not in expected)


def _relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def check() -> list[str]:
    """Problems that make the committed files differ from what would be generated."""
    expected = generated_files()
    problems = []
    for path, text in expected.items():
        if not path.exists():
            problems.append(f"{_relative(path)} is missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{_relative(path)} differs from what tools/build_manifest.py generates")
    problems.extend(f"{_relative(path)} is not a preset any more" for path in _stale_configs(expected))
    return problems


def write() -> list[Path]:
    """Write the generated files; return those whose content changed."""
    expected = generated_files()
    changed = []
    CONFIGS_DIR.mkdir(exist_ok=True)
    for path, text in expected.items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    for path in _stale_configs(expected):
        path.unlink()
        changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if dataloop.json or configs/*.json differ from what would be generated",
    )
    args = parser.parse_args(argv)
    if args.check:
        problems = check()
        if problems:
            for problem in problems:
                print(f"out of date: {problem}", file=sys.stderr)
            print("Run `python tools/build_manifest.py` and commit the result.", file=sys.stderr)
            return 1
        print("dataloop.json and configs/ are up to date")
        return 0
    changed = write()
    if changed:
        print("wrote " + ", ".join(_relative(path) for path in changed))
    else:
        print("dataloop.json and configs/ were already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
