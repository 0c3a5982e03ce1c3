"""The commands of the `movinet` CLI (cli/parser.py parses; each run_* function runs one).

Each returns the process's exit code: 0, or 1 when some video failed (named on stderr).
"""

from __future__ import annotations

import json
import logging
import os
import sys

from adapter.cli.options import (
    export_adapter,
    finetuned_info,
    loaded_adapter,
    manifest_model,
    offline_adapter,
    parse_set,
)
from adapter.core.config import ConfigError, MovinetConfig
from adapter.core.files import write_json
from adapter.core.variants import model_name

logger = logging.getLogger("adapter")

WATCH_MODEL = "movinet-a0-stream"  # watch runs stream models only


def check_output_file(path: str | None, option: str = "--output") -> None:
    """Refuse an output file that could not be written, before any work is done.

    Args:
        path: the file the option names (None: the option was not given).
        option: the option's name, for the message.

    Raises:
        ConfigError (exit 2): its folder does not exist or is not writable, or path is a folder.
    """
    if path is None:
        return
    if os.path.isdir(path):
        raise ConfigError(f"{option} {path!r} is a folder; give the file to write")
    _check_parent(path, option)


def check_output_folder(path: str, option: str = "--output") -> None:
    """Refuse an output folder whose parent does not exist (or is not writable), before any work is done.

    Args:
        path: the folder the option names; the command creates it (or replaces it when empty).
        option: the option's name, for the message.

    Raises:
        ConfigError (exit 2): its parent does not exist or is not writable, or path is a file.
    """
    if os.path.exists(path) and not os.path.isdir(path):
        raise ConfigError(f"{option} {path!r} is a file; give a folder to create")
    _check_parent(path, option)  # the export is written beside the folder, then renamed into place


def _check_parent(path: str, option: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ConfigError(f"{option} {path!r}: its folder {folder!r} does not exist; create it or choose another path")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {path!r}: its folder {folder!r} is not writable")


def run_predict(args) -> int:
    from tqdm import tqdm

    from adapter.video.inputs import local_video

    check_output_file(args.output)
    plotter_folder(args.plot)
    adapter = loaded_adapter(args)
    if args.plot:
        adapter.on_video_predicted = probability_plotter(adapter, args.plot)
    results = {}
    for path in tqdm(args.videos, desc="videos", unit="video", disable=None):
        (collection,) = adapter.predict([local_video(path)])
        annotations = collection.to_json()["annotations"]
        results[path] = annotations
        if args.output:
            # Rewritten after every video, atomically: a run that dies keeps the videos it finished.
            write_json(args.output, results, indent=2)
        if any(name == path for name, _ in adapter.failures):
            continue
        video_level = [a for a in annotations if a["metadata"]["user"]["movinet"]["level"] == "video"]
        summary = ", ".join(f"{a['label']} {a['metadata']['user']['model']['confidence']:.3f}" for a in video_level)
        tqdm.write(f"{path}: {summary}")
    if args.output:
        write_json(args.output, results, indent=2)  # also for an empty run
        logger.info("Wrote annotations of %d video(s) to %s", len(results), args.output)
    for name, reason in adapter.failures:
        tqdm.write(f"FAILED {name}: {reason}", file=sys.stderr)
    return 1 if adapter.failures else 0


def run_embed(args) -> int:
    from tqdm import tqdm

    from adapter.video.inputs import local_video

    check_output_file(args.output)
    adapter = loaded_adapter(args)
    vectors = {}
    for path in tqdm(args.videos, desc="videos", unit="video", disable=None):
        (vector,) = adapter.embed([local_video(path)])
        vectors[path] = vector  # None (null) for a video that failed; named below
        write_json(args.output, vectors)  # after every video, atomically, as predict does
    write_json(args.output, vectors)
    embedded = sum(vector is not None for vector in vectors.values())
    logger.info(
        "Wrote the embeddings of %d video(s) (%d values each) to %s",
        embedded,
        adapter.config.variant_embeddings_size,
        args.output,
    )
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

    from adapter.cli.watch import warm_up, watch_periods
    from adapter.video.live import END_OF_STREAM, STOPPED, LiveSource
    from adapter.video.preprocessing import preprocess_frame

    if not (args.every > 0 and args.every < float("inf")):
        raise ConfigError(f"--every must be a positive number of seconds. Received: every={args.every!r}")
    if not (args.stall_timeout > 0 and args.stall_timeout < float("inf")):
        raise ConfigError(
            f"--stall-timeout must be a positive number of seconds. Received: stall_timeout={args.stall_timeout!r}"
        )
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
        shorter_side=config.imgz,
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
            source,
            adapter.classifier,
            adapter.loaded.labels,
            fps=config.frame_rate,
            every=args.every,
            top_k=config.top_k,
            smoothing_seconds=config.temporal_smoothing,
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


def plotter_folder(directory: str | None) -> None:
    """Create --plot's folder before any work; one that cannot be created is exit 2 naming it.

    Args:
        directory: the folder --plot names (None: no pictures).
    """
    if directory is None:
        return
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"--plot {directory!r}: the folder cannot be created ({err.strerror or err})") from err


