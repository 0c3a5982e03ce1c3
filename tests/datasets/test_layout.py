"""adapter.datasets.layout: prepare_data's layout -> samples (skip rules, errors) -> clips inside the labelled ranges."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest

from adapter.datasets.layout import (
    SKIP_BAD_RANGE,
    SKIP_NO_CLASS_ANNOTATION,
    SKIP_NOT_A_VIDEO,
    SKIP_OUTSIDE,
    SKIP_UNKNOWN_LABEL,
    SKIP_UNREADABLE_VIDEO,
    DatasetError,
    Sample,
    labels_in_subset,
    load_subset,
    train_and_validation_subsets,
)
from adapter.datasets.sample_clips import RangeCache, read_clip
from adapter.video.preprocessing import preprocess_frame
from adapter.video.reader import VideoReader
from tests.motion_dataset import CONTAINERS, class_annotation, write_frames, write_item, write_motion_dataset
from tests.videos import write_empty, write_text_as_video, write_video

DATASET_LOGGER = "adapter.datasets.layout"
LABELS = ["left", "right"]


def dataset_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == DATASET_LOGGER and r.levelno == logging.WARNING]


def add_video(
    root, filename, annotations, *, subset="train", mimetype=None, frames=12, fps=5.0, item_id="x", direction=(3, 0)
):
    video_path, _ = write_item(
        os.path.join(root, subset), filename, annotations, item_id=item_id, fps=fps, mimetype=mimetype
    )
    write_video(video_path, frames=frames, fps=fps, width=48, height=48, direction=direction)
    return video_path


# ------------------------------------------------------------------------------ reading the layout


def test_every_container_is_found_through_the_item_json(tmp_path):
    dataset = write_motion_dataset(
        tmp_path, train_per_class=5, validation_per_class=1, frames=10, two_range_video=False
    )

    loaded = load_subset(tmp_path, "train", LABELS)

    assert len(loaded.samples) == 10 and loaded.videos == 10 and not loaded.skipped
    assert {os.path.splitext(s.video_path)[1] for s in loaded.samples} == set(CONTAINERS)
    for sample in loaded.samples:
        label, first, last = dataset.ranges["train"][sample.item_name][0]
        assert (LABELS[sample.label_index], sample.first_frame, sample.last_frame) == (label, first, last)
        assert os.path.isfile(sample.video_path)
        assert sample.video_path.startswith(str(tmp_path / "train" / "items"))


def test_an_item_with_two_labelled_ranges_gives_one_sample_per_range(tmp_path):
    dataset = write_motion_dataset(tmp_path, train_per_class=1, validation_per_class=1, frames=8)

    samples = [s for s in load_subset(tmp_path, "train", LABELS).samples if s.item_name == dataset.two_range_item]

    assert [(LABELS[s.label_index], s.first_frame, s.last_frame) for s in samples] == [("left", 0, 7), ("right", 8, 15)]


def test_a_label_without_a_range_covers_the_whole_video_and_frame_alone_runs_to_the_end(tmp_path):
    add_video(tmp_path, "/whole.mp4", [class_annotation("left")])
    add_video(tmp_path, "/tail.mp4", [class_annotation("right", 5)], item_id="y")

    samples = {s.item_name: s for s in load_subset(tmp_path, "train", LABELS).samples}

    assert (samples["/whole.mp4"].first_frame, samples["/whole.mp4"].last_frame) == (0, None)
    assert (samples["/tail.mp4"].first_frame, samples["/tail.mp4"].last_frame) == (5, None)
    whole = read_clip(samples["/whole.mp4"], n_frames=4, imgz=32, fps=None, start_fraction=1.0)
    assert whole.frame_indices == [8, 9, 10, 11]  # ends at the video's last frame


def test_label_map_order_gives_the_label_index(tmp_path):
    add_video(tmp_path, "/a.mp4", [class_annotation("right", 0, 5)])

    (sample,) = load_subset(tmp_path, "train", ["up", "right", "left"]).samples

    assert sample.label_index == 1


def test_labels_in_subset_are_the_sorted_class_labels(tmp_path):
    add_video(tmp_path, "/a.mp4", [class_annotation("right", 0, 3), class_annotation("left", 4, 8)])
    add_video(tmp_path, "/b.mp4", [class_annotation("down")], item_id="y")

    assert labels_in_subset(tmp_path, "train") == ["down", "left", "right"]


def test_subsets_come_from_the_model_metadata():
    assert train_and_validation_subsets(None) == ("train", "validation")
    assert train_and_validation_subsets({"system": {"subsets": {"train": {}, "validation": {}}}}) == (
        "train",
        "validation",
    )
    with pytest.raises(DatasetError, match="validation"):
        train_and_validation_subsets({"system": {"subsets": {"train": {}, "test": {}}}})


# ------------------------------------------------------------------------------ skip rules


def test_a_label_not_in_the_label_map_is_skipped_with_a_warning(tmp_path, caplog):
    add_video(tmp_path, "/good.mp4", [class_annotation("left", 0, 5)])
    add_video(tmp_path, "/mixed.mp4", [class_annotation("jumping", 0, 3), class_annotation("right", 4, 8)], item_id="y")

    loaded = load_subset(tmp_path, "train", LABELS)

    assert [(s.item_name, LABELS[s.label_index]) for s in loaded.samples] == [
        ("/good.mp4", "left"),
        ("/mixed.mp4", "right"),
    ]
    assert loaded.skipped == {SKIP_UNKNOWN_LABEL: 1}
    warnings = dataset_warnings(caplog)
    assert any("'jumping'" in w and "/mixed.mp4" in w for w in warnings)
    assert f"1 x {SKIP_UNKNOWN_LABEL}" in warnings[-1]  # the summary at the end of loading


def test_an_item_without_a_class_annotation_is_skipped_with_a_warning(tmp_path, caplog):
    add_video(tmp_path, "/good.mp4", [class_annotation("left")])
    box = {"type": "box", "label": "left", "coordinates": [{"x": 0, "y": 0}, {"x": 5, "y": 5}], "metadata": {}}
    add_video(tmp_path, "/boxes.mp4", [box], item_id="y")
    add_video(tmp_path, "/bare.mp4", [], item_id="z")

    loaded = load_subset(tmp_path, "train", LABELS)

    assert [s.item_name for s in loaded.samples] == ["/good.mp4"]
    assert loaded.skipped == {SKIP_NO_CLASS_ANNOTATION: 2}
    warnings = dataset_warnings(caplog)
    assert sum("no class annotation" in w for w in warnings) == 2
    assert f"2 x {SKIP_NO_CLASS_ANNOTATION}" in warnings[-1]


def test_unreadable_videos_are_skipped_with_a_warning_each(tmp_path, caplog):
    add_video(tmp_path, "/good.mkv", [class_annotation("left")])
    text_path, _ = write_item(str(tmp_path / "train"), "/text.mp4", [class_annotation("left")], item_id="t")
    write_text_as_video(text_path)
    empty_path, _ = write_item(str(tmp_path / "train"), "/empty.webm", [class_annotation("right")], item_id="e")
    write_empty(empty_path)
    write_item(str(tmp_path / "train"), "/missing.avi", [class_annotation("right")], item_id="m")  # JSON only

    loaded = load_subset(tmp_path, "train", LABELS)

    assert [s.item_name for s in loaded.samples] == ["/good.mkv"]
    assert loaded.skipped == {SKIP_UNREADABLE_VIDEO: 3}
    warnings = dataset_warnings(caplog)
    for name in ("/text.mp4", "/empty.webm", "/missing.avi"):
        assert sum(name in w for w in warnings) == 1, name
    assert f"3 x {SKIP_UNREADABLE_VIDEO}" in warnings[-1]


def write_escaping_item(data, filename="/../../../outside/x.mp4") -> str:
    """An item JSON in data's train subset whose filename leads out of items/, to a real video there."""
    import json

    from tests.motion_dataset import item_json

    outside = os.path.normpath(os.path.join(data, "train", "items", filename.lstrip("/")))
    os.makedirs(os.path.dirname(outside), exist_ok=True)
    write_video(outside, frames=12, fps=5.0, width=48, height=48)
    (data / "train" / "json").mkdir(parents=True, exist_ok=True)
    document = item_json(filename, [class_annotation("right")], item_id="escape")
    (data / "train" / "json" / "escape.json").write_text(json.dumps(document))
    return outside


