"""Command line: run the adapter's own hooks on local files, offline and without login.

  movinet predict VIDEO... [--model NAME] [--set KEY=VALUE]... [--weights DIR] [--output FILE] [--plot DIR]
  movinet embed VIDEO... [--model NAME] [--set KEY=VALUE]... [--weights DIR] --output FILE.json
  movinet watch SOURCE [--model NAME] [--set KEY=VALUE]... [--weights DIR] [--every SECONDS]
                [--stall-timeout SECONDS] [--format NAME]
  movinet export-hub --model-id a0 --mode base --output DIR [--checkpoint PATH] [--num-classes N]
  movinet train DATA_DIR --output DIR [--model NAME] [--set KEY=VALUE]... [--labels a,b,c] [--weights DIR]
  movinet evaluate DATA_DIR [--model NAME] [--set KEY=VALUE]... [--weights DIR] [--subset validation]
                   [--output FILE.json] [--plot FILE.png]
  movinet export-savedmodel (--model NAME | --weights DIR) [--set KEY=VALUE]... --output DIR
  movinet export-tflite (--model NAME | --weights DIR) [--set KEY=VALUE]... --output FILE.tflite
                   [--quantize none|float16|int8] [--calibration-videos DIR]

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
WATCH_MODEL = "movinet-a0-stream"  # watch runs stream models only
# export-tflite's --quantize choices (adapter.tflite_export.QUANTIZATIONS, which imports TensorFlow).
QUANTIZATIONS = ("none", "float16", "int8")


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


def watched_mode(args) -> str:
    """The model mode watch would load, known without loading it (a base model is refused first).

    Args:
        args: parsed options of watch.
    Returns:
        "base" or "stream".
    """
    if args.weights is not None:
        return finetuned_info(args.weights).model_mode
    configuration = {**manifest_model(args.manifest, args.model).get("configuration", {}), **parse_set(args.set)}
    return MovinetConfig.from_dict(configuration).model_mode


def run_watch(args) -> int:
    import signal

    from adapter.live import END_OF_STREAM, STOPPED, LiveSource
    from adapter.preprocessing import preprocess_frame
    from adapter.watch import warm_up, watch_periods

    if not (args.every > 0 and args.every < float("inf")):
        raise ConfigError(f"--every must be a positive number of seconds. Received: every={args.every!r}")
    if not (args.stall_timeout > 0 and args.stall_timeout < float("inf")):
        raise ConfigError(f"--stall-timeout must be a positive number of seconds. Received: stall_timeout={args.stall_timeout!r}")
    mode = watched_mode(args)
    if mode != "stream":
        raise ConfigError(
            f"watch runs stream models only (frame by frame), not a {mode} model. Received: model={args.model!r}, "
            f"model_mode={mode!r}; use a -stream preset (e.g. --model {WATCH_MODEL})"
        )
    adapter = loaded_adapter(args)
    config = adapter.config
    warm_up(adapter.classifier, config.imgz)
    source = LiveSource(
        args.source,
        config.frame_rate,
        stall_timeout=args.stall_timeout,
        transform=lambda image: preprocess_frame(image, config.imgz),
        input_format=args.format,
    )
    interrupted = []

    def on_interrupt(signum, frame):
        interrupted.append(signum)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C stops at once
        source.stop()

    previous = signal.signal(signal.SIGINT, on_interrupt)
    logger.info("Watching %s at %g fps, a line every %g s of video", source.name, config.frame_rate, args.every)
    try:
        periods = watch_periods(
            source, adapter.classifier, adapter.loaded.labels, fps=config.frame_rate, every=args.every, top_k=config.top_k
        )
        for period in periods:
            print(json.dumps(period.to_json()), flush=True)
    finally:
        signal.signal(signal.SIGINT, previous)
    reason = "Ctrl-C" if interrupted else source.end_reason
    detail = f" ({source.end_detail})" if source.end_detail else ""
    damaged = f"; {source.corrupt_packets} corrupt packet(s) skipped" if source.corrupt_packets else ""
    logger.info("Stopped watching %s: %s%s%s", source.name, reason, detail, damaged)
    return 0 if interrupted or source.end_reason in (END_OF_STREAM, STOPPED) else 1


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
        if args.model is not None:
            raise ConfigError(
                f"export-tflite takes --model or --weights, not both (the weights name their model). "
                f"Received: --model={args.model!r}, --weights={args.weights!r}"
            )
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


def run_export_savedmodel(args) -> int:
    from adapter.savedmodel_export import export_savedmodel

    if args.weights is not None:
        info = finetuned_info(args.weights)
        args.model = f"movinet-{info.model_id}-{info.model_mode}"  # the preset the weights were trained from
    args.model = args.model or DEFAULT_MODEL
    adapter = loaded_adapter(args)
    written = export_savedmodel(adapter.loaded, adapter.config, args.output)
    print(
        f"Wrote a TF-Hub-format SavedModel of movinet-{written['model_id']}-{written['model_mode']} "
        f"({len(written['labels'])} labels) to {args.output}"
    )
    return 0


def run_train(args) -> int:
    from adapter.training.offline import run_offline_training

    overrides = parse_set(args.set)
    adapter = offline_adapter(manifest_model(args.manifest, args.model), overrides)
    labels = [label.strip() for label in args.labels.split(",") if label.strip()] if args.labels else None
    if args.weights is not None:
        finetuned_info(args.weights)  # refuse a folder without fine-tuned weights before reading data
    run_offline_training(adapter, args.data_dir, args.output, labels=labels, weights=args.weights)
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

    def add_model_options(command, default=DEFAULT_MODEL):
        command.add_argument("--model", default=default, help=f"model preset, as in dataloop.json (default {default or DEFAULT_MODEL})")
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

    watch = commands.add_parser("watch", help="classify a live stream (or a file) as it plays: a JSON line per period")
    watch.add_argument("source", metavar="SOURCE", help="a video file, an FFmpeg URL or device (rtsp://, tcp://, ...), or - for stdin")
    add_model_options(watch, default=WATCH_MODEL)
    watch.add_argument("--weights", help="folder with fine-tuned weights written by save() / train")
    watch.add_argument("--every", type=float, default=1.0, metavar="SECONDS", help="seconds of video per line (default 1)")
    watch.add_argument(
        "--stall-timeout", type=float, default=10.0, metavar="SECONDS",
        help="end when the source sends nothing this long (default 10)",
    )
    watch.add_argument("--format", help="FFmpeg input format, for sources it cannot guess (e.g. mpegts, v4l2)")
    watch.set_defaults(run=run_watch)

    export = commands.add_parser("export-hub", help="write a TF-Hub-format SavedModel of the official architecture")
    export.add_argument("--model-id", choices=MODEL_IDS, default="a0")
    export.add_argument("--mode", choices=MODEL_MODES, default="base")
    export.add_argument("--output", required=True)
    export.add_argument("--checkpoint", help="official MoViNet checkpoint to convert (default: random initialisation)")
    export.add_argument("--num-classes", type=int, default=600)
    export.set_defaults(run=run_export_hub)

    tflite = commands.add_parser("export-tflite", help="write the model as a TF Lite file for the edge")
    # No --model default here: --weights alone names the model its weights were trained from.
    add_model_options(tflite, default=None)
    tflite.add_argument("--weights", help="folder with fine-tuned weights written by save() / train (instead of --model)")
    tflite.add_argument("--output", required=True, metavar="FILE.tflite")
    tflite.add_argument("--quantize", choices=QUANTIZATIONS, default="none")
    tflite.add_argument("--calibration-videos", metavar="DIR", help="videos that calibrate int8 (required for int8)")
    tflite.set_defaults(run=run_export_tflite)

    savedmodel = commands.add_parser(
        "export-savedmodel", help="write the model (fine-tuned or hub) as a TF-Hub-format SavedModel with its labels"
    )
    source = savedmodel.add_mutually_exclusive_group()
    source.add_argument("--model", help=f"model entry in dataloop.json (default {DEFAULT_MODEL})")
    source.add_argument("--weights", help="folder with fine-tuned weights written by save() / train")
    savedmodel.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one configuration key (repeatable)")
    savedmodel.add_argument("--manifest", type=Path, default=None, help=argparse.SUPPRESS)
    savedmodel.add_argument("--output", required=True, metavar="DIR", help="the SavedModel folder to create")
    savedmodel.set_defaults(run=run_export_savedmodel)

    train = commands.add_parser("train", help="fine-tune on a folder in the Dataloop training layout")
    train.add_argument("data_dir", metavar="DATA_DIR")
    train.add_argument("--output", required=True)
    add_model_options(train)
    train.add_argument("--labels", help="comma-separated label map (default: sorted labels found in the train subset)")
    train.add_argument(
        "--weights",
        help="start from fine-tuned weights written by save() / train (same labels: continue; other labels: new class layer)",
    )
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
