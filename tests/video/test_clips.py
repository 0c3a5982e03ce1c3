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


def test_spaced_starts_spread_clips_from_the_first_frame_to_the_last_full_clip():
    from adapter.video.clips import spaced_starts

    assert spaced_starts(100, 4, 3) == [0, 48, 96]
    assert spaced_starts(100, 4, 1) == [48]
    # Too short to hold them apart: fewer, distinct clips.
    assert spaced_starts(5, 4, 4) == [0, 1]
    assert spaced_starts(2, 4, 3) == [0]


def test_spaced_clips_hold_the_frames_at_their_starts_and_every_frame_is_consumed():
    from adapter.video.clips import spaced_clips

    consumed = []

    def counted(items):
        for item in items:
            consumed.append(item[0])
            yield item

    clips = list(spaced_clips(counted(frames(20)), 4, [0, 8, 16]))

    assert [contents(c) for c in clips] == [[0, 2, 4, 6], [16, 18, 20, 22], [32, 34, 36, 38]]
    assert [(c.first_index, c.last_index) for c in clips] == [(0, 6), (16, 22), (32, 38)]
    assert len(consumed) == 20  # the reader counts the video's frames as they go by


def test_a_video_shorter_than_expected_ends_with_a_clip_of_its_last_frames():
    from adapter.video.clips import spaced_clips

    clips = list(spaced_clips(frames(12), 4, [0, 10, 20]))

    assert [contents(c) for c in clips] == [[0, 2, 4, 6], [16, 18, 20, 22]]
    (short,) = spaced_clips(frames(2), 4, [0])
    assert contents(short) == [0, 2, 2, 2]
