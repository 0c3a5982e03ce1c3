"""Probability over time (adapter/probability_plot.py and `predict --plot`): what the picture shows."""

from __future__ import annotations

import numpy as np
import pytest

from adapter.evaluation.probability_plot import plot_filename, probability_figure
from adapter.runtime.results import Segment, VideoPrediction

LABELS = ["walk", "run", "jump", "sit"]


def three_clips() -> VideoPrediction:
    # Clips of a 30-frame, 10 fps video; the last two share their top-1 ("run").
    segments = [
        Segment(0, 10, 0, 0.7, np.array([0.7, 0.2, 0.06, 0.04])),
        Segment(12, 22, 1, 0.6, np.array([0.3, 0.6, 0.06, 0.04])),
        Segment(24, 29, 1, 0.5, np.array([0.2, 0.5, 0.25, 0.05])),
    ]
    return VideoPrediction(np.array([0.40, 0.43, 0.12, 0.05]), segments)


def stairs_by_label(figure) -> dict:
    from matplotlib.patches import StepPatch

    return {patch.get_label(): patch.get_data() for patch in figure.axes[0].patches if isinstance(patch, StepPatch)}


def test_one_line_per_top_class_with_each_clips_probability_over_its_time_span():
    figure = probability_figure(three_clips(), LABELS, num_frames=30, source_fps=10.0, top_k=3, title="walk.mp4")

    lines = stairs_by_label(figure)
    assert list(lines) == ["run", "walk", "jump"]  # the video-level top-3, best first
    for label, expected in (("walk", [0.7, 0.3, 0.2]), ("run", [0.2, 0.6, 0.5]), ("jump", [0.06, 0.06, 0.25])):
        np.testing.assert_allclose(lines[label].values, expected)
        # Clips start at frames 0, 12 and 24 of 30, at 10 fps.
        np.testing.assert_allclose(lines[label].edges, [0.0, 1.2, 2.4, 3.0])
    axes = figure.axes[0]
    assert axes.get_xlabel() == "time (s)"
    title = axes.get_title()
    assert "walk.mp4" in title and title.index("run 0.43") < title.index("walk 0.40") < title.index("jump 0.12")


def test_temporal_segments_are_shaded_with_equal_neighbours_merged():
    from matplotlib.patches import Rectangle, StepPatch

    figure = probability_figure(three_clips(), LABELS, num_frames=30, source_fps=10.0, top_k=2, title="v")

    spans = [patch for patch in figure.axes[0].patches if not isinstance(patch, StepPatch)]
    extents = sorted((round(span.get_x(), 6), round(span.get_x() + span.get_width(), 6)) for span in spans)
    assert all(isinstance(span, Rectangle) for span in spans)
    assert extents == [(0.0, 1.2), (1.2, 3.0)]  # walk, then the two "run" clips as one range
    colours = {
        patch.get_label(): patch.get_edgecolor() for patch in figure.axes[0].patches if isinstance(patch, StepPatch)
    }
    first, second = sorted(spans, key=lambda span: span.get_x())
    assert first.get_facecolor()[:3] == pytest.approx(colours["walk"][:3])
    assert second.get_facecolor()[:3] == pytest.approx(colours["run"][:3])


def test_without_a_known_frame_rate_the_axis_is_in_frames():
    figure = probability_figure(three_clips(), LABELS, num_frames=30, source_fps=0.0, top_k=1, title="v")

    assert figure.axes[0].get_xlabel() == "frame"
    np.testing.assert_allclose(stairs_by_label(figure)["run"].edges, [0, 12, 24, 30])


def test_segments_without_probabilities_are_refused():
    prediction = VideoPrediction(np.array([0.5, 0.5, 0, 0]), [Segment(0, 9, 0, 0.5)])

    with pytest.raises(ValueError, match="probabilities"):
        probability_figure(prediction, LABELS, num_frames=10, source_fps=10.0, top_k=2, title="v")


def test_videos_with_the_same_name_get_their_own_pictures():
    taken: set[str] = set()

    names = [plot_filename(path, taken) for path in ("a/walk.mp4", "b/walk.mkv", "c/run.mp4", "d/walk.avi")]

    assert names == ["walk.png", "walk-2.png", "run.png", "walk-3.png"]


@pytest.mark.parametrize("mode", ["base", "stream"])
def test_predict_plot_writes_one_picture_per_predicted_video(hub_cache, tmp_path, mode):
    import cv2

    from adapter.cli import parser as cli
    from tests.videos import write_text_as_video, write_video

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = write_video(tmp_path / "a" / "walk.mp4", frames=20, fps=10)
    second = write_video(tmp_path / "b" / "walk.mkv", frames=12, fps=10, width=48, height=64)
    bad = write_text_as_video(tmp_path / "notes.mp4")
    plots = tmp_path / "plots"
    small = ["--set", "imgz=48", "--set", "n_frames=4", "--set", f"model_mode={mode}"]

    assert cli.main(["predict", first, bad, second, *small, "--plot", str(plots)]) == 1  # the bad video fails

    assert sorted(path.name for path in plots.iterdir()) == ["walk-2.png", "walk.png"]
    for name in ("walk.png", "walk-2.png"):
        image = cv2.imread(str(plots / name))
        assert image is not None and image.shape == (450, 1000, 3)
        assert image.std() > 10  # something was drawn, not a blank canvas
