"""Multi-view preprocessing: three square crops along the long side, each what preprocess_frame gives there."""

from __future__ import annotations

import numpy as np
import pytest

from adapter.video.preprocessing import CENTRE, crop_positions, preprocess_frame, preprocess_views
from tests.videos import generate_frames


def test_crops_run_along_the_long_side():
    assert crop_positions(48, 144, 3) == [(0.5, 0.0), CENTRE, (0.5, 1.0)]
    assert crop_positions(144, 48, 3) == [(0.0, 0.5), CENTRE, (1.0, 0.5)]
    assert crop_positions(48, 144, 1) == [CENTRE]
    with pytest.raises(ValueError, match="2"):
        crop_positions(48, 144, 2)


def test_three_views_of_a_wide_frame_are_its_left_centre_and_right_thirds():
    (image,) = generate_frames(frames=1, width=144, height=48, pattern="color_bars")

    views = preprocess_views(image, 32, 3)

    assert views.shape == (3, 32, 32, 3)
    # Colour bars: blue, green, red from left to right; views are RGB.
    dominant = [int(np.argmax(view.reshape(-1, 3).mean(axis=0))) for view in views]
    assert dominant == [2, 1, 0]  # RGB: blue, green, red
    for view, position in zip(views, crop_positions(48, 144, 3)):
        np.testing.assert_array_equal(view, preprocess_frame(image, 32, position))
    np.testing.assert_array_equal(preprocess_views(image, 32, 1)[0], preprocess_frame(image, 32))