def probability_plotter(adapter, directory: str):
    """A MovinetAdapter.on_video_predicted callback writing each video's probability-over-time PNG.

    A picture that cannot be drawn or written (a name too long, a full disk) is a warning naming
    the video: the prediction it pictures stands.

    Args:
        adapter: the loaded adapter (its labels and top_k are used).
        directory: where the pictures go (created if missing).

    Returns:
        The callback, taking (video, prediction, reader).
    """
    from adapter.evaluation.plots import save_figure
    from adapter.evaluation.probability_plot import plot_filename, probability_figure

    plotter_folder(directory)
    taken: set[str] = set()

    def write(video, prediction, reader):
        path = os.path.join(directory, plot_filename(video.path, taken))
        try:
            figure = probability_figure(
                prediction,
                adapter.loaded.labels,
                num_frames=reader.num_frames,
                source_fps=reader.source_fps,
                top_k=adapter.config.top_k,
                title=os.path.basename(video.path),
            )
            save_figure(figure, path)
        except Exception as err:  # the picture is a by-product; the prediction stands
            logger.warning(
                "Could not write the probability-over-time picture of %s to %s (%s: %s); its prediction stands",
                video.name,
                path,
                type(err).__name__,
                err,
            )
            return
        logger.info("Wrote the probability-over-time picture of %s to %s", video.name, path)

    return write


def _evaluation_pictures(scores, adapter, scoring, summary: dict, plot: str, title: str) -> None:
    """Beside the confusion matrix: the reliability diagram and (multi-label) the per-class AP and F1.

    A picture that cannot be written is a warning, as the confusion matrix's: the metrics are
    printed and written already.
    """
    from adapter.evaluation import calibration, plots

    if not scores:
        return
    stem = os.path.splitext(plot)[0]
    pictures = [
        (
            "reliability diagram",
            stem + "_reliability.png",
            lambda path: calibration.plot_reliability(
                *calibration.video_reliability(scores, adapter.loaded.labels, scoring),
                path,
                title=f"{title}: {len(scores)} videos",
            ),
        )
    ]
    if "multi_label" in summary:
        pictures.append(
            (
                "per-class AP and F1 picture",
                stem + "_per_class.png",
                lambda path: plots.plot_per_class_scores(summary["multi_label"], path, title=title),
            )
        )
    for name, path, draw in pictures:
        try:
            written = draw(path)
        except Exception as err:  # a by-product, as the confusion matrix picture
            logger.warning("Could not write the %s to %s (%s: %s)", name, path, type(err).__name__, err)
        else:
            logger.info("Wrote the %s to %s", name, written)


def run_export_hub(args) -> int:
    from adapter.export.hub import export_hub_model

    export_hub_model(
        args.output, args.model_id, args.mode, num_classes=args.num_classes, checkpoint_path=args.checkpoint
    )
    print(f"Wrote a TF-Hub-format SavedModel of {model_name(args.model_id, args.mode)} to {args.output}")
    return 0


