"""Training data: the folder BaseModelAdapter.prepare_data downloads -> labelled samples -> clips.

Layout, per subset (train, validation):

    <data_path>/<subset>/items/<remote path of the video>
    <data_path>/<subset>/json/<remote path, extension replaced by .json>   (the item's JSON)

Items are found through their JSON (filename and mimetype), never by a file extension, so
every container FFmpeg decodes is used. Each class annotation on a video is one
:class:`Sample`: a label over a range of source frames (metadata.system.frame..endFrame,
inclusive; no range means the whole video). datasets/sample_clips.py decodes a sample's
clips for training.

Skipped, with one warning each and a count in the subset's summary: an annotation whose
label is not in the label map, an item with no class annotation, an item that is not a
video, an unreadable video, and an unusable frame range. A subset left with no sample is a
:class:`DatasetError`.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from adapter.core.devices import usable_cores
from adapter.core.errors import UsageError
from adapter.core.files import path_inside
from adapter.video.clips import LabelledRange
from adapter.video.reader import VideoError, VideoReader, is_video_mimetype

logger = logging.getLogger(__name__)

TRAIN_SUBSET = "train"
VALIDATION_SUBSET = "validation"

# Skip reasons, as the summary counts them.
SKIP_UNKNOWN_LABEL = "label not in the label map"
SKIP_NO_CLASS_ANNOTATION = "item without a class annotation"
SKIP_NOT_A_VIDEO = "item that is not a video"
SKIP_UNREADABLE_VIDEO = "unreadable video"
SKIP_BAD_RANGE = "unusable frame range"
SKIP_BAD_JSON = "unreadable item JSON"
SKIP_OUTSIDE = "filename leading out of the items folder"


class DatasetError(UsageError, ValueError):
    """Training data that cannot be used at all (missing subset, no usable sample)."""


@dataclasses.dataclass(frozen=True)
class Sample:
    """One labelled frame range of one video: the source of that range's training clips."""

    video_path: str
    label_index: int
    first_frame: int  # source frame index, inclusive
    last_frame: int | None  # inclusive; None: to the end of the video
    item_name: str  # how messages name the item (its remote path)
    # Every usable class annotation of the video as (label index, first frame, last frame or None):
    # a multi-label clip's targets are those overlapping its frames (sample_clips.clip_targets).
    video_ranges: tuple[tuple[int, int, int | None], ...] = ()


@dataclasses.dataclass
class SubsetSamples:
    subset: str
    samples: list[Sample]
    videos: int  # videos that gave at least one sample
    skipped: collections.Counter  # skip reason -> count

    def summary(self) -> str:
        text = f"subset {self.subset!r}: {len(self.samples)} sample(s) from {self.videos} video(s)"
        if self.skipped:
            text += "; skipped " + ", ".join(f"{count} x {reason}" for reason, count in sorted(self.skipped.items()))
        return text


def train_and_validation_subsets(model_metadata: Mapping | None) -> tuple[str, str]:
    """Names of the training and validation subsets the model's metadata defines.

    The platform keeps them in metadata.system.subsets; without it (offline) the
    conventional names apply.
    """
    subsets = ((model_metadata or {}).get("system") or {}).get("subsets")
    if not subsets:
        return TRAIN_SUBSET, VALIDATION_SUBSET
    missing = [name for name in (TRAIN_SUBSET, VALIDATION_SUBSET) if name not in subsets]
    if missing:
        raise DatasetError(
            f"The model's metadata.system.subsets defines {sorted(subsets)!r}, but training needs the subsets "
            f"{TRAIN_SUBSET!r} and {VALIDATION_SUBSET!r} (missing {missing!r}); set them on the model"
        )
    return TRAIN_SUBSET, VALIDATION_SUBSET


@dataclasses.dataclass(frozen=True)
class _ItemRecord:
    json_path: Path
    item: dict


def _subset_dirs(data_path: str | os.PathLike, subset: str) -> tuple[Path, Path]:
    subset_dir = Path(data_path) / subset
    json_dir = subset_dir / "json"
    if not json_dir.is_dir():
        raise DatasetError(
            f"Subset {subset!r} has no item JSON folder {json_dir}; training reads the layout that "
            "prepare_data downloads: <data>/<subset>/items/... (videos) and <data>/<subset>/json/... "
            "(one Dataloop item JSON per video)"
        )
    return subset_dir / "items", json_dir


def _read_item_jsons(json_dir: Path, skipped: collections.Counter) -> list[_ItemRecord]:
    records = []
    for json_path in sorted(json_dir.rglob("*.json")):
        try:
            with open(json_path, encoding="utf-8") as file:
                item = json.load(file)
            if not isinstance(item, dict):
                raise ValueError(f"expected a JSON object, got {type(item).__name__}")
        except (OSError, ValueError) as err:
            logger.warning("Skipping %s: cannot read it as an item JSON (%s)", json_path, err)
            skipped[SKIP_BAD_JSON] += 1
            continue
        records.append(_ItemRecord(json_path, item))
    return records


