"""adapter.platform.dataset_runs: dataset runs sized by video duration."""

from __future__ import annotations

import pytest

from adapter.platform.dataset_runs import subset_limit_for
from adapter.platform.items import video_seconds


@pytest.mark.parametrize(
    ("system", "seconds"),
    [
        ({"duration": 600.5}, 600.5),
        ({"nb_frames": 900, "fps": 30}, 30.0),
        ({"ffmpeg": {"nb_frames": 300}, "fps": 10}, 30.0),
        ({"fps": 30}, None),
        ({"duration": "long"}, None),
        ({}, None),
    ],
)
def test_video_seconds_from_platform_metadata(system, seconds):
    assert video_seconds({"metadata": {"system": system}}) == seconds


def test_the_limit_counts_one_minute_videos_and_shrinks_for_the_longest():
    assert subset_limit_for(550, [30.0, 60.0, None]) == 550
    assert subset_limit_for(550, []) == 550
    # Ten-minute videos on a0: a tenth as many per execution, as the docs' rule says.
    assert subset_limit_for(550, [30.0, 600.0, None]) == 55
    # Never zero: a video longer than the whole budget still runs, alone.
    assert subset_limit_for(50, [10 * 60 * 60.0]) == 1