def run_export_tflite(args) -> int:
    from adapter.export.tflite import export_tflite

    check_output_file(args.output)
    adapter = export_adapter(args, "export-tflite")
    videos = []
    if args.quantize == "int8" and not args.calibration_videos:
        raise ConfigError("--quantize int8 needs --calibration-videos: a folder of videos like the ones to classify")
    if args.calibration_videos:
        from adapter.runtime.calibration import calibration_files

        videos = calibration_files(args.calibration_videos, key="--calibration-videos")
    description = export_tflite(adapter.loaded, adapter.config, args.output, args.quantize, videos)
    print(
        f"Wrote {model_name(description['model_id'], description['model_mode'])} ({args.quantize}, "
        f"{len(description['labels'])} labels) to {args.output}"
    )
    return 0


def run_export_savedmodel(args) -> int:
    from adapter.export.savedmodel import export_savedmodel

    check_output_folder(args.output)
    adapter = export_adapter(args, "export-savedmodel")
    written = export_savedmodel(adapter.loaded, adapter.config, args.output)
    print(
        f"Wrote a TF-Hub-format SavedModel of {model_name(written['model_id'], written['model_mode'])} "
        f"({len(written['labels'])} labels) to {args.output}"
    )
    return 0


def run_train(args) -> int:
    from adapter.cli.train import run_offline_training

    overrides = parse_set(args.set)
    adapter = offline_adapter(manifest_model(args.manifest, args.model), overrides)
    labels = [label.strip() for label in args.labels.split(",") if label.strip()] if args.labels else None
    if args.weights is not None:
        finetuned_info(args.weights)  # refuse a folder without fine-tuned weights before reading data
    run_offline_training(adapter, args.data_dir, args.output, labels=labels, weights=args.weights)
    return 0


def run_evaluate(args) -> int:
    from tqdm import tqdm

    from adapter.cli import evaluate
    from adapter.evaluation import metrics, plots, segment_metrics, subset

    check_output_file(args.output)
    check_output_file(args.plot, "--plot")
    items, skipped = subset.evaluation_items(args.data_dir, args.subset)
    adapter = loaded_adapter(args)
    # Temporal annotations asked for: their segments are scored against the labelled ranges too.
    segment_scores = [] if adapter.config.temporal_annotations else None
    scores, failed = evaluate.predict_items(
        adapter,
        items,
        progress=lambda videos: tqdm(videos, desc="videos", unit="video", disable=None),
        segment_scores=segment_scores,
    )
    scoring = adapter.classifier.scoring if scores else None
    summary = metrics.summarize(scores, adapter.loaded.labels, scoring)
    print(f"Evaluated {args.model} on subset {args.subset!r} of {args.data_dir}")
    print(metrics.format_report(summary))
    if segment_scores is not None:
        summary["segments"] = segment_metrics.summarize_segments(segment_scores)
        print(segment_metrics.format_segment_report(summary["segments"]))
    for name, reason in skipped:
        print(f"skipped {name}: {reason}")
    plot = args.plot or (os.path.splitext(args.output)[0] + ".png" if args.output else None)
    if args.output:
        report = {"data_dir": args.data_dir, "subset": args.subset, "model": args.model, "weights": args.weights}
        report.update(summary)
        report["failed"] = [{"item": name, "reason": reason} for name, reason in failed]
        report["skipped"] = [{"item": name, "reason": reason} for name, reason in skipped]
        write_json(args.output, report, indent=2)
        logger.info("Wrote the evaluation of %d video(s) to %s", len(scores), args.output)
    if plot:
        title = f"{args.model} on {args.subset}: top-1 accuracy {metrics.format_ratio(summary['top1_accuracy'])}"
        try:
            plots.plot_confusion_matrix(summary["confusion_matrix"], summary["classes"], plot, title=title)
        except Exception as err:  # the metrics are printed and written; the picture is a by-product
            logger.warning("Could not write the confusion matrix picture to %s (%s: %s)", plot, type(err).__name__, err)
        else:
            logger.info("Wrote the confusion matrix picture to %s", plot)
        _evaluation_pictures(scores, adapter, scoring, summary, plot, f"{args.model} on {args.subset}")
    for name, reason in failed:
        print(f"FAILED {name}: {reason}", file=sys.stderr)
    return 1 if failed else 0
