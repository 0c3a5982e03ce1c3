"""Command line: run the adapter's own hooks on local files, offline and without login.

  movinet predict VIDEO... [--model NAME] [--set KEY=VALUE]... [--weights DIR] [--output FILE] [--plot DIR]
  movinet embed VIDEO... [--model NAME] [--set KEY=VALUE]... [--weights DIR] --output FILE.json
  movinet export-hub --model-id a0 --mode base --output DIR [--checkpoint PATH] [--num-classes N]
  movinet train DATA_DIR --output DIR [--model NAME] [--set KEY=VALUE]... [--labels a,b,c]
  movinet evaluate DATA_DIR [--model NAME] [--set KEY=VALUE]... [--weights DIR] [--subset validation]
                   [--output FILE.json] [--plot FILE.png]
  movinet export-tflite (--model NAME | --weights DIR) [--set KEY=VALUE]... --output FILE.tflite
                   [--quantize none|int8] [--calibration-videos DIR]

`movinet` is the console script of the installed package; `python -m adapter` is the same.
The models are the package's presets (adapter.presets), the entries dataloop.json ships,
so the CLI works from any folder without the repository.
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
from adapter.presets import MODEL_IDS, MODEL_MODES, preset_configurations, preset_model

logger = logging.getLogger("adapter")

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
    from adapter.offline import offline_model
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
    from adapter.loading import METADATA_FILENAME, FineTunedFolderError, find_finetuned

    try:
        found = find_finetuned(weights)
    except FineTunedFolderError as err:
        raise ConfigError(f"--weights: {err}") from err
    if found is None:
        # Never use the pretrained model when the user asked for their own weights.
        raise ConfigError(f"--weights {weights!r} holds no fine-tuned model ({METADATA_FILENAME} written by train/save)")
    return found


def loaded_adapter(args):
    """The adapter for --model/--set/--weights, loaded; refuses a --weights folder without fine-tuned weights.

    Args:
        args: parsed options of predict or embed.
    Returns:
        A loaded MovinetAdapter bound to an offline model entity.
    """
    overrides = parse_set(args.set)
    if args.weights is not None:
        finetuned_info(args.weights)
    adapter = offline_adapter(manifest_model(args.manifest, args.model), overrides)
    adapter.load(args.weights)
    return adapter


def run_predict(args) -> int:
    from tqdm import tqdm

    from adapter.items import local_video

    adapter = loaded_adapter(args)
    if args.plot:
        adapter.on_video_predicted = probability_plotter(adapter, args.plot)
    results = {}
    for path in tqdm(args.videos, desc="videos", unit="video", disable=None):
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


def run_embed(args) -> int:
    from tqdm import tqdm

    from adapter.items import local_video

    adapter = loaded_adapter(args)
    vectors = {}
    for path in tqdm(args.videos, desc="videos", unit="video", disable=None):
        (vector,) = adapter.embed([local_video(path)])
        vectors[path] = vector  # None (null) for a video that failed; named below
    with open(args.output, "w") as file:
        json.dump(vectors, file)
    embedded = sum(vector is not None for vector in vectors.values())
    logger.info("Wrote the embeddings of %d video(s) (%d values each) to %s", embedded, adapter.config.variant_embeddings_size, args.output)
    for name, reason in adapter.failures:
        print(f"FAILED {name}: {reason}", file=sys.stderr)
    return 1 if adapter.failures else 0


def probability_plotter(adapter, directory: str):
    """A MovinetAdapter.on_video_predicted callback writing each video's probability-over-time PNG.

    Args:
        adapter: the loaded adapter (its labels and top_k are used).
        directory: where the pictures go (created if missing).

    Returns:
        The callback, taking (video, prediction, reader).
    """
    from adapter.probability_plot import plot_filename, probability_figure

    os.makedirs(directory, exist_ok=True)
    taken: set[str] = set()

    def write(video, prediction, reader):
        figure = probability_figure(
            prediction,
            adapter.loaded.labels,
            num_frames=reader.num_frames,
            source_fps=reader.source_fps,
            top_k=adapter.config.top_k,
            title=os.path.basename(video.path),
        )
        path = os.path.join(directory, plot_filename(video.path, taken))
        figure.savefig(path)
        logger.info("Wrote the probability-over-time picture of %s to %s", video.name, path)

    return write


def run_export_hub(args) -> int:
    from adapter.network import export_hub_model

    export_hub_model(args.output, args.model_id, args.mode, num_classes=args.num_classes, checkpoint_path=args.checkpoint)
    print(f"Wrote a TF-Hub-format SavedModel of movinet-{args.model_id}-{args.mode} to {args.output}")
    return 0


def run_export_tflite(args) -> int:
    from adapter.tflite_export import export_tflite

    if args.weights is not None:
        info = finetuned_info(args.weights)
        args.model = f"movinet-{info.model_id}-{info.model_mode}"  # the preset the weights were trained from
    args.model = args.model or DEFAULT_MODEL
    # The export converts by itself: no runtime conversion at load.
    args.set = [*(args.set or []), "runtime=tensorflow"]
    adapter = loaded_adapter(args)
    videos = []
    if args.calibration_videos:
        if not os.path.isdir(args.calibration_videos):
            raise ConfigError(f"--calibration-videos {args.calibration_videos!r} is not a folder")
        videos = sorted(
            str(path) for path in Path(args.calibration_videos).rglob("*") if path.is_file()
        )
    description = export_tflite(adapter.loaded, adapter.config, args.output, args.quantize, videos)
    print(
        f"Wrote movinet-{description['model_id']}-{description['model_mode']} ({args.quantize}, "
        f"{len(description['labels'])} labels) to {args.output}"
    )
    return 0


def run_train(args) -> int:
    from adapter.training.offline import run_offline_training

    overrides = parse_set(args.set)
    adapter = offline_adapter(manifest_model(args.manifest, args.model), overrides)
    labels = [label.strip() for label in args.labels.split(",") if label.strip()] if args.labels else None
    run_offline_training(adapter, args.data_dir, args.output, labels=labels)
    return 0


def run_evaluate(args) -> int:
    from tqdm import tqdm

    from adapter import evaluation

    # The folder is checked before the model loads: a wrong path fails in a second, not a minute.
    items, skipped = evaluation.evaluation_items(args.data_dir, args.subset)
    adapter = loaded_adapter(args)
    scores, failed = evaluation.predict_items(
        adapter, items, progress=lambda videos: tqdm(videos, desc="videos", unit="video", disable=None)
    )
    summary = evaluation.summarize(scores, adapter.loaded.labels)
    print(f"Evaluated {args.model} on subset {args.subset!r} of {args.data_dir}")
    print(evaluation.format_report(summary))
    for name, reason in skipped:
        print(f"skipped {name}: {reason}")
    plot = args.plot or (os.path.splitext(args.output)[0] + ".png" if args.output else None)
    if args.output:
        report = {"data_dir": args.data_dir, "subset": args.subset, "model": args.model, "weights": args.weights}
        report.update(summary)
        report["failed"] = [{"item": name, "reason": reason} for name, reason in failed]
        report["skipped"] = [{"item": name, "reason": reason} for name, reason in skipped]
        with open(args.output, "w") as file:
            json.dump(report, file, indent=2)
        logger.info("Wrote the evaluation of %d video(s) to %s", len(scores), args.output)
    if plot:
        title = f"{args.model} on {args.subset}: top-1 accuracy {evaluation.format_ratio(summary['top1_accuracy'])}"
        evaluation.plot_confusion_matrix(summary["confusion_matrix"], summary["classes"], plot, title=title)
        logger.info("Wrote the confusion matrix picture to %s", plot)
    for name, reason in failed:
        print(f"FAILED {name}: {reason}", file=sys.stderr)
    return 1 if failed else 0


def build_parser(prog: str = "movinet") -> argparse.ArgumentParser:
    """The argument parser of every command.

    Args:
        prog: the program name its help and errors show.

    Returns:
        The parser; each command sets `run`, the function that runs it.
    """
    parser = argparse.ArgumentParser(prog=prog, description="MoViNet video classification, offline.")
    commands = parser.add_subparsers(dest="command", required=True)

    def add_model_options(command):
        command.add_argument("--model", default=DEFAULT_MODEL, help=f"model preset, as in dataloop.json (default {DEFAULT_MODEL})")
        command.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one configuration key (repeatable)")
        # Read the model entry from another manifest instead of the package's presets.
        command.add_argument("--manifest", type=Path, default=None, help=argparse.SUPPRESS)

    predict = commands.add_parser("predict", help="classify local video files")
    predict.add_argument("videos", nargs="+", metavar="VIDEO")
    add_model_options(predict)
    predict.add_argument("--weights", help="folder with fine-tuned weights written by save() / train")
    predict.add_argument("--output", help="write Dataloop annotation JSON here as {video path: [annotations]}")
    predict.add_argument("--plot", metavar="DIR", help="write each video's probability-over-time picture (PNG) here")
    predict.set_defaults(run=run_predict)

    embed = commands.add_parser("embed", help="write one unit-length feature vector per local video file")
    embed.add_argument("videos", nargs="+", metavar="VIDEO")
    add_model_options(embed)
    embed.add_argument("--weights", help="folder with fine-tuned weights written by save() / train")
    embed.add_argument("--output", required=True, help="write {video path: vector} JSON here (null for a failed video)")
    embed.set_defaults(run=run_embed)

    export = commands.add_parser("export-hub", help="write a TF-Hub-format SavedModel of the official architecture")
    export.add_argument("--model-id", choices=MODEL_IDS, default="a0")
    export.add_argument("--mode", choices=MODEL_MODES, default="base")
    export.add_argument("--output", required=True)
    export.add_argument("--checkpoint", help="official MoViNet checkpoint to convert (default: random initialisation)")
    export.add_argument("--num-classes", type=int, default=600)
    export.set_defaults(run=run_export_hub)

    tflite = commands.add_parser("export-tflite", help="write the model as a TF Lite file for the edge")
    source = tflite.add_mutually_exclusive_group()
    source.add_argument("--model", help=f"model entry in dataloop.json (default {DEFAULT_MODEL})")
    source.add_argument("--weights", help="folder with fine-tuned weights written by save() / train")
    tflite.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one configuration key (repeatable)")
    tflite.add_argument("--manifest", type=Path, default=None, help=argparse.SUPPRESS)
    tflite.add_argument("--output", required=True, metavar="FILE.tflite")
    tflite.add_argument("--quantize", choices=("none", "int8"), default="none")
    tflite.add_argument("--calibration-videos", metavar="DIR", help="videos whose frames calibrate int8 (required for int8)")
    tflite.set_defaults(run=run_export_tflite)

    train = commands.add_parser("train", help="fine-tune on a folder in the Dataloop training layout")
    train.add_argument("data_dir", metavar="DATA_DIR")
    train.add_argument("--output", required=True)
    add_model_options(train)
    train.add_argument("--labels", help="comma-separated label map (default: sorted labels found in the train subset)")
    train.set_defaults(run=run_train)

    evaluate = commands.add_parser("evaluate", help="score predictions against a subset's class annotations")
    evaluate.add_argument("data_dir", metavar="DATA_DIR", help="a folder in the layout prepare_data downloads")
    add_model_options(evaluate)
    evaluate.add_argument("--weights", help="folder with fine-tuned weights written by save() / train")
    evaluate.add_argument("--subset", default="validation", help="the subset to evaluate (default validation)")
    evaluate.add_argument("--output", metavar="FILE.json", help="write the metrics and each video's prediction here")
    evaluate.add_argument(
        "--plot", metavar="FILE.png", help="write the confusion matrix picture here (default: beside --output, as .png)"
    )
    evaluate.set_defaults(run=run_evaluate)
    return parser


def main(argv: list[str] | None = None, prog: str = "movinet") -> int:
    """Run one command; the console script `movinet` and `python -m adapter` both land here.

    Args:
        argv: the arguments (default: sys.argv[1:]).
        prog: the program name shown in help and errors.

    Returns:
        The exit code: 0, 1 (some video failed), or a MovinetError's exit_code.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # The SDK logs at DEBUG and prints its own warnings with its own handler; keep its
    # records off ours (set before anything imports it).
    logging.getLogger("dtlpy").propagate = False
    args = build_parser(prog).parse_args(argv)
    try:
        return args.run(args)
    except MovinetError as err:
        # The adapter's own errors already name the key, item or folder and the reason.
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
