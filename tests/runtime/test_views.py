"""Multi-view testing (runtime.views, ClipClassifier.classify_views / embed_views) on both runtimes."""

from __future__ import annotations

import numpy as np
import pytest

from adapter.core.config import MovinetConfig
from adapter.model.loading import load_model
from adapter.runtime import backend
from adapter.runtime.classifiers import ClipClassifier
from adapter.runtime.results import Scoring, softmax
from adapter.runtime.tf_backend import BaseVideoClassifier
from adapter.runtime.views import fuse_views, view_weights
from adapter.video.clips import Clip, base_clips
from adapter.video.preprocessing import preprocess_frame, preprocess_views
from adapter.video.reader import VideoReader
from tests.videos import write_video

IMGZ, FRAMES = 48, 4
CONFIG = MovinetConfig.from_dict({"model_id": "a0", "model_mode": "base", "imgz": IMGZ, "fps": 5, "n_frames": FRAMES})
ATOL = 1e-4


def test_mean_weighs_views_equally_and_max_confidence_keeps_the_surest_view():
    views = np.array([[0.5, 0.5, 0.0], [0.1, 0.1, 0.8], [0.7, 0.2, 0.1]], np.float32)

    mean = view_weights(views, "mean")
    surest = view_weights(views, "max_confidence")

    np.testing.assert_allclose(fuse_views(views, mean), views.mean(axis=0), rtol=1e-6)
    np.testing.assert_array_equal(surest, [0, 1, 0])
    np.testing.assert_array_equal(fuse_views(views, surest), views[1])
    with pytest.raises(ValueError, match="'vote'"):
        view_weights(views, "vote")


class ScriptedViews(ClipClassifier):
    """Logits per view from the view's first pixel (so a test can script what each view sees), in batches of 2."""

    calls = 0

    def _logits(self, clips):
        batch = []
        for clip in clips:
            batch.append(clip)
            if len(batch) == 2:
                yield batch, np.stack([c.frames[0, 0, 0] for c in batch])
                batch = []
        if batch:
            yield batch, np.stack([c.frames[0, 0, 0] for c in batch])

    def _logits_and_features(self, clips):
        for batch, logits in self._logits(clips):
            yield batch, logits, logits * 10


def multi_view_clip(view_logits, first):
    frames = np.zeros((2, len(view_logits), 1, 1, 3), np.float32)
    for view, logits in enumerate(view_logits):
        frames[:, view, 0, 0] = logits
    return Clip(frames, first, first + 1)


