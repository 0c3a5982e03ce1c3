"""Platform items as predict() inputs: each downloaded to its own folder, or a local file as an item entity.

prepare_item_func is called from 16 threads at once and an exception there would abort
the whole call, so a problem with one item is carried in VideoInput.error instead and
reported by predict() for that item alone.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import uuid

import dtlpy as dl

from adapter.core.errors import InputError, MovinetError
from adapter.video.inputs import VideoInput
from adapter.video.reader import is_video_mimetype

logger = logging.getLogger(__name__)


class ItemError(InputError):
    """An item that cannot be predicted (not a video, not downloadable); names the item."""


def describe_item(item: dl.Item) -> str:
    return f"item {item.name!r} (id {item.id})"


# Free space a download leaves for everything else on the pod's disk (decoder, logs, other items).
DISK_HEADROOM_BYTES = 512 * 1024 * 1024


def item_size(item: dl.Item) -> int | None:
    """The item's file size in bytes as the platform records it (metadata.system.size), or None."""
    size = ((item.metadata or {}).get("system") or {}).get("size")
    return size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None


def disk_space_error(name: str, size: int | None, folder: str) -> str | None:
    """Why a file of size bytes cannot be written into folder now (None when it fits or the size is unknown).

    Args:
        name: the item's description, for the message.
        size: the file's size in bytes, or None.
        folder: where it would be written.

    Returns:
        The error naming the item, the sizes and the folder, or None.
    """
    if size is None:
        return None
    free = shutil.disk_usage(folder).free
    if size + DISK_HEADROOM_BYTES <= free:
        return None
    return (
        f"{name} was not downloaded: it is {size / 1e6:.1f} MB and {folder} has {free / 1e6:.1f} MB free "
        f"(a download leaves {DISK_HEADROOM_BYTES / 1e6:.0f} MB); give the service a pod with more disk "
        "or a smaller batch_size"
    )


class NotEnoughDisk(MovinetError, OSError):
    """A training download that would not fit on the disk; names the sizes and the largest items."""


def existing_folder(path: str) -> str:
    """path, or its nearest existing parent (where the disk usage of a folder yet to be made is read)."""
    path = os.path.abspath(path)
    while not os.path.isdir(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path


def check_subsets_fit(dataset: dl.Dataset, subsets: dict, folder: str) -> int:
    """Raise NotEnoughDisk when the subsets' videos (metadata.system.size) would not fit in folder's free space.

    Args:
        dataset: the model's dataset.
        subsets: {subset name: DQL query} (model.metadata.system.subsets).
        folder: where they will be downloaded (may not exist yet).

    Returns:
        The bytes the download needs (items without a recorded size count 0).
    """
    sized = []
    for query in subsets.values():
        listing = dict(query)
        listing["pageSize"] = 1000
        for page in dataset.items.list(filters=dl.Filters(custom_filter=listing)):
            sized.extend((item_size(item) or 0, describe_item(item)) for item in page)
    needed = sum(size for size, _ in sized)
    where = existing_folder(folder)
    free = shutil.disk_usage(where).free
    if needed + DISK_HEADROOM_BYTES > free:
        largest = ", ".join(f"{name} ({size / 1e6:.1f} MB)" for size, name in sorted(sized, reverse=True)[:3])
        raise NotEnoughDisk(
            f"The training data ({len(sized)} items, {needed / 1e6:.1f} MB) does not fit in {where}: "
            f"{free / 1e6:.1f} MB free, and a download leaves {DISK_HEADROOM_BYTES / 1e6:.0f} MB. Largest: {largest}. "
            "Train on a pod with more disk or on a smaller subset."
        )
    return needed


def video_seconds(item) -> float | None:
    """An item's duration in seconds from its platform metadata, or None when it has none.

    metadata.system.duration when present; else metadata.system.nb_frames (or ffmpeg.nb_frames)
    divided by metadata.system.fps.

    Args:
        item: a dl.Item (or its JSON).

    Returns:
        The duration, or None.
    """
    metadata = item.get("metadata") if isinstance(item, dict) else item.metadata
    system = (metadata or {}).get("system") or {}

    def number(value):
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else None

    duration = number(system.get("duration"))
    if duration is not None:
        return duration
    frames = number(system.get("nb_frames")) or number((system.get("ffmpeg") or {}).get("nb_frames"))
    fps = number(system.get("fps"))
    return frames / fps if frames is not None and fps is not None else None


def download_item(item: dl.Item, max_seconds: float | None = None) -> VideoInput:
    """The item downloaded into its own folder, or a VideoInput carrying why it cannot be.

    Args:
        item: the platform item.
        max_seconds: the longest video one execution can process before its timeout; a longer
            one (by its metadata) fails here, before the download, instead of the execution.

    Returns:
        The VideoInput (error set when the item cannot be predicted).
    """
    name = describe_item(item)
    if not is_video_mimetype(item.mimetype):
        error = f"{name} is not a video (mimetype {item.mimetype!r}); MoViNet classifies video items only"
        logger.error(error)
        return VideoInput(name=name, path=None, item=item, error=error)
    seconds = video_seconds(item)
    if max_seconds is not None and seconds is not None and seconds > max_seconds:
        error = (
            f"{name} is {seconds:.0f} s long; at this model's measured cost one execution can process at most "
            f"{max_seconds:.0f} s of video before its timeout (predict_embed_subset_limit one-minute videos per "
            "child budget); cut it into shorter videos or use a smaller variant"
        )
        logger.error(error)
        return VideoInput(name=name, path=None, item=item, error=error)
    download_dir = tempfile.mkdtemp(prefix="movinet-item-")
    no_room = disk_space_error(name, item_size(item), download_dir)
    if no_room is not None:
        shutil.rmtree(download_dir, ignore_errors=True)
        logger.error(no_room)
        return VideoInput(name=name, path=None, item=item, error=no_room)
    try:
        path = item.download(local_path=download_dir, overwrite=True)
    except Exception as err:  # the SDK raises many kinds; any of them fails this item only
        shutil.rmtree(download_dir, ignore_errors=True)
        error = f"{name} could not be downloaded: {err}"
        logger.error(error)
        return VideoInput(name=name, path=None, item=item, error=error)
    return VideoInput(name=name, path=path, item=item, download_dir=download_dir)


def local_item(path: str, fps: float | None) -> dl.Item:
    """An offline item entity for a local file, so annotations carry frame numbers and times."""
    name = os.path.basename(path)
    return dl.Item.from_json(
        _json={
            "id": f"local-{uuid.uuid4().hex[:12]}",
            "filename": "/" + name,
            "name": name,
            "type": "file",
            "metadata": {"fps": fps, "system": {"mimetype": "video/*", "fps": fps}},
        },
        client_api=dl.client_api,
        dataset=None,
        project=None,
        is_fetched=False,
    )
