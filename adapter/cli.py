"""Command line: run the adapter's own hooks on local files, offline and without login.

  python -m adapter predict VIDEO... [--model NAME] [--set KEY=VALUE]... [--weights DIR] [--output FILE]
  python -m adapter export-hub --model-id a0 --mode base --output DIR [--checkpoint PATH] [--num-classes N]
  python -m adapter train DATA_DIR --output DIR [--model NAME] [--set KEY=VALUE]... [--labels a,b,c]
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from adapter.config import ConfigError, MovinetConfig
from adapter.errors import MovinetError
from adapter.presets import MODEL_IDS, MODEL_MODES

logger = logging.getLogger("adapter")

DEFAULT_MANIFEST = Path(__file__).resolve().parent.parent / "dataloop.json"
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


def manifest_model(manifest_path: Path, name: str) -> dict:
    with open(manifest_path) as file:
        models = json.load(file)["components"]["models"]
    for model in models:
        if model["name"] == name:
            return model
    names = ", ".join(model["name"] for model in models)
    raise ConfigError(f"--model {name!r} is not a model in {manifest_path}; choose one of: {names}")


def offline_adapter(model_json: dict, overrides: dict):
    """A MovinetAdapter bound to a local model entity built from a manifest model entry."""
    configuration = {**model_json.get("configuration", {}), **overrides}
    MovinetConfig.from_dict(configuration)  # fail on a bad key or value before importing TensorFlow

    from adapter.movinet_adapter import MovinetAdapter
    from adapter.offline import offline_model
    model = offline_model({**model_json, "configuration": configuration})
    adapter = MovinetAdapter()
    adapter.model_entity = model
    return adapter


def run_predict(args) -> int:
    from tqdm import tqdm

    from adapter.items import local_video

    overrides = parse_set(args.set)
    if args.weights is not None:
        from adapter.loading import METADATA_FILENAME, FineTunedFolderError, find_finetuned

        try:
            found = find_finetuned(args.weights)
        except FineTunedFolderError as err:
            raise ConfigError(f"--weights: {err}") from err
        if found is None:
            # Never predict with the pretrained model when the user asked for their own weights.
            raise ConfigError(f"--weights {args.weights!r} holds no fine-tuned model ({METADATA_FILENAME} written by train/save)")
    adapter = offline_adapter(manifest_model(args.manifest, args.model), overrides)
    adapter.load(args.weights)
    results = {}
    for path in tqdm(args.videos, desc="videos", unit="video"):
        (collection,) = adapter.predict([local_video(path)])
        annotations = collection.to_json()["annotations"]
        results[path] = annotations
        if any(name == path for name, _ in adapter.failures):
            continue
        video_level = [a for a in annotations if a["metadata"]["user"]["movinet"]["level"] == "video"]
        summary = ", ".join(f"{a['label']} {a['metadata']['user']['model']['confidence']:.3f}" for a in video_level)
        tqdm.write(f"{path}: {summary}")
    if args.output:
        with open(args.output, "w") as file:
            json.dump(results, file, indent=2)
        logger.info("Wrote annotations of %d video(s) to %s", len(results), args.output)
    for name, reason in adapter.failures:
        tqdm.write(f"FAILED {name}: {reason}", file=sys.stderr)
    return 1 if adapter.failures else 0


def run_export_hub(args) -> int:
    from adapter.network import export_hub_model

    export_hub_model(args.output, args.model_id, args.mode, num_classes=args.num_classes, checkpoint_path=args.checkpoint)
    print(f"Wrote a TF-Hub-format SavedModel of movinet-{args.model_id}-{args.mode} to {args.output}")
    return 0


def run_train(args) -> int:
    from adapter.training.offline import run_offline_training

    overrides = parse_set(args.set)
    adapter = offline_adapter(manifest_model(args.manifest, args.model), overrides)
    labels = [label.strip() for label in args.labels.split(",") if label.strip()] if args.labels else None
    run_offline_training(adapter, args.data_dir, args.output, labels=labels)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m adapter", description="MoViNet video classification, offline.")
    commands = parser.add_subparsers(dest="command", required=True)

    def add_model_options(command):
        command.add_argument("--model", default=DEFAULT_MODEL, help=f"model entry in dataloop.json (default {DEFAULT_MODEL})")
        command.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one configuration key (repeatable)")
        command.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST, help=argparse.SUPPRESS)

    predict = commands.add_parser("predict", help="classify local video files")
    predict.add_argument("videos", nargs="+", metavar="VIDEO")
    add_model_options(predict)
    predict.add_argument("--weights", help="folder with fine-tuned weights written by save() / train")
    predict.add_argument("--output", help="write Dataloop annotation JSON here as {video path: [annotations]}")
    predict.set_defaults(run=run_predict)

    export = commands.add_parser("export-hub", help="write a TF-Hub-format SavedModel of the official architecture")
    export.add_argument("--model-id", choices=MODEL_IDS, default="a0")
    export.add_argument("--mode", choices=MODEL_MODES, default="base")
    export.add_argument("--output", required=True)
    export.add_argument("--checkpoint", help="official MoViNet checkpoint to convert (default: random initialisation)")
    export.add_argument("--num-classes", type=int, default=600)
    export.set_defaults(run=run_export_hub)

    train = commands.add_parser("train", help="fine-tune on a folder in the Dataloop training layout")
    train.add_argument("data_dir", metavar="DATA_DIR")
    train.add_argument("--output", required=True)
    add_model_options(train)
    train.add_argument("--labels", help="comma-separated label map (default: sorted labels found in the train subset)")
    train.set_defaults(run=run_train)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # The SDK logs at DEBUG and prints its own warnings with its own handler; keep its
    # records off ours (set before anything imports it).
    logging.getLogger("dtlpy").propagate = False
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except MovinetError as err:
        # The adapter's own errors already name the key, item or folder and the reason.
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