@pytest.mark.parametrize("filename", ["/../../../outside/x.mp4", "/sub/../../../outside/x.mp4", "/../items2/x.mp4"])
def test_a_filename_leading_out_of_the_items_folder_is_refused_naming_the_item(tmp_path, caplog, filename):
    data = tmp_path / "data"
    add_video(data, "/good.mp4", [class_annotation("left")])
    outside = write_escaping_item(data, filename)
    assert os.path.isfile(outside)  # the file is there and readable: only the rule keeps it out

    loaded = load_subset(data, "train", LABELS)

    assert [s.item_name for s in loaded.samples] == ["/good.mp4"]
    assert all(s.video_path != outside for s in loaded.samples)
    assert loaded.skipped == {SKIP_OUTSIDE: 1}
    assert sum(filename in w and "items folder" in w for w in dataset_warnings(caplog)) == 1


def test_evaluation_refuses_a_filename_leading_out_of_the_items_folder(tmp_path, caplog):
    from adapter.evaluation.subset import evaluation_items

    data = tmp_path / "data"
    add_video(data, "/good.mp4", [class_annotation("left")])
    write_escaping_item(data)

    items, skipped = evaluation_items(data, "train")

    assert [item.name for item in items] == ["/good.mp4"]
    assert [(name, "leads out" in reason) for name, reason in skipped] == [("/../../../outside/x.mp4", True)]