def _class_ranges(item: dict) -> list[LabelledRange]:
    """The item's class annotations as labelled frame ranges (None: open or whole video)."""
    ranges = []
    for annotation in item.get("annotations") or []:
        if not isinstance(annotation, dict) or annotation.get("type") != "class" or not annotation.get("label"):
            continue
        system = (annotation.get("metadata") or {}).get("system") or {}
        first = system.get("frame")
        last = system.get("endFrame")
        ranges.append(LabelledRange(str(annotation["label"]), first, last))
    return ranges


def labels_in_subset(data_path: str | os.PathLike, subset: str = TRAIN_SUBSET) -> list[str]:
    """Sorted labels of the class annotations in a subset's item JSONs."""
    _, json_dir = _subset_dirs(data_path, subset)
    labels = set()
    for record in _read_item_jsons(json_dir, collections.Counter()):
        labels.update(labelled.label for labelled in _class_ranges(record.item))
    return sorted(labels)


def _item_name(record: _ItemRecord, json_dir: Path) -> str:
    filename = record.item.get("filename")
    if filename:
        return str(filename)
    return "/" + record.json_path.relative_to(json_dir).as_posix()


class OutsideItemsFolder(ValueError):
    """An item JSON whose filename resolves outside the subset's items/ folder (e.g. "/../../x.mp4")."""


def _video_path(record: _ItemRecord, items_dir: Path, json_dir: Path) -> Path | None:
    """The item's video in items/, None when it is not there; OutsideItemsFolder for a filename leading out."""
    filename = record.item.get("filename")
    if filename:
        inside = path_inside(items_dir, str(filename))
        if inside is None:
            raise OutsideItemsFolder(
                f"its filename {filename!r} leads out of the subset's items folder {items_dir}; it is not read"
            )
        return Path(inside)
    # No filename in the JSON: the video sits at the JSON's relative path with its own extension.
    relative = record.json_path.relative_to(json_dir).with_suffix("")
    candidates = sorted((items_dir / relative.parent).glob(_glob_escape(relative.name) + ".*"))
    return candidates[0] if len(candidates) == 1 else None


def _glob_escape(text: str) -> str:
    return "".join(f"[{char}]" if char in "*?[" else char for char in text)


def _check_video(path: Path, name: str) -> tuple[int | None, str | None]:
    """(the frame count the container declares or None, None), or (None, why the video is unreadable)."""
    try:
        reader = VideoReader(path, name=name)
        # Opening proves little; decoding the first frame proves the codec works.
        for _ in reader:
            break
    except VideoError as err:
        return None, err.reason
    except Exception as err:  # a decoder failing in an unexpected way: same outcome for this video
        return None, f"cannot be decoded ({type(err).__name__}: {err})"
    return reader.declared_frames, None


@dataclasses.dataclass(frozen=True)
class AnnotatedItem:
    """One item of a subset as its JSON describes it, before any check of the video."""

    name: str  # how messages name the item (its remote path)
    video_path: str | None  # None: the JSON names no video that is in items/
    mimetype: str | None
    class_ranges: list[tuple[str, object, object]]  # (label, frame, endFrame) as annotated; None: open
    refused: str | None = None  # why the item is not read at all (a filename leading out of items/)


def annotated_items(data_path: str | os.PathLike, subset: str) -> tuple[list[AnnotatedItem], collections.Counter]:
    """Every item JSON of a subset with its class annotations, unchecked (evaluation judges them itself).

    Args:
        data_path: the folder prepare_data downloads into (<data_path>/<subset>/items and json).
        subset: the subset's name, e.g. "validation".

    Returns:
        The items, in JSON path order, and the count of JSON files that could not be read (by reason).

    Raises:
        DatasetError: the subset has no json/ folder.
    """
    items_dir, json_dir = _subset_dirs(data_path, subset)
    skipped: collections.Counter = collections.Counter()
    items = []
    for record in _read_item_jsons(json_dir, skipped):
        name = _item_name(record, json_dir)
        problem = None
        try:
            video_path = _video_path(record, items_dir, json_dir)
        except OutsideItemsFolder as err:
            logger.warning("Skipping item %r: %s", name, err)
            video_path, problem = None, str(err)
        items.append(
            AnnotatedItem(
                name=name,
                video_path=str(video_path) if video_path is not None and video_path.is_file() else None,
                mimetype=((record.item.get("metadata") or {}).get("system") or {}).get("mimetype"),
                class_ranges=[(r.label, r.first_frame, r.last_frame) for r in _class_ranges(record.item)],
                refused=problem,
            )
        )
    return items, skipped


