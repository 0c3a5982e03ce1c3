"""Offline evaluation: ground truth, metrics on hand-counted inputs, and `movinet evaluate` on a generated subset."""

from __future__ import annotations

import json

import numpy as np
import pytest

from adapter.evaluation.metrics import VideoScore, ground_truth, summarize
from tests.cli.test_parser import run_cli
from tests.conftest import set_options
from tests.motion_dataset import DIRECTIONS, class_annotation, write_item, write_motion_dataset
from tests.videos import write_text_as_video, write_video


def test_whole_video_annotations_are_the_ground_truth_when_present():
    ranges = [("left", 0, 4), ("up", None, None), ("right", 5, 9), ("down", 0, 9)]

    assert ground_truth(ranges, num_frames=10) == ["up", "down"]


def test_without_a_whole_video_annotation_the_range_labels_count_in_the_order_they_start():
    ranges = [("right", 5, 9), ("left", 0, 4), ("right", 10, 12)]

    assert ground_truth(ranges, num_frames=20) == ["left", "right"]
    # A range that reaches the last frame of a shorter video spans it whole.
    assert ground_truth([("left", 0, 3), ("right", 4.0, None)], num_frames=4) == ["left"]


def score(item, truth, top5):
    return VideoScore(item, truth, top5[0], [(label, 1.0 / (rank + 1)) for rank, label in enumerate(top5)])


def test_metrics_on_hand_counted_videos():
    scores = [
        score("v1", ["a"], ["a", "b", "c"]),  # right
        score("v2", ["a"], ["b", "a", "c"]),  # top-1 wrong, top-5 right
        score("v3", ["b"], ["b", "a", "c"]),  # right
        score("v4", ["x"], ["a", "b", "c"]),  # x is not in the label map: wrong either way
        score("v5", ["b", "c"], ["c", "a", "b"]),  # labelled ranges b and c: c is right
    ]

    summary = summarize(scores, ["a", "b", "c", "d"])

    assert summary["videos"] == 5
    assert summary["top1_accuracy"] == pytest.approx(3 / 5)
    assert summary["top5_accuracy"] == pytest.approx(4 / 5)
    assert summary["classes"] == ["a", "b", "c", "x"]  # d never occurs; the unknown label comes last
    assert summary["confusion_matrix"] == [
        [1, 1, 0, 0],
        [0, 1, 0, 0],
        [0, 0, 1, 0],
        [1, 0, 0, 0],
    ]
    per_class = summary["per_class"]
    assert per_class["a"] == {"precision": 0.5, "recall": 0.5, "support": 2, "predicted": 2}
    assert per_class["b"] == {"precision": 0.5, "recall": 1.0, "support": 1, "predicted": 2}
    assert per_class["c"] == {"precision": 1.0, "recall": 1.0, "support": 1, "predicted": 1}
    assert per_class["x"] == {"precision": None, "recall": 0.0, "support": 1, "predicted": 0}
    assert summary["unknown_labels"] == {"x": ["v4"]}


def test_no_videos_gives_no_accuracy_rather_than_zero():
    summary = summarize([], ["a", "b"])

    assert summary["top1_accuracy"] is None and summary["confusion_matrix"] == []


@pytest.fixture(scope="module")
def two_label_weights(tmp_path_factory):
    """A randomly initialised a0-base classifier for left/right, saved as train would (imgz 32, 4 frames)."""
    from adapter.model import network
    from adapter.model.loading import FineTunedInfo, save_finetuned

    folder = tmp_path_factory.mktemp("weights")
    model = network.build_classifier("a0", "base", num_classes=2)
    model(np.zeros((1, 4, 32, 32, 3), np.float32))
    save_finetuned(model, str(folder), FineTunedInfo("a0", "base", ["left", "right"], imgz=32, n_frames=4, fps=5.0))
    return str(folder)


