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
    frames: np.ndarray  # T x imgz x imgz x 3 float32 RGB in [0, 1]
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