def test_an_item_that_is_not_a_video_is_skipped(tmp_path, caplog):
    add_video(tmp_path, "/good.avi", [class_annotation("left")])
    add_video(tmp_path, "/picture.mp4", [class_annotation("left")], mimetype="image/jpeg", item_id="y")

    loaded = load_subset(tmp_path, "train", LABELS)

    assert [s.item_name for s in loaded.samples] == ["/good.avi"]
    assert loaded.skipped == {SKIP_NOT_A_VIDEO: 1}
    assert any("/picture.mp4" in w and "image/jpeg" in w for w in dataset_warnings(caplog))


def test_unusable_frame_ranges_are_skipped(tmp_path, caplog):
    ranges = [(6, 2), (50, 60), (-1, 4), (1.5, 4), (0, 11), (2.0, 5.0)]
    add_video(tmp_path, "/a.mp4", [class_annotation("left", first, last) for first, last in ranges], frames=12)

    loaded = load_subset(tmp_path, "train", LABELS)

    assert [(s.first_frame, s.last_frame) for s in loaded.samples] == [(0, 11), (2, 5)]
    assert loaded.skipped == {SKIP_BAD_RANGE: 4}
    assert sum("/a.mp4" in w for w in dataset_warnings(caplog)) == 4


def test_a_subset_with_no_usable_sample_is_an_error_naming_it(tmp_path):
    add_video(tmp_path, "/a.mp4", [class_annotation("jumping")], subset="validation")

    with pytest.raises(DatasetError, match=r"'validation'.*no usable sample.*label not in the label map"):
        load_subset(tmp_path, "validation", LABELS)


def test_a_missing_subset_folder_is_an_error_naming_the_layout(tmp_path):
    with pytest.raises(DatasetError, match=r"'validation'.*items.*json"):
        load_subset(tmp_path, "validation", LABELS)


# ------------------------------------------------------------------------------ clips


def write_numbered_video(path, frames=40, fps=10.0):
    """Frame i is a flat grey of level 5 + 6 * i, so a decoded frame tells its own index."""
    images = (np.full((48, 64, 3), 5 + 6 * i, np.uint8) for i in range(frames))
    return write_frames(str(path), images, fps=fps, width=64, height=48)


def decoded_index(frame: np.ndarray) -> int:
    return int(round((frame.mean() * 255 - 5) / 6))


@pytest.mark.parametrize("source", ["decoded", "cached"])
@pytest.mark.parametrize("fps", [None, 5.0], ids=["every-frame", "resampled-10-to-5"])
def test_clips_are_drawn_only_inside_the_labelled_range(tmp_path, fps, source):
    path = write_numbered_video(tmp_path / "numbered.avi")
    sample = Sample(path, 0, first_frame=7, last_frame=30, item_name="numbered.avi")
    kept = [i for i in range(7, 31) if fps is None or i % 2 == 0]  # 10 -> 5 fps keeps the even frames
    if source == "cached":  # what training uses from its second epoch
        cache = RangeCache(tmp_path / "cache", imgz=32, fps=fps)
        read = lambda start_fraction: cache.clip(sample, n_frames=6, start_fraction=start_fraction)  # noqa: E731
    else:
        read = lambda start_fraction: read_clip(sample, n_frames=6, imgz=32, fps=fps, start_fraction=start_fraction)  # noqa: E731

    rng = np.random.default_rng(0)
    starts = set()
    for start_fraction in [0.0, 1.0, *rng.uniform(size=20)]:
        clip = read(start_fraction)
        first = kept.index(clip.frame_indices[0])
        assert clip.frame_indices == kept[first : first + 6]  # consecutive sampled frames, all in range
        assert [decoded_index(frame) for frame in clip.frames] == clip.frame_indices
        starts.add(first)
    assert min(starts) == 0 and max(starts) == len(kept) - 6  # reaches both ends of the range
    assert len(starts) > 3  # and the start really varies

    centred = read(0.5)
    first = kept.index(centred.frame_indices[0])
    assert abs(first - (len(kept) - 6) / 2) <= 1


