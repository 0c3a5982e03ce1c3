"""Clip samplers: preprocessed frames -> fixed-length clips (base) or windows (stream).

Both consume (source frame index, preprocessed frame) pairs as they stream in and keep
at most one clip of frames, so memory does not grow with the video's length.
"""
from __future__ import annotations

import dataclasses
from typing import Iterable, Iterator

import numpy as np


@dataclasses.dataclass
class Clip:
    frames: np.ndarray  # T x imgz x imgz x 3 float32
    first_index: int  # source frame index of the clip's first new frame
    last_index: int  # source frame index of the clip's last frame


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
            window = Clip(np.concatenate([previous.frames[-missing:], window.frames]), window.first_index, window.last_index)
        elif missing:
            window = Clip(np.concatenate([window.frames, np.repeat(window.frames[-1:], missing, axis=0)]), window.first_index, window.last_index)
        yield window
        previous = window
