"""Clips and their sampling: preprocessed frames -> fixed-length clips (base) or windows (stream).

The one clip type (Clip), the one labelled frame range (LabelledRange: annotations predicted
and annotations read for training) and the one padding rule (a clip short of frames repeats
its last frame: padded) for prediction and training alike.

The samplers consume (source frame index, preprocessed frame) pairs as they stream in and keep
at most one clip of frames, so memory does not grow with the video's length.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

import numpy as np

T = TypeVar("T")


@dataclasses.dataclass
class Clip:
    # T x imgz x imgz x 3 float32 RGB in [0, 1]; multi-view testing: T x views x imgz x imgz x 3.
    frames: np.ndarray
    first_index: int  # source frame index of the clip's first new frame
    last_index: int  # source frame index of the clip's last frame
    # Source frame index of every frame, where the sampler tracks them (training clips);
    # a padded clip repeats its last index.
    frame_indices: list[int] | None = None


@dataclasses.dataclass(frozen=True)
class LabelledRange:
    """A label over source frames first_frame..last_frame (inclusive).

    Predicted ranges carry their confidence. Ranges read from a dataset's annotations carry
    the frames as annotated (None: open-ended or the whole video), validated by the reader.
    """

    label: str
    first_frame: object
    last_frame: object
    confidence: float | None = None


def padded(frames: Sequence[T], length: int) -> list[T]:
    """frames completed to length by repeating the last one (a video or range shorter than a clip).

    Args:
        frames: at least one frame (or anything per frame: indices, images).
        length: the clip length.
    Returns:
        A list of max(length, len(frames)) items.
    """
    if len(frames) == 0:
        raise ValueError(f"nothing to pad to {length} frames")
    return list(frames) + [frames[-1]] * (length - len(frames))


def clip_from_frames(images: Sequence[np.ndarray], indices: Sequence[int], length: int) -> Clip:
    """A training clip of exactly length frames, padded, with each frame's source index.

    Args:
        images: the clip's preprocessed frames, in order (at least one).
        indices: their source frame indices.
        length: n_frames.
    Returns:
        The Clip.
    """
    indices = padded(indices, length)
    return Clip(np.stack(padded(images, length)), indices[0], indices[-1], indices)


def stream_windows(frames: Iterable[tuple[int, np.ndarray]], n_frames: int) -> Iterator[Clip]:
    """Consecutive, non-overlapping windows of up to n_frames frames; the last may be shorter.

    The stream model carries its states across windows, so nothing is padded or repeated.
    """
    window: list[np.ndarray] = []
    indices: list[int] = []
    for index, frame in frames:
        window.append(frame)
        indices.append(index)
        if len(window) == n_frames:
            yield Clip(np.stack(window), indices[0], indices[-1])
            window, indices = [], []
    if window:
        yield Clip(np.stack(window), indices[0], indices[-1])


def base_clips(frames: Iterable[tuple[int, np.ndarray]], n_frames: int) -> Iterator[Clip]:
    """Consecutive clips of exactly n_frames frames, for batching through the base model.

    The tail of a video that does not fill a clip is completed with the frames just before
    it (the clip overlaps its predecessor, but only the tail's frames are its own range);
    a video shorter than one clip repeats its last frame.
    """
    previous = None
    for window in stream_windows(frames, n_frames):
        missing = n_frames - len(window.frames)
        if missing and previous is not None:
            window = Clip(
                np.concatenate([previous.frames[-missing:], window.frames]), window.first_index, window.last_index
            )
        elif missing:
            window = Clip(np.stack(padded(window.frames, n_frames)), window.first_index, window.last_index)
        yield window
        previous = window


def spaced_starts(expected_frames: int, n_frames: int, n_clips: int) -> list[int]:
    """The first frame (position among the kept frames) of n_clips clips spread evenly over a video.

    Args:
        expected_frames: the kept frames the video is expected to have (at least 1).
        n_frames: frames per clip.
        n_clips: clips wanted (at least 1).
    Returns:
        Distinct, increasing positions from 0 to expected_frames - n_frames (fewer than
        n_clips when the video is too short to hold them apart).
    """
    last_start = max(0, expected_frames - n_frames)
    if n_clips == 1:
        return [last_start // 2]
    return sorted({round(last_start * k / (n_clips - 1)) for k in range(n_clips)})


def spaced_clips(frames: Iterable[tuple[int, np.ndarray]], n_frames: int, starts: Sequence[int]) -> Iterator[Clip]:
    """Clips of n_frames that begin at the given positions among the frames (spaced_starts), in order.

    Only the last n_frames frames are kept in memory, and every frame is consumed (the reader
    counts the video's frames as they go by). A video shorter than expected ends with one clip
    of its last frames (padded when it has fewer than n_frames) instead of the clips that
    would start after its end.

    Args:
        frames: (source frame index, preprocessed frame) in order.
        n_frames: frames per clip.
        starts: increasing positions at which clips begin.
    Returns:
        The clips; each covers its own frames' source indices.
    """
    pending = list(starts)
    recent: list[tuple[int, np.ndarray]] = []
    position = -1
    emitted_last = None  # the position of the last frame of the clip emitted last
    for position, frame in enumerate(frames):
        recent.append(frame)
        del recent[:-n_frames]
        while pending and position == pending[0] + n_frames - 1:
            pending.pop(0)
            emitted_last = position
            yield Clip(np.stack([image for _, image in recent]), recent[0][0], recent[-1][0])
    if pending and recent and emitted_last != position:
        indices = [index for index, _ in recent]
        yield Clip(np.stack(padded([image for _, image in recent], n_frames)), indices[0], indices[-1])
