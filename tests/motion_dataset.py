"""A training dataset whose classes differ only in motion, in the layout prepare_data downloads.

    <root>/<subset>/items/<folder>/<name>.<ext>   the videos (several containers)
    <root>/<subset>/json/<folder>/<name>.json     one Dataloop item JSON each, with its annotations

Every class is the same bright square on the same textured background ("moving_square"
of tests/videos.py); only the direction it moves in differs. Video k of every class uses
the same seed, so frame 0 is identical across classes and no single frame tells the
classes apart: a model has to see motion to beat chance.

The train subset also holds one video with two labelled ranges (the first part moving
one way, the rest the other way), and every item's JSON is what the platform exports:
filename (the remote path), mimetype, fps, and class annotations with
metadata.system.frame / endFrame.

write_multi_label_dataset writes videos carrying two labels at once: the square's colour and its
size (two whole-video class annotations per item), in train, validation and a held-out "test" subset.

Run as a script to write one: ``python -m tests.motion_dataset OUTPUT_DIR [--classes 4]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import mimetypes
import os
from collections.abc import Sequence
from pathlib import PurePosixPath

import cv2
import numpy as np

from tests.videos import generate_frames, write_frames, write_video

# Class name -> (dx, dy) unit direction; the speed multiplies it.
DIRECTIONS = {
    "left": (-1, 0),
    "right": (1, 0),
    "up": (0, -1),
    "down": (0, 1),
}

# Containers cycled over the items, so loading is proven not to depend on one extension.
CONTAINERS = (".mp4", ".avi", ".mkv", ".mov", ".webm")

# Colour name -> the BGR value the square is painted in (multi-label datasets).
COLOURS = {
    "red": (40, 40, 230),
    "blue": (230, 40, 40),
    "green": (40, 230, 40),
}

_MIMETYPES = {".mkv": "video/x-matroska", ".webm": "video/webm", ".avi": "video/x-msvideo", ".mov": "video/quicktime"}


@dataclasses.dataclass
class MotionDataset:
    root: str
    labels: list[str]
    # subset -> remote path -> [(label, first_frame, last_frame)] as annotated
    ranges: dict[str, dict[str, list[tuple[str, int | None, int | None]]]]
    two_range_item: str | None  # remote path of the video with two labelled ranges


def mimetype_of(filename: str) -> str:
    ext = os.path.splitext(filename)[1].lower()
    return _MIMETYPES.get(ext) or mimetypes.guess_type(filename)[0] or "video/mp4"


def class_annotation(
    label: str, first_frame: int | None = None, last_frame: int | None = None, *, annotation_id: str = "a1"
) -> dict:
    """A Dataloop class annotation as exported in an item JSON (no range: the whole video)."""
    system: dict = {}
    if first_frame is not None:
        system["frame"] = first_frame
    if last_frame is not None:
        system["endFrame"] = last_frame
    return {
        "id": annotation_id,
        "type": "class",
        "label": label,
        "coordinates": None,
        "metadata": {"system": system} if system else {},
    }


def item_json(
    filename: str, annotations: Sequence[dict], *, item_id: str, fps: float | None = None, mimetype: str | None = None
) -> dict:
    """The item JSON that prepare_data writes next to a downloaded video."""
    name = PurePosixPath(filename).name
    return {
        "id": item_id,
        "name": name,
        "filename": filename,
        "type": "file",
        "metadata": {"fps": fps, "system": {"mimetype": mimetype or mimetype_of(filename), "fps": fps}},
        "annotations": list(annotations),
    }


def write_item(
    subset_dir: str,
    filename: str,
    annotations: Sequence[dict],
    *,
    item_id: str,
    fps: float | None = None,
    mimetype: str | None = None,
) -> tuple[str, str]:
    """Write only the item JSON of filename (the video is the caller's); returns (video path, json path)."""
    relative = PurePosixPath(filename.lstrip("/"))
    video_path = os.path.join(subset_dir, "items", *relative.parts)
    json_path = os.path.join(subset_dir, "json", *relative.with_suffix(".json").parts)
    os.makedirs(os.path.dirname(video_path), exist_ok=True)
    os.makedirs(os.path.dirname(json_path), exist_ok=True)
    with open(json_path, "w", encoding="utf-8") as file:
        json.dump(item_json(filename, annotations, item_id=item_id, fps=fps, mimetype=mimetype), file, indent=2)
    return video_path, json_path


def write_motion_dataset(
    root: str | os.PathLike,
    *,
    classes: Sequence[str] = ("left", "right"),
    train_per_class: int = 8,
    validation_per_class: int = 4,
    frames: int = 16,
    fps: float = 5.0,
    width: int = 64,
    height: int = 48,
    speed: int = 4,
    containers: Sequence[str] = CONTAINERS,
    two_range_video: bool = True,
    seed: int = 0,
) -> MotionDataset:
    """Write train and validation subsets; video k of each class shares seed + k (same first frame)."""
    root = os.fspath(root)
    unknown = [name for name in classes if name not in DIRECTIONS]
    if unknown:
        raise ValueError(f"unknown classes {unknown}; choose from {sorted(DIRECTIONS)}")
    container_cycle = itertools.cycle(containers)
    ranges: dict[str, dict] = {}
    item_ids = itertools.count(1)
    for subset, per_class, subset_seed in (
        ("train", train_per_class, seed),
        ("validation", validation_per_class, seed + 10_000),
    ):
        subset_dir = os.path.join(root, subset)
        ranges[subset] = {}
        for k in range(per_class):
            for label in classes:
                dx, dy = DIRECTIONS[label]
                ext = next(container_cycle)
                filename = f"/{label}/{label}_{k:03d}{ext}"
                annotation = class_annotation(label, 0, frames - 1)
                video_path, _ = write_item(
                    subset_dir, filename, [annotation], item_id=f"item-{next(item_ids)}", fps=fps
                )
                write_video(
                    video_path,
                    frames=frames,
                    fps=fps,
                    width=width,
                    height=height,
                    direction=(dx * speed, dy * speed),
                    seed=subset_seed + k,
                )
                ranges[subset][filename] = [(label, 0, frames - 1)]

    two_range_item = None
    if two_range_video and len(classes) >= 2:
        first_label, second_label = classes[0], classes[1]
        half = frames
        filename = "/mixed/two_ranges.avi"
        annotations = [
            class_annotation(first_label, 0, half - 1, annotation_id="a1"),
            class_annotation(second_label, half, 2 * half - 1, annotation_id="a2"),
        ]
        video_path, _ = write_item(
            os.path.join(root, "train"), filename, annotations, item_id=f"item-{next(item_ids)}", fps=fps
        )
        parts = [
            generate_frames(
                frames=half,
                width=width,
                height=height,
                direction=tuple(v * speed for v in DIRECTIONS[label]),
                seed=seed + 777,
            )
            for label in (first_label, second_label)
        ]
        write_frames(video_path, itertools.chain(*parts), fps=fps, width=width, height=height)
        ranges["train"][filename] = [(first_label, 0, half - 1), (second_label, half, 2 * half - 1)]
        two_range_item = filename
    return MotionDataset(root, sorted(classes), ranges, two_range_item)


# Size name -> pixels the square grows by on each side (multi-label datasets).
SIZES = {"small": 0, "big": 4}


def coloured_frames(colour: str, size: str = "small", **frame_options):
    """generate_frames' moving square, painted in a COLOURS colour and grown by SIZES[size] pixels a side."""
    bgr = np.array(COLOURS[colour], np.uint8)
    grow = SIZES[size]
    kernel = np.ones((2 * grow + 1, 2 * grow + 1), np.uint8)
    for image in generate_frames(**frame_options):
        square = image.min(axis=2) > 150  # the square is drawn at 230, the background is at most 60
        if grow:
            square = cv2.dilate(square.astype(np.uint8), kernel) > 0
        image[square] = bgr
        yield image


def write_multi_label_dataset(
    root: str | os.PathLike,
    *,
    colours: Sequence[str] = ("red", "blue"),
    sizes: Sequence[str] = ("small", "big"),
    per_pair: dict[str, int] | None = None,
    frames: int = 8,
    fps: float = 5.0,
    width: int = 48,
    height: int = 48,
    speed: int = 4,
    seed: int = 0,
) -> MotionDataset:
    """Every (colour, size) pair of the moving square in each subset; each video carries both labels.

    Colour and size, not direction: both groups are seen in any frame, so a randomly initialised
    a0 learns them in a few epochs on 2 cores; learning direction from scratch takes minutes
    (tests/training/test_fit.py does it for single-label). Every square moves right.

    Args:
        root: the dataset folder.
        colours, sizes: the two label groups (COLOURS and SIZES names).
        per_pair: subset -> videos per pair (default train 6, validation 3, test 2).
        frames, fps, width, height, speed, seed: of each video (video k of a subset uses its own seed).

    Returns:
        The MotionDataset (ranges: subset -> remote path -> [(colour, None, None), (size, None, None)]).
    """
    root = os.fspath(root)
    per_pair = per_pair or {"train": 6, "validation": 3, "test": 2}
    item_ids = itertools.count(1)
    ranges: dict[str, dict] = {}
    for subset_number, (subset, count) in enumerate(per_pair.items()):
        subset_dir = os.path.join(root, subset)
        ranges[subset] = {}
        for k in range(count):
            for colour, size in itertools.product(colours, sizes):
                filename = f"/{colour}_{size}/{colour}_{size}_{k:03d}.avi"
                annotations = [
                    class_annotation(colour, annotation_id="a1"),
                    class_annotation(size, annotation_id="a2"),
                ]
                video_path, _ = write_item(subset_dir, filename, annotations, item_id=f"item-{next(item_ids)}", fps=fps)
                images = coloured_frames(
                    colour,
                    size,
                    frames=frames,
                    width=width,
                    height=height,
                    direction=(speed, 0),
                    seed=seed + 1000 * subset_number + k,
                )
                write_frames(video_path, images, fps=fps, width=width, height=height)
                ranges[subset][filename] = [(colour, None, None), (size, None, None)]
    return MotionDataset(root, sorted([*colours, *sizes]), ranges, None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("output")
    parser.add_argument("--classes", type=int, choices=(2, 4), default=2)
    parser.add_argument("--train-per-class", type=int, default=8)
    parser.add_argument("--validation-per-class", type=int, default=4)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--fps", type=float, default=5.0)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--height", type=int, default=48)
    parser.add_argument("--speed", type=int, default=4)
    args = parser.parse_args(argv)
    dataset = write_motion_dataset(
        args.output,
        classes=list(DIRECTIONS)[: args.classes],
        train_per_class=args.train_per_class,
        validation_per_class=args.validation_per_class,
        frames=args.frames,
        fps=args.fps,
        width=args.width,
        height=args.height,
        speed=args.speed,
    )
    counts = {subset: len(items) for subset, items in dataset.ranges.items()}
    print(f"Wrote {counts} items with labels {dataset.labels} to {dataset.root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
