#!/usr/bin/env python
"""Generate the preset configurations (configs/*.json) and the DPK manifest (dataloop.json).

Nothing in those files is written by hand: the model configurations come from
adapter.core.presets (per-variant input and embeddings size, MovinetConfig's defaults), the labels from
adapter/data/kinetics_600_labels.txt, the version from adapter.__version__, and the
runner image names from runner_image() below (the one place that names them).

    python tools/build_manifest.py           # (re)write configs/*.json and dataloop.json
    python tools/build_manifest.py --check   # exit 1 if any of them is out of date
    python tools/build_manifest.py --image-registry REGISTRY --output FILE   # your prebuilt images
    python tools/build_manifest.py --public --output FILE   # the app owner's public release
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

from adapter import __version__  # noqa: E402
from adapter.core.presets import (  # noqa: E402
    DEPLOY_EXECUTION_TIMEOUT_S,
    json_number,
    kinetics_600_labels,
    preset_configurations,
)
from adapter.core.variants import VARIANTS  # noqa: E402

logger = logging.getLogger(__name__)

MANIFEST_PATH = ROOT / "dataloop.json"
CONFIGS_DIR = ROOT / "configs"

NAME = "movinet"
DISPLAY_NAME = "MoViNet"
# A release bumps adapter.__version__; the manifest version and the image tags follow.
VERSION = __version__

MODULE_NAME = "movinet-module"
ENTRY_POINT = "adapter/movinet_adapter.py"
CLASS_NAME = "MovinetAdapter"

DEPLOY_CONFIG = "movinet-deploy"
TRAIN_CONFIG = "movinet-train-evaluate"
# Runner images. By default Dataloop's public Python 3.11 runner bases, which anyone's pods can
# pull: the runner installs the codebase's requirements.txt (runtime packages only) when a
# service starts. Prebuilt images (docker/*.Dockerfile: the same bases with the requirements,
# the GPU one with CUDA 12 TensorFlow) start faster; they need a registry of your own
# (--image-registry, tools/build_images.py). docs/deploy.md says which to choose.
PUBLIC_RUNNER_BASES = {
    "cpu": "hub.dataloop.ai/dtlpy-runner-images/cpu:python3.11_opencv",
    "gpu": "hub.dataloop.ai/dtlpy-runner-images/gpu:python3.11_cuda11.8_opencv",
}
IMAGE_NAME = "movinet-adapter"
DOCKERFILES = {"cpu": "docker/cpu.Dockerfile", "gpu": "docker/gpu.Dockerfile"}
CONFIG_IMAGES = {DEPLOY_CONFIG: "cpu", TRAIN_CONFIG: "gpu"}
# Fine-tuning a video model on a T4 can take hours; the platform default would cut it off.
TRAIN_EXECUTION_TIMEOUT_S = 24 * 60 * 60
# DEPLOY_EXECUTION_TIMEOUT_S (adapter.core.presets): a dataset run's parent waits for its
# children inside its own execution, so the presets' predict_embed_timeout is sized from it.
# Replicas of the deploy service: with concurrency 1 a parent waiting for its children holds one
# replica, so the children need others; a queue of one message already asks for another replica.
DEPLOY_MAX_REPLICAS = 4
QUEUE_LENGTH = 1
SCOPES = ("project", "public")

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


def _model_description(model_id: str, model_mode: str) -> str:
    variant = VARIANTS[model_id]
    return (
        f"MoViNet-{model_id.upper()} {model_mode} ({_MODE_DESCRIPTIONS[model_mode]}), "
        f"pretrained on Kinetics-600; expects {variant.imgz}x{variant.imgz} frames "
        f"sampled at {json_number(variant.fps)} fps."
    )


def runner_image(variant: str, registry: str | None = None) -> str:
    """The runner image of a variant: Dataloop's public base, or the prebuilt image in registry.

    Args:
        variant: "cpu" or "gpu" (a key of DOCKERFILES).
        registry: where tools/build_images.py pushed the prebuilt images; None: the public base.

    Returns:
        e.g. hub.dataloop.ai/dtlpy-runner-images/cpu:python3.11_opencv, or
        docker.io/you/movinet-adapter:0.1.0-cpu
    """
    if variant not in DOCKERFILES:
        raise ValueError(f"runner image variant {variant!r} is not one of {sorted(DOCKERFILES)}")
    if registry is None:
        return PUBLIC_RUNNER_BASES[variant]
    return f"{registry.rstrip('/')}/{IMAGE_NAME}:{VERSION}-{variant}"


def _compute_config(
    name: str, pod_type: str, runner_image: str, execution_timeout: int, max_replicas: int, preemptible=None
) -> dict:
    runtime = {
        "podType": pod_type,
        "concurrency": 1,
        "runnerImage": runner_image,
        "autoscaler": {
            "type": "rabbitmq",
            "minReplicas": 0,
            "maxReplicas": max_replicas,
            "queueLength": QUEUE_LENGTH,
        },
    }
    if preemptible is not None:
        runtime["preemptible"] = preemptible
    return {"name": name, "runtime": runtime, "executionTimeout": execution_timeout}


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
    # The labels travel as the model's labels only; an id_to_label_map copy in the
    # configuration would be a second source of truth (and double the manifest).
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


def build_manifest(image_registry: str | None = None, scope: str = "project") -> dict:
    """The dataloop.json manifest as a dict (deterministic: same inputs, same output).

    No codebase: dpks.publish then packs the folder it publishes from (this repository,
    minus what .gitignore lists), so the DPK runs exactly this code.

    Args:
        image_registry: where the prebuilt runner images are; None: Dataloop's public bases (runner_image()).
        scope: "project" (installable in the publishing project) or "public" (the app
            owner's release to every project).

    Returns:
        The manifest.
    """
    if scope not in SCOPES:
        raise ValueError(f"scope {scope!r} is not one of {SCOPES}")
    labels = kinetics_600_labels()
    return {
        "name": NAME,
        "displayName": DISPLAY_NAME,
        "version": VERSION,
        "scope": scope,
        "description": DESCRIPTION,
        "attributes": {key: ATTRIBUTES[key] for key in sorted(ATTRIBUTES)},
        "components": {
            "computeConfigs": [
                _compute_config(
                    DEPLOY_CONFIG,
                    "regular-m",
                    runner_image(CONFIG_IMAGES[DEPLOY_CONFIG], image_registry),
                    DEPLOY_EXECUTION_TIMEOUT_S,
                    DEPLOY_MAX_REPLICAS,
                ),
                # Not preemptible: a reclaimed node would stop a run of hours (runtime.preemptible,
                # dtlpy's KubernetesRuntime field).
                _compute_config(
                    TRAIN_CONFIG,
                    "gpu-t4",
                    runner_image(CONFIG_IMAGES[TRAIN_CONFIG], image_registry),
                    TRAIN_EXECUTION_TIMEOUT_S,
                    2,
                    preemptible=False,
                ),
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
                _model_entry(name, configuration, labels) for name, configuration in preset_configurations().items()
            ],
        },
    }


def dumps(data: dict) -> str:
    """The file text for a generated JSON document: indent 2, trailing newline."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def generated_files() -> dict[Path, str]:
    """Every generated file and the text it must hold."""
    files = {
        CONFIGS_DIR / f"{name}.json": dumps(configuration) for name, configuration in preset_configurations().items()
    }
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
    """Write or check the generated files, or write a release manifest elsewhere.

    Args:
        argv: the arguments (default: sys.argv[1:]).

    Returns:
        The exit code: 0, 1 when --check finds stale files, 2 for a bad combination of options.
    """
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if dataloop.json or configs/*.json differ from what would be generated",
    )
    parser.add_argument(
        "--image-registry",
        metavar="REGISTRY",
        help="registry path of the prebuilt runner images (tools/build_images.py; default: Dataloop's public "
        "runner bases); needs --output",
    )
    parser.add_argument("--public", action="store_true", help="scope public: the app owner's release; needs --output")
    parser.add_argument(
        "--output", type=Path, help="write only the manifest, to this file (dataloop.json stays as generated)"
    )
    args = parser.parse_args(argv)
    custom = args.image_registry is not None or args.public
    if args.output is not None and args.check:
        parser.error("--check checks the committed files; it takes no --output")
    if custom and args.output is None:
        # dataloop.json stays the default that --check and the tests compare against.
        parser.error(
            "--image-registry and --public write a separate manifest: add --output FILE, e.g. --output dataloop.release.json"
        )
    if args.output is not None:
        if args.output.resolve() == MANIFEST_PATH.resolve():
            parser.error(f"--output {args.output}: that is the generated default manifest; choose another file")
        manifest = build_manifest(image_registry=args.image_registry, scope="public" if args.public else "project")
        args.output.write_text(dumps(manifest), encoding="utf-8")
        images = ", ".join(config["runtime"]["runnerImage"] for config in manifest["components"]["computeConfigs"])
        print(f"wrote {args.output} (scope {manifest['scope']}; runner images {images})")
        return 0
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