def test_a_range_shorter_than_a_clip_repeats_its_last_frame(tmp_path):
    path = write_numbered_video(tmp_path / "numbered.avi")
    sample = Sample(path, 0, first_frame=20, last_frame=22, item_name="numbered.avi")

    clip = read_clip(sample, n_frames=6, imgz=32, fps=None, start_fraction=0.7)

    assert clip.frame_indices == [20, 21, 22, 22, 22, 22]
    np.testing.assert_array_equal(clip.frames[3], clip.frames[2])


def test_clip_frames_are_predicts_preprocessing_with_one_crop_for_the_whole_clip(tmp_path):
    path = write_video(tmp_path / "wide.mp4", frames=12, width=96, height=48, direction=(4, 1))
    sample = Sample(path, 0, first_frame=2, last_frame=9, item_name="wide.mp4")

    clip = read_clip(sample, n_frames=4, imgz=32, fps=None, start_fraction=0.0, crop_position=(0.2, 0.9))

    decoded = {frame.index: frame.image for frame in VideoReader(path, shorter_side=32)}
    expected = np.stack([preprocess_frame(decoded[i], 32, (0.2, 0.9)) for i in clip.frame_indices])
    assert clip.frame_indices == [2, 3, 4, 5]
    np.testing.assert_array_equal(clip.frames, expected)


@pytest.mark.parametrize("fps", [None, 5.0], ids=["every-frame", "resampled-10-to-5"])
def test_the_range_cache_gives_the_clips_decoding_gives(tmp_path, fps):
    path = write_video(tmp_path / "wide.avi", frames=40, fps=10, width=96, height=48, direction=(3, 1))
    sample = Sample(path, 0, first_frame=7, last_frame=30, item_name="wide.avi")
    cache = RangeCache(tmp_path / "cache", imgz=32, fps=fps)

    for start_fraction, crop in [(0.0, (0.5, 0.0)), (1.0, (0.5, 1.0)), (0.5, (0.5, 0.5)), (0.5, (0.3, 0.7))]:
        cached = cache.clip(sample, n_frames=6, start_fraction=start_fraction, crop_position=crop)
        decoded = read_clip(sample, n_frames=6, imgz=32, fps=fps, start_fraction=start_fraction, crop_position=crop)
        assert cached.frame_indices == decoded.frame_indices
        np.testing.assert_array_equal(cached.frames, decoded.frames)  # bit-identical preprocessing
    assert cache.size_bytes() > 0

    short = Sample(path, 0, first_frame=20, last_frame=22, item_name="wide.avi")
    assert (
        cache.clip(short, n_frames=6, start_fraction=0.3).frame_indices
        == read_clip(short, n_frames=6, imgz=32, fps=fps, start_fraction=0.3).frame_indices
    )


@pytest.mark.parametrize("limit", [dict(max_frames=10), dict(max_bytes=1000)], ids=["range-too-long", "cache-full"])
def test_a_range_the_cache_cannot_hold_is_decoded_each_time(tmp_path, limit):
    path = write_numbered_video(tmp_path / "numbered.avi")
    sample = Sample(path, 0, first_frame=0, last_frame=None, item_name="numbered.avi")
    cache = RangeCache(tmp_path / "cache", imgz=32, fps=None, **limit)

    clip = cache.clip(sample, n_frames=4, start_fraction=1.0)

    assert clip.frame_indices == [36, 37, 38, 39]
    assert [decoded_index(frame) for frame in clip.frames] == clip.frame_indices
    assert cache.size_bytes() == 0
