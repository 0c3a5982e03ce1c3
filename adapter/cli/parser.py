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
The models are the package's presets (adapter.core.presets), the entries dataloop.json ships,
so the CLI works from any folder without the repository. This module parses; the commands
are cli/commands.py, and what --model/--set/--weights name is cli/options.py.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from adapter.cli.commands import (
    WATCH_MODEL,
    run_embed,
    run_evaluate,
    run_export_hub,
    run_export_savedmodel,
    run_export_tflite,
    run_predict,
    run_train,
    run_watch,
)
from adapter.cli.options import DEFAULT_MODEL
from adapter.core.errors import MovinetError
from adapter.core.native_logs import quiet_tensorflow_logs
from adapter.core.variants import MODEL_IDS, MODEL_MODES

logger = logging.getLogger("adapter")

# export-tflite's --quantize choices (runtime.conversion.QUANTIZATIONS, which imports TensorFlow).
QUANTIZATIONS = ("none", "float16", "int8")


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
        command.add_argument(
            "--model", default=default, help=f"model preset, as in dataloop.json (default {default or DEFAULT_MODEL})"
        )
        command.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override one configuration key (repeatable)",
        )
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
    watch.add_argument(
        "source", metavar="SOURCE", help="a video file, an FFmpeg URL or device (rtsp://, tcp://, ...), or - for stdin"
    )
    add_model_options(watch, default=WATCH_MODEL)
    watch.add_argument("--weights", help="folder with fine-tuned weights written by save() / train")
    watch.add_argument(
        "--every", type=float, default=1.0, metavar="SECONDS", help="seconds of video per line (default 1)"
    )
    watch.add_argument(
        "--stall-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
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

    # The exports take no --model default: --weights alone names the model its weights were trained from.
    tflite = commands.add_parser("export-tflite", help="write the model as a TF Lite file for the edge")
    add_model_options(tflite, default=None)
    tflite.add_argument(
        "--weights", help="folder with fine-tuned weights written by save() / train (instead of --model)"
    )
    tflite.add_argument("--output", required=True, metavar="FILE.tflite")
    tflite.add_argument("--quantize", choices=QUANTIZATIONS, default="none")
    tflite.add_argument("--calibration-videos", metavar="DIR", help="videos that calibrate int8 (required for int8)")
    tflite.set_defaults(run=run_export_tflite)

    savedmodel = commands.add_parser(
        "export-savedmodel", help="write the model (fine-tuned or hub) as a TF-Hub-format SavedModel with its labels"
    )
    add_model_options(savedmodel, default=None)
    savedmodel.add_argument(
        "--weights", help="folder with fine-tuned weights written by save() / train (instead of --model)"
    )
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
    quiet_tensorflow_logs()
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
