"""Clean temporal segments (runtime.segments): smoothing, minimum length, confidence floor.

Made from per-clip probabilities with known switch times, and from generated videos whose
motion switches at known frames, classified by an oracle that reads the motion (a trained
model's part is measured in benchmarks/temporal_segments.py).
"""

from __future__ import annotations

import numpy as np
import pytest

from adapter.core.config import MovinetConfig
from adapter.runtime.classifiers import ClipClassifier
from adapter.runtime.results import Segment, temporal_ranges
from adapter.runtime.segments import SegmentOptions, clean_temporal_ranges, smooth_probabilities
from adapter.video.clips import base_clips
from adapter.video.preprocessing import preprocess_frame
from adapter.video.reader import VideoReader
from tests.videos import locate_square, write_switching_video

LABELS = ["left", "right", "still"]


def clip_segments(probabilities, clip_frames=4):
    """One segment per row: clip i covers frames i*clip_frames .. (i+1)*clip_frames - 1."""
    segments = []
    for i, p in enumerate(np.asarray(probabilities, np.float32)):
        best = int(np.argmax(p))
        segments.append(Segment(i * clip_frames, (i + 1) * clip_frames - 1, best, float(p[best]), p))
    return segments


def confident(label_index, confidence=0.8):
    p = np.full(len(LABELS), (1 - confidence) / (len(LABELS) - 1), np.float32)
    p[label_index] = confidence
    return p


def spans(ranges):
    return [(r.label, r.first_frame, r.last_frame) for r in ranges]


def test_options_off_give_exactly_temporal_ranges():
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(3), size=12)
    segments = clip_segments(probabilities)

    got = clean_temporal_ranges(segments, LABELS, 50, 10.0, SegmentOptions())

    assert got == temporal_ranges(segments, LABELS, 50)
    assert not SegmentOptions.from_config(MovinetConfig()).active


def test_smoothing_removes_one_noisy_clip_that_splits_an_action_in_three():
    # Ten clips of "left", the fifth confidently "right": today that is three segments.
    probabilities = [confident(0)] * 4 + [confident(1, 0.9)] + [confident(0)] * 5
    segments = clip_segments(probabilities)
    assert len(temporal_ranges(segments, LABELS, 39)) == 3

    # 2 s at 10 fps = 20 frames: the window centred on the noisy clip overlaps five clips.
    got = clean_temporal_ranges(segments, LABELS, 39, 10.0, SegmentOptions(smoothing_seconds=2.0))

    assert spans(got) == [("left", 0, 39)]
    assert 0.5 < got[0].confidence < 0.8  # the noisy clip's smoothed "left" lowers the mean


def test_a_causal_window_only_looks_back():
    probabilities = np.stack([confident(0)] * 3 + [confident(1)] * 3)
    first = [4 * i for i in range(6)]
    last = [4 * i + 3 for i in range(6)]

    causal = smooth_probabilities(first, last, probabilities, 8.0, causal=True)
    centred = smooth_probabilities(first, last, probabilities, 8.0, causal=False)

    # The last "left" clip: its past is all "left"; the centred window also sees the next clip.
    np.testing.assert_allclose(causal[2], probabilities[2])
    assert centred[2][1] > probabilities[2][1]
    # The first "right" clip mixes in the clip before it only.
    np.testing.assert_allclose(causal[3], (probabilities[2] + probabilities[3]) / 2, rtol=1e-6)


def test_short_runs_join_the_neighbour_they_fit_best_and_none_stays_shorter_than_the_minimum():
    # left x5, one "still" clip closer to right than to left, right x5, one trailing "left" clip.
    odd = np.array([0.2, 0.35, 0.45], np.float32)
    probabilities = [confident(0)] * 5 + [odd] + [confident(1)] * 5 + [confident(0, 0.6)]
    segments = clip_segments(probabilities)

    got = clean_temporal_ranges(segments, LABELS, 47, 10.0, SegmentOptions(min_segment_seconds=1.0))

    assert spans(got) == [("left", 0, 19), ("right", 20, 47)]
    assert all(r.last_frame - r.first_frame + 1 >= 10 for r in got)


def test_a_span_under_the_confidence_floor_gets_no_label():
    flat = np.full(3, 1 / 3, np.float32)
    probabilities = [confident(0)] * 3 + [flat] * 3 + [confident(1)] * 3
    segments = clip_segments(probabilities)

    got = clean_temporal_ranges(segments, LABELS, 35, 10.0, SegmentOptions(min_confidence=0.5))

    assert spans(got) == [("left", 0, 11), ("right", 24, 35)]
    assert all(r.confidence >= 0.5 for r in got)


class MotionOracle(ClipClassifier):
    """Logits from the clip itself: where the bright square's centre moved (left / right / still)."""

    def _logits(self, clips):
        for clip in clips:
            width = clip.frames.shape[2]
            xs = [locate_square(frame * 255)[0] for frame in clip.frames]
            # Shortest way round the wrap-around.
            steps = [(b - a + width / 2) % width - width / 2 for a, b in zip(xs, xs[1:])]
            motion = float(np.median(steps))
            yield [clip], np.array([[-motion, motion, 0.5 - abs(motion)]], np.float32)


@pytest.mark.parametrize("smoothing", [0.0, 1.0])
def test_switches_of_a_generated_video_are_found_within_one_clip(tmp_path, smoothing):
    # 10 fps video, resampled to 5 fps, clips of 4: one clip spans 8 source frames.
    truth = write_switching_video(
        tmp_path / "switch.avi", [((-2, 0), 37), ((2, 0), 29), ((-2, 0), 34)], fps=10, width=48, height=48, seed=3
    )
    reader = VideoReader(str(tmp_path / "switch.avi"), fps=5)
    clips = base_clips(((f.index, preprocess_frame(f.image, 32)) for f in reader), 4)
    prediction = MotionOracle().classify(clips)
    options = SegmentOptions(smoothing_seconds=smoothing, min_segment_seconds=2.0)

    got = clean_temporal_ranges(prediction.segments, LABELS, reader.num_frames - 1, reader.source_fps, options)

    assert [r.label for r in got] == ["left", "right", "left"]
    clip_span = 8
    for found, (first, last) in zip(got, truth):
        assert abs(found.first_frame - first) <= clip_span
        assert abs(found.last_frame - last) <= clip_span
    assert all(r.last_frame - r.first_frame + 1 >= 2.0 * reader.source_fps for r in got)


def test_a_centred_window_takes_in_every_clip_it_overlaps():
    # Clips of 4 frames at 5 fps (0.8 s): a 1 s window centred on a clip reaches into both neighbours.
    probabilities = np.stack([confident(0), confident(1), confident(0)])

    smoothed = smooth_probabilities([0, 4, 8], [3, 7, 11], probabilities, 5.0, causal=False)

    np.testing.assert_allclose(smoothed[1], probabilities.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(smoothed[0], probabilities[:2].mean(axis=0), rtol=1e-6)


def test_stream_models_smooth_over_the_past_only_and_base_models_over_a_centred_window():
    keys = {"temporal_smoothing": 2, "min_segment_seconds": 1.5, "segment_min_confidence": 0.4}

    stream = SegmentOptions.from_config(MovinetConfig.from_dict({"model_mode": "stream", **keys}))
    base = SegmentOptions.from_config(MovinetConfig.from_dict({"model_mode": "base", **keys}))

    assert stream == SegmentOptions(2.0, 1.5, 0.4, causal=True)
    assert base == SegmentOptions(2.0, 1.5, 0.4, causal=False)
