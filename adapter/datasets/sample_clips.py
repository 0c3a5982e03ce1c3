"""A labelled sample -> the clips training sees, resampled and preprocessed exactly as prediction does.

:func:`read_clip` decodes one clip of a sample (datasets/layout.py reads the samples);
:class:`RangeCache` gives the same clips from each sample's range decoded once, since training
draws a new clip from every range every epoch.
"""

from __future__ import annotations

import collections
import hashlib
import math
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from adapter.datasets.layout import Sample
from adapter.video.clips import Clip, clip_from_frames
from adapter.video.preprocessing import CENTRE, preprocess_frame
from adapter.video.reader import Frame, VideoError, VideoReader


def clip_targets(sample: Sample, first_index: int, last_index: int, num_classes: int) -> np.ndarray:
    """A multi-label clip's targets: 1 for every label annotated on frames that overlap the clip's.

    Args:
        sample: the sample the clip came from (its video_ranges; without them, its own label).
        first_index, last_index: the clip's source frames (inclusive).
        num_classes: the label map's size.

    Returns:
        A float32 multi-hot vector of num_classes.
    """
    targets = np.zeros(num_classes, np.float32)
    for label_index, first, last in sample.video_ranges or (
        (sample.label_index, sample.first_frame, sample.last_frame),
    ):
        if first <= last_index and (last is None or last >= first_index):
            targets[label_index] = 1.0
    return targets


def _frames_in_range(reader: VideoReader, sample: Sample) -> Iterator[Frame]:
    """The reader's sampled frames inside the sample's range; decoding stops at the range's end."""
    for frame in reader:
        if frame.index < sample.first_frame:
            continue
        if sample.last_frame is not None and frame.index > sample.last_frame:
            return
        yield frame


def _clip_start(start_fraction: float, available: int, n_frames: int) -> int:
    """Sampled frames of the range before the clip: start_fraction (clamped to 0..1) of the slack."""
    return round(min(max(start_fraction, 0.0), 1.0) * max(0, available - n_frames))


def read_clip(
    sample: Sample,
    *,
    n_frames: int,
    imgz: int,
    fps: float | None,
    start_fraction: float = 0.5,
    crop_position: tuple[float, float] = CENTRE,
) -> Clip:
    """n_frames consecutive resampled frames inside the sample's range, preprocessed as predict does.

    start_fraction places the clip within the range: 0 starts at its first sampled frame,
    1 ends at its last, 0.5 centres it. A range with fewer sampled frames than n_frames
    repeats its last frame (as prediction does for a short video). Decoding stops as soon
    as the clip is complete, so a clip costs the frames up to its end, not the whole video.
    """
    reader = VideoReader(sample.video_path, fps=fps, name=sample.item_name, shorter_side=imgz)
    first = sample.first_frame
    last = sample.last_frame
    range_end = last if last is not None else (reader.declared_frames - 1 if reader.declared_frames else None)
    skip = 0
    if range_end is not None:
        # Sampled frames in the range, to within one: resampling keeps about fps/source_fps of them.
        kept_fraction = 1.0
        if fps is not None and reader.source_fps and fps < reader.source_fps:
            kept_fraction = fps / reader.source_fps
        available = max(1, math.floor((range_end - first + 1) * kept_fraction))
        skip = _clip_start(start_fraction, available, n_frames)
    # The last n_frames of the range seen so far: if the estimate overshoots, the clip ends at the range's end.
    window: collections.deque = collections.deque(maxlen=n_frames)
    taken = 0
    for frame in _frames_in_range(reader, sample):
        window.append(frame)
        taken += 1
        if taken >= skip + n_frames:
            break
    if not window:
        raise VideoError(sample.item_name, f"has no frame in the labelled range {first}..{last}")
    images = [preprocess_frame(frame.image, imgz, crop_position) for frame in window]
    return clip_from_frames(images, [frame.index for frame in window], n_frames)


class RangeCache:
    """Each training sample's range, decoded once: its sampled frames, resized, on disk.

    Training draws a new clip from every range every epoch. Decoding the video each time
    costs more than the model step for real videos (a clip near the end of a 20 s 720p
    video means decoding 20 s of it); from the second epoch on, a clip is a slice of this
    cache instead. Frames are kept resized to the shorter side imgz, uncropped (uint8),
    so the crop position can still change per clip. A range longer than max_frames
    sampled frames, or one that would take the cache past max_bytes (default: half the
    disk space free at the start), is not cached and decodes each time.
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        *,
        imgz: int,
        fps: float | None,
        max_frames: int = 600,
        max_bytes: int | None = None,
    ):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.imgz = imgz
        self.fps = fps
        self.max_frames = max_frames
        self.max_bytes = max_bytes if max_bytes is not None else shutil.disk_usage(self.directory).free // 2
        self._uncached: set[Sample] = set()
        self._lock = threading.Lock()
        self._bytes = 0

    def _paths(self, sample: Sample) -> tuple[Path, Path]:
        key = f"{sample.video_path}|{sample.first_frame}|{sample.last_frame}|{self.imgz}|{self.fps}"
        stem = hashlib.sha1(key.encode()).hexdigest()
        return self.directory / f"{stem}.frames.npy", self.directory / f"{stem}.indices.npy"

    def _fill(self, sample: Sample, frames_path: Path, indices_path: Path) -> bool:
        reader = VideoReader(sample.video_path, fps=self.fps, name=sample.item_name, shorter_side=self.imgz)
        images, indices = [], []
        for frame in _frames_in_range(reader, sample):
            if len(images) == self.max_frames:
                return False
            images.append(frame.image)
            indices.append(frame.index)
        if not images:
            raise VideoError(
                sample.item_name, f"has no frame in the labelled range {sample.first_frame}..{sample.last_frame}"
            )
        size = sum(image.nbytes for image in images)
        with self._lock:
            if self._bytes + size > self.max_bytes:
                return False
            self._bytes += size
        np.save(indices_path, np.array(indices))
        # The frames file marks a complete entry, so it is written under another name and renamed.
        partial = frames_path.with_name(f"{frames_path.stem}.{threading.get_ident()}.partial.npy")
        np.save(partial, np.stack(images))
        os.replace(partial, frames_path)
        return True

    def clip(
        self, sample: Sample, *, n_frames: int, start_fraction: float, crop_position: tuple[float, float] = CENTRE
    ) -> Clip:
        """Like read_clip, from the cache (filled on first use); exact about the range's length."""
        frames_path, indices_path = self._paths(sample)
        if sample in self._uncached or (not frames_path.exists() and not self._fill(sample, frames_path, indices_path)):
            self._uncached.add(sample)
            return read_clip(
                sample,
                n_frames=n_frames,
                imgz=self.imgz,
                fps=self.fps,
                start_fraction=start_fraction,
                crop_position=crop_position,
            )
        # Memory-mapped: a clip reads its own frames, not the whole range.
        images, indices = np.load(frames_path, mmap_mode="r"), np.load(indices_path)
        skip = _clip_start(start_fraction, len(images), n_frames)
        chosen = range(skip, min(skip + n_frames, len(images)))
        frames = [preprocess_frame(images[i], self.imgz, crop_position) for i in chosen]
        return clip_from_frames(frames, [int(indices[i]) for i in chosen], n_frames)

    def size_bytes(self) -> int:
        return sum(path.stat().st_size for path in self.directory.glob("*.npy"))
