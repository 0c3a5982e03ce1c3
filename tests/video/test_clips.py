"""Clip samplers: which frames each clip holds and which source frames it owns."""

from __future__ import annotations

import numpy as np

from adapter.video.clips import base_clips, stream_windows


def frames(count, first_index=0, step=2):
    # Each frame is filled with its own source index, so clip contents are easy to read back.
    return [(first_index + i * step, np.full((2, 2, 3), first_index + i * step, np.float32)) for i in range(count)]


def contents(clip):
    return [int(frame[0, 0, 0]) for frame in clip.frames]


def test_base_clips_are_full_and_the_tail_borrows_the_frames_before_it():
    clips = list(base_clips(frames(10), 4))

    assert [contents(c) for c in clips] == [[0, 2, 4, 6], [8, 10, 12, 14], [12, 14, 16, 18]]
    # The tail clip owns only its own frames.
    assert [(c.first_index, c.last_index) for c in clips] == [(0, 6), (8, 14), (16, 18)]


def test_a_video_shorter_than_one_clip_repeats_its_last_frame():
    (clip,) = base_clips(frames(2), 5)

    assert contents(clip) == [0, 2, 2, 2, 2]
    assert (clip.first_index, clip.last_index) == (0, 2)


def test_stream_windows_do_not_pad_or_overlap():
    windows = list(stream_windows(frames(10), 4))

    assert [contents(w) for w in windows] == [[0, 2, 4, 6], [8, 10, 12, 14], [16, 18]]


def test_nothing_in_nothing_out():
    assert list(base_clips([], 4)) == [] and list(stream_windows([], 4)) == []