def _frame_number(value) -> int | None:
    """A non-negative frame number (JSON may spell 12 as 12.0), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        return None
    if isinstance(value, float) and not value.is_integer():
        return None
    return int(value)


def distinct_ranges(samples: Sequence[Sample]) -> list[Sample]:
    """One sample per distinct (video, range): multi-label training draws a range's clips once, whatever
    number of labels annotate it (its clips carry all of them as targets).

    Args:
        samples: load_subset's samples.

    Returns:
        The samples, the first of each (video, first frame, last frame), in order.
    """
    seen, kept = set(), []
    for sample in samples:
        key = (sample.video_path, sample.first_frame, sample.last_frame)
        if key not in seen:
            seen.add(key)
            kept.append(sample)
    return kept


def load_subset(
    data_path: str | os.PathLike,
    subset: str,
    labels: Sequence[str],
    *,
    workers: int | None = None,
) -> SubsetSamples:
    """Read one subset into samples; skip what cannot be used (a warning each); error if none remain."""
    items_dir, json_dir = _subset_dirs(data_path, subset)
    label_index = {label: index for index, label in enumerate(labels)}
    skipped: collections.Counter = collections.Counter()
    candidates: list[tuple[str, Path, list[Sample]]] = []

    for record in _read_item_jsons(json_dir, skipped):
        name = _item_name(record, json_dir)
        mimetype = ((record.item.get("metadata") or {}).get("system") or {}).get("mimetype")
        if mimetype is not None and not is_video_mimetype(mimetype):
            logger.warning("Skipping item %r: not a video (mimetype %r)", name, mimetype)
            skipped[SKIP_NOT_A_VIDEO] += 1
            continue
        ranges = _class_ranges(record.item)
        if not ranges:
            logger.warning("Skipping item %r: it has no class annotation", name)
            skipped[SKIP_NO_CLASS_ANNOTATION] += 1
            continue
        try:
            video_path = _video_path(record, items_dir, json_dir)
        except OutsideItemsFolder as err:
            logger.warning("Skipping item %r: %s", name, err)
            skipped[SKIP_OUTSIDE] += 1
            continue
        if video_path is None:
            logger.warning("Skipping item %r: its video is not in %s", name, items_dir)
            skipped[SKIP_UNREADABLE_VIDEO] += 1
            continue
        samples = []
        for labelled in ranges:
            if labelled.label not in label_index:
                logger.warning(
                    "Skipping a class annotation of item %r: label %r is not in the model's label map",
                    name,
                    labelled.label,
                )
                skipped[SKIP_UNKNOWN_LABEL] += 1
                continue
            first = 0 if labelled.first_frame is None else _frame_number(labelled.first_frame)
            last = None if labelled.last_frame is None else _frame_number(labelled.last_frame)
            if first is None or (labelled.last_frame is not None and (last is None or last < first)):
                logger.warning(
                    "Skipping a class annotation of item %r: frame range %r..%r is not a range of frame numbers",
                    name,
                    labelled.first_frame,
                    labelled.last_frame,
                )
                skipped[SKIP_BAD_RANGE] += 1
                continue
            samples.append(Sample(str(video_path), label_index[labelled.label], first, last, name))
        if samples:
            candidates.append((name, video_path, samples))

    # Videos are checked in parallel: decoders release the GIL, and datasets can be large.
    workers = workers or min(8, 2 * usable_cores())
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        checks = list(pool.map(lambda candidate: _check_video(candidate[1], candidate[0]), candidates))

    samples: list[Sample] = []
    videos = 0
    for (name, _, item_samples), (frame_count, problem) in zip(candidates, checks):
        if problem is not None:
            logger.warning("Skipping item %r: video %s", name, problem)
            skipped[SKIP_UNREADABLE_VIDEO] += 1
            continue
        usable = []
        for sample in item_samples:
            # The declared count is exact for most containers, estimated for Matroska/WebM; if a range
            # past the real end slips through, read_clip's error names the item.
            if frame_count is not None and sample.first_frame >= frame_count:
                logger.warning(
                    "Skipping a class annotation of item %r: its range starts at frame %d but the video has %d frames",
                    name,
                    sample.first_frame,
                    frame_count,
                )
                skipped[SKIP_BAD_RANGE] += 1
                continue
            usable.append(sample)
        if usable:
            videos += 1
            video_ranges = tuple((s.label_index, s.first_frame, s.last_frame) for s in usable)
            samples.extend(dataclasses.replace(sample, video_ranges=video_ranges) for sample in usable)

    result = SubsetSamples(subset, samples, videos, skipped)
    (logger.warning if skipped else logger.info)("Loaded %s", result.summary())
    if not samples:
        raise DatasetError(
            f"Subset {subset!r} ({Path(data_path) / subset}) has no usable sample: {result.summary()}. "
            f"Training needs videos with class annotations whose labels are in the label map {list(labels)!r}"
        )
    return result
