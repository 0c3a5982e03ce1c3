"""Multi-view testing, spaced clips and clean temporal segments through the adapter and the CLI.

With the new keys absent the presets predict what they predicted before (the reference here
is built from the pieces the old path used, not from the adapter's new code).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from adapter import MovinetAdapter
from adapter.core.presets import preset_configuration
from adapter.evaluation.segment_metrics import score_segments, summarize_segments
from adapter.runtime.results import temporal_ranges, top_k_labels
from adapter.runtime.tf_backend import BaseVideoClassifier, StreamVideoClassifier
from adapter.video.clips import base_clips, stream_windows
from adapter.video.inputs import local_video
from adapter.video.preprocessing import preprocess_frame, preprocess_views
from adapter.video.reader import VideoReader
from tests.conftest import model_entity
from tests.motion_dataset import class_annotation, write_item
from tests.videos import write_switching_video, write_video

SMALL = {"model_id": "a0", "imgz": 48, "n_frames": 4, "batch_size": 2, "top_k": 3, "fps": 5, "runtime": "tensorflow"}


def annotations_of(collection, level):
    return [
        (a.label, a.start_frame, a.end_frame, a.metadata["user"]["model"]["confidence"])
        for a in collection.annotations
        if a.metadata["user"]["movinet"]["level"] == level
    ]


@pytest.mark.parametrize("mode", ["base", "stream"])
def test_presets_without_the_new_keys_predict_what_the_centre_crop_tiling_path_gives(
    mode, hub_cache, module_platform, tmp_path
):
    # The preset's own input (imgz 172, its n_frames and fps); tensorflow so nothing converts.
    configuration = {**preset_configuration("a0", mode), "runtime": "tensorflow", "temporal_annotations": True}
    for key in ("test_crops", "view_fusion", "test_clips", "temporal_smoothing", "min_segment_seconds"):
        assert key not in configuration
    adapter = MovinetAdapter(model_entity=model_entity(configuration, name=f"preset-{mode}", model_id=f"p-{mode}"))
    config = adapter.config
    path = write_video(tmp_path / "v.mp4", frames=40, fps=10, width=96, height=64, seed=4)

    (collection,) = adapter.predict([local_video(path)])

    # Today's reading path: FFmpeg resizes the shorter side while decoding (issue 17), then the centre crop.
    reader = VideoReader(str(path), fps=config.frame_rate, shorter_side=config.imgz)
    frames = [(f.index, preprocess_frame(f.image, config.imgz)) for f in reader]
    if mode == "base":
        expected = BaseVideoClassifier(adapter.loaded.model, config.batch_size).classify(
            base_clips(frames, config.n_frames)
        )
    else:
        expected = StreamVideoClassifier(adapter.loaded.model).classify(stream_windows(frames, config.n_frames))
    labels = adapter.loaded.labels
    want_video = [(label, 0, 39, p) for label, p in top_k_labels(expected.probabilities, labels, config.top_k)]
    want_segments = [
        (r.label, r.first_frame, r.last_frame, r.confidence) for r in temporal_ranges(expected.segments, labels, 39)
    ]
    got_video, got_segments = annotations_of(collection, "video"), annotations_of(collection, "segment")
    assert [g[:3] for g in got_video] == [w[:3] for w in want_video]
    assert [g[:3] for g in got_segments] == [w[:3] for w in want_segments]
    np.testing.assert_allclose([g[3] for g in got_video + got_segments], [w[3] for w in want_video + want_segments])


@pytest.fixture(scope="module")
def small_adapter(hub_cache, module_platform):
    entity = model_entity({**SMALL, "model_mode": "base", "temporal_annotations": True}, name="small", model_id="s")
    return MovinetAdapter(model_entity=entity)


@pytest.mark.parametrize("fusion", ["mean", "max_confidence"])
def test_three_crops_fuse_the_views_of_each_clip_for_segments_video_and_embedding(small_adapter, tmp_path, fusion):
    adapter = small_adapter
    base = adapter.config
    path = write_video(tmp_path / "wide.mp4", frames=30, fps=10, width=144, height=48, seed=7)
    frames = [(f.index, f.image) for f in VideoReader(str(path), fps=5)]
    clips = list(base_clips(((i, preprocess_views(image, 48, 3)) for i, image in frames), 4))
    expected = adapter.classifier.classify_views(clips, fusion)
    try:
        adapter.config = base.replace(test_crops=3, view_fusion=fusion)
        (collection,) = adapter.predict([local_video(path)])
        embedding = adapter.embed_video(local_video(path))
        adapter.config = base
        single = adapter.embed_video(local_video(path))
    finally:
        adapter.config = base

    top = top_k_labels(expected.probabilities, adapter.loaded.labels, 3)
    assert [(label, round(p, 5)) for label, _, _, p in annotations_of(collection, "video")] == [
        (label, round(p, 5)) for label, p in top
    ]
    want = temporal_ranges(expected.segments, adapter.loaded.labels, 29)
    assert [a[:3] for a in annotations_of(collection, "segment")] == [
        (r.label, r.first_frame, r.last_frame) for r in want
    ]
    np.testing.assert_allclose(embedding, adapter.classifier.embed_views(clips, fusion), atol=1e-6)
    assert not np.allclose(embedding, single, atol=1e-4)  # the side views count


def test_test_clips_classifies_that_many_evenly_spaced_clips(small_adapter, tmp_path):
    adapter = small_adapter
    base = adapter.config
    path = write_video(tmp_path / "long.mp4", frames=80, fps=10, width=48, height=48, pattern="noise")
    try:
        adapter.config = base.replace(test_clips=3)
        prediction, reader = adapter.classify_video(local_video(path))
    finally:
        adapter.config = base

    # 40 kept frames (every second source frame): clips start at kept frames 0, 18 and 36.
    assert [(s.first_index, s.last_index) for s in prediction.segments] == [(0, 6), (36, 42), (72, 78)]
    assert reader.num_frames == 80
    np.testing.assert_allclose(
        prediction.probabilities, np.mean([s.probabilities for s in prediction.segments], axis=0), rtol=1e-5
    )


@pytest.fixture(scope="module")
def two_label_weights(tmp_path_factory):
    from adapter.model import network
    from adapter.model.loading import FineTunedInfo, save_finetuned

    folder = tmp_path_factory.mktemp("weights")
    model = network.build_classifier("a0", "base", num_classes=2)
    model(np.zeros((1, 4, 32, 32, 3), np.float32))
    save_finetuned(model, str(folder), FineTunedInfo("a0", "base", ["left", "right"], imgz=32, n_frames=4, fps=5.0))
    return str(folder)


def test_evaluate_scores_temporal_segments_when_they_are_asked_for(two_label_weights, tmp_path, capsys):
    from adapter.cli.options import loaded_adapter
    from adapter.cli.parser import main as movinet
    from tests.conftest import set_options

    subset = tmp_path / "data" / "validation"
    truths = {}
    for k, parts in enumerate([[("left", 20), ("right", 15)], [("right", 12), ("left", 14), ("right", 10)]]):
        start, ranges = 0, []
        for label, count in parts:
            ranges.append((label, start, start + count - 1))
            start += count
        name = f"/switching/v{k}.avi"
        annotations = [class_annotation(label, a, b, annotation_id=f"a{i}") for i, (label, a, b) in enumerate(ranges)]
        path, _ = write_item(str(subset), name, annotations, item_id=f"item-{k}", fps=5)
        directions = {"left": (-4, 0), "right": (4, 0)}
        write_switching_video(path, [(directions[label], count) for label, count in parts], fps=5, seed=k)
        truths[name] = (path, ranges, start)
    options = {"runtime": "tensorflow", "temporal_smoothing": 1, "min_segment_seconds": 1}
    report_path = tmp_path / "report.json"

    plain = movinet(["evaluate", str(tmp_path / "data"), "--weights", two_label_weights, "--output", str(report_path)])
    assert plain == 0
    assert "segments" not in json.loads(report_path.read_text())
    code = movinet(
        ["evaluate", str(tmp_path / "data"), "--weights", two_label_weights, "--output", str(report_path)]
        + set_options(temporal_annotations="true", **options)
    )

    assert code == 0
    report = json.loads(report_path.read_text())
    assert "temporal segments of 2 video(s)" in capsys.readouterr().out
    # The same numbers from the adapter's own temporal annotations scored here.
    import argparse

    args = argparse.Namespace(
        model="movinet-a0-base", manifest=None, weights=two_label_weights, set=[f"{k}={v}" for k, v in options.items()]
    )
    adapter = loaded_adapter(args)
    adapter.config = adapter.config.replace(temporal_annotations=True)
    scores = []
    for name, (path, ranges, frames) in sorted(truths.items()):
        (collection,) = adapter.predict([local_video(path)])
        predicted = [(label, first, last) for label, first, last, _ in annotations_of(collection, "segment")]
        assert all(last - first + 1 >= 5 for _, first, last in predicted)  # min_segment_seconds 1 at 5 fps
        scores.append(score_segments(name, predicted, ranges, frames))
    assert report["segments"] == json.loads(json.dumps(summarize_segments(scores)))
