"""Multi-label clip targets (adapter.datasets.sample_clips.clip_targets) and one sample per range."""

from __future__ import annotations

import numpy as np

from adapter.datasets.layout import Sample, distinct_ranges, load_subset
from adapter.datasets.sample_clips import clip_targets
from tests.motion_dataset import write_multi_label_dataset


def _sample(label_index, first, last, ranges):
    return Sample("/v.avi", label_index, first, last, "/v.avi", video_ranges=tuple(ranges))


def test_a_clips_targets_are_every_label_annotated_on_overlapping_frames():
    ranges = [(0, 0, 19), (1, 10, 29), (2, 25, None)]  # 2 is open to the end
    sample = _sample(0, 0, 19, ranges)
    assert clip_targets(sample, 0, 9, 4).tolist() == [1, 0, 0, 0]
    assert clip_targets(sample, 15, 19, 4).tolist() == [1, 1, 0, 0]  # two ranges overlap here
    assert clip_targets(sample, 19, 25, 4).tolist() == [1, 1, 1, 0]  # a one-frame overlap counts
    assert clip_targets(sample, 30, 90, 4).tolist() == [0, 0, 1, 0]
    # Without the video's ranges, the sample's own label over its own range.
    assert clip_targets(Sample("/v.avi", 3, 5, 9, "/v.avi"), 0, 4, 4).tolist() == [0, 0, 0, 0]
    assert clip_targets(Sample("/v.avi", 3, 5, 9, "/v.avi"), 0, 5, 4).tolist() == [0, 0, 0, 1]


def test_two_labels_on_one_video_become_one_sample_that_knows_both(tmp_path):
    data = write_multi_label_dataset(tmp_path, per_pair={"train": 1}, frames=4)
    samples = load_subset(data.root, "train", data.labels).samples
    assert len(samples) == 8  # 4 videos x 2 annotations: one sample each, as single-label training sees them
    kept = distinct_ranges(samples)
    assert len(kept) == 4
    for sample in kept:
        colour, size = sample.item_name.strip("/").split("/")[0].split("_")
        targets = clip_targets(sample, 0, 3, len(data.labels))
        assert [data.labels[i] for i in np.flatnonzero(targets)] == sorted([colour, size])