def test_classify_views_fuses_each_clip_across_batches_that_split_its_views():
    # Two clips of three views: batches of two views cut across clips.
    clips = [
        multi_view_clip([[5, 0, 0], [0, 0, 0], [0, 0, 0]], 0),
        multi_view_clip([[0, 0, 0], [0, 9, 0], [1, 0, 0]], 2),
    ]
    per_view = [softmax(np.asarray(c.frames[0, :, 0, 0])) for c in clips]

    mean = ScriptedViews().classify_views(clips, "mean")
    surest = ScriptedViews().classify_views(clips, "max_confidence")

    assert [(s.first_index, s.last_index) for s in mean.segments] == [(0, 1), (2, 3)]
    for segment, views in zip(mean.segments, per_view):
        np.testing.assert_allclose(segment.probabilities, views.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(surest.segments[1].probabilities, per_view[1][1], rtol=1e-6)
    np.testing.assert_allclose(mean.probabilities, np.mean([v.mean(axis=0) for v in per_view], axis=0), rtol=1e-6)
    # The embedding takes the same view weights: the surest view's feature in clip 1.
    embedding = ScriptedViews().embed_views(clips[1:], "max_confidence")
    np.testing.assert_allclose(embedding, [0, 1, 0], atol=1e-6)


def test_classify_views_scores_with_the_classifiers_scoring_and_calibrates_after_fusing():
    clips = [
        multi_view_clip([[2, 0, -1], [0, 1, 0], [1, 0, 0]], 0),
        multi_view_clip([[0, 3, 0], [0, 0, 2], [-1, 0, 1]], 2),
    ]
    view_logits = [np.asarray(c.frames[0, :, 0, 0], np.float64) for c in clips]

    # Multi-label: each view's classes are independent sigmoids, not a softmax.
    sigmoids = ScriptedViews()
    sigmoids.scoring = Scoring(multi_label=True)
    multi = sigmoids.classify_views(clips, "mean")
    for segment, logits in zip(multi.segments, view_logits):
        np.testing.assert_allclose(segment.probabilities, (1 / (1 + np.exp(-logits))).mean(axis=0), rtol=1e-5)

    # A temperature: each fused clip and the clips' mean are calibrated, as classify() does.
    calibrated = ScriptedViews()
    calibrated.scoring = Scoring(temperature=2.0)
    plain = ScriptedViews().classify_views(clips, "mean")
    got = calibrated.classify_views(clips, "mean")
    for segment, uncalibrated in zip(got.segments, plain.segments):
        np.testing.assert_allclose(segment.probabilities, calibrated.scoring.calibrate(uncalibrated.probabilities))
        assert not np.allclose(segment.probabilities, uncalibrated.probabilities)
    np.testing.assert_allclose(got.probabilities, calibrated.scoring.calibrate(plain.probabilities), rtol=1e-6)


def test_a_single_view_clip_is_refused_by_classify_views():
    with pytest.raises(ValueError, match="T x views x H x W x 3"):
        ScriptedViews().classify_views([Clip(np.zeros((2, 1, 1, 3), np.float32), 0, 1)])


@pytest.fixture(scope="module")
def loaded(hub_cache):
    return load_model(CONFIG, None)


@pytest.fixture(scope="module")
def wide_frames(tmp_path_factory):
    path = write_video(tmp_path_factory.mktemp("views") / "wide.mp4", frames=30, fps=10, width=144, height=48, seed=2)
    return [(frame.index, frame.image) for frame in VideoReader(str(path), fps=5)]


def view_clips(frames, crops):
    return list(base_clips(((i, preprocess_views(image, IMGZ, crops)) for i, image in frames), FRAMES))


def test_three_crops_on_tensorflow_equal_each_crop_classified_alone(loaded, wide_frames):
    classifier = BaseVideoClassifier(loaded.model, batch_size=2)
    positions = [(0.5, 0.0), (0.5, 0.5), (0.5, 1.0)]
    alone = [
        classifier.classify(list(base_clips(((i, preprocess_frame(im, IMGZ, p)) for i, im in wide_frames), FRAMES)))
        for p in positions
    ]

    fused = classifier.classify_views(view_clips(wide_frames, 3), "mean")

    assert len(fused.segments) == len(alone[0].segments) == 4
    for k, segment in enumerate(fused.segments):
        expected = np.mean([a.segments[k].probabilities for a in alone], axis=0)
        np.testing.assert_allclose(segment.probabilities, expected, atol=1e-5)
    # The centre view alone is today's prediction (test_crops 1).
    centre = classifier.classify(list(base_clips(((i, preprocess_frame(im, IMGZ)) for i, im in wide_frames), FRAMES)))
    np.testing.assert_allclose(alone[1].probabilities, centre.probabilities, atol=1e-6)


@pytest.mark.parametrize("fusion", ["mean", "max_confidence"])
def test_tflite_runs_each_view_and_gives_the_tensorflow_result(loaded, wide_frames, fusion):
    tflite = backend.make_classifier(CONFIG.replace(runtime="tflite"), loaded)  # the cached conversion
    tensorflow = BaseVideoClassifier(loaded.model, batch_size=2)
    clips = view_clips(wide_frames, 3)

    got, want = tflite.classify_views(clips, fusion), tensorflow.classify_views(clips, fusion)

    for segment, expected in zip(got.segments, want.segments):
        assert segment.class_index == expected.class_index
        np.testing.assert_allclose(segment.probabilities, expected.probabilities, atol=ATOL)
    np.testing.assert_allclose(tflite.embed_views(clips, fusion), tensorflow.embed_views(clips, fusion), atol=ATOL)