def test_evaluate_scores_every_readable_video_and_names_the_bad_one(two_label_weights, tmp_path):
    data = tmp_path / "data"
    dataset = write_motion_dataset(
        data,
        train_per_class=0,
        validation_per_class=2,
        frames=6,
        width=48,
        height=48,
        containers=(".mp4",),
        two_range_video=False,
    )
    truth = {name: [label for label, _, _ in ranges] for name, ranges in dataset.ranges["validation"].items()}
    subset = str(data / "validation")
    # A label the model does not know, a video with two labelled ranges, a broken video, an unlabelled item.
    path, _ = write_item(subset, "/extra/up.mp4", [class_annotation("up", 0, 5)], item_id="up", fps=5.0)
    write_video(path, frames=6, fps=5.0, width=48, height=48, direction=DIRECTIONS["up"])
    truth["/extra/up.mp4"] = ["up"]
    two_ranges = [class_annotation("right", 3, 5, annotation_id="a2"), class_annotation("left", 0, 2)]
    path, _ = write_item(subset, "/extra/both.mp4", two_ranges, item_id="both", fps=5.0)
    write_video(path, frames=6, fps=5.0, width=48, height=48)
    truth["/extra/both.mp4"] = ["left", "right"]
    path, _ = write_item(subset, "/extra/broken.mp4", [class_annotation("left")], item_id="broken", fps=5.0)
    write_text_as_video(path)
    path, _ = write_item(subset, "/extra/unlabelled.mp4", [], item_id="unlabelled", fps=5.0)
    write_video(path, frames=6, fps=5.0, width=48, height=48)
    output = tmp_path / "report.json"

    result = run_cli(
        "evaluate",
        str(data),
        "--weights",
        two_label_weights,
        # runtime pinned: the subject is evaluation; fine-tuned weights would convert.
        *set_options(imgz=32, n_frames=4, runtime="tensorflow"),
        "--output",
        str(output),
    )

    assert result.returncode == 1, result.stderr[-3000:]
    assert "FAILED /extra/broken.mp4" in result.stderr
    report = json.loads(output.read_text())
    assert [failure["item"] for failure in report["failed"]] == ["/extra/broken.mp4"]
    assert [skip["item"] for skip in report["skipped"]] == ["/extra/unlabelled.mp4"]
    predictions = {record["item"]: record for record in report["predictions"]}
    assert sorted(predictions) == sorted(truth)  # every readable labelled video, the others still evaluated
    for name, record in predictions.items():
        assert record["truth"] == truth[name]
        assert record["top1"] in ("left", "right")
        assert [entry["label"] for entry in record["top5"]][0] == record[
            "top1"
        ]  # the annotation's top-1 is the most probable
        assert sorted(entry["label"] for entry in record["top5"]) == ["left", "right"]
    right = [record["top1"] in truth[name] for name, record in predictions.items()]
    assert report["top1_accuracy"] == pytest.approx(sum(right) / len(right))
    assert report["top5_accuracy"] == pytest.approx((len(truth) - 1) / len(truth))  # all but the unknown label
    assert predictions["/extra/up.mp4"]["top1_correct"] is False
    assert report["unknown_labels"] == {"up": ["/extra/up.mp4"]}
    matrix = np.array(report["confusion_matrix"])
    assert matrix.sum() == len(truth)
    classes = report["classes"]
    assert classes[-1] == "up" and set(classes) <= {"left", "right", "up"}
    for i, label in enumerate(classes):
        predicted_as = [name for name, record in predictions.items() if record["top1"] == label]
        assert matrix[:, i].sum() == len(predicted_as)
        assert report["per_class"][label]["predicted"] == len(predicted_as)
    assert matrix[classes.index("up")].sum() == 1
    assert "top-1 accuracy" in result.stdout and "skipped /extra/unlabelled.mp4" in result.stdout
    picture = tmp_path / "report.png"  # beside --output
    from matplotlib.image import imread

    pixels = imread(picture)
    assert pixels.ndim == 3 and pixels.std() > 0  # a drawn picture, not a blank one


def test_a_folder_without_the_layout_exits_2_before_loading_a_model(tmp_path):
    (tmp_path / "validation" / "items").mkdir(parents=True)

    result = run_cli("evaluate", str(tmp_path), "--output", str(tmp_path / "report.json"))

    assert result.returncode == 2
    assert "json" in result.stderr and "validation" in result.stderr
    assert not (tmp_path / "report.json").exists()
