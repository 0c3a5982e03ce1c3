"""Multi-label fine-tuning from the command line: videos carrying two labels at once (the moving
square's colour and its size), trained with multi_label, then a held-out subset predicted with
`predict --weights`: both labels of each video must be named. Random initialisation (the test
models have random weights anyway); a0 on 4 frames of 32 x 32, a few epochs."""

from __future__ import annotations

import dataclasses
import json
import logging
import os

import numpy as np
import pytest
import tf_keras

from adapter.model.loading import find_finetuned
from adapter.training.outputs import HISTORY_FILENAME, RELIABILITY_FILENAME
from tests.conftest import set_options
from tests.motion_dataset import write_multi_label_dataset

SMALL = set_options(imgz=32, n_frames=4, batch_size=4, fps=5, runtime="tensorflow")


@dataclasses.dataclass
class Run:
    dataset: object
    output: str
    history: dict
    predicted: dict  # video path -> video-level labels, most probable first
    confidences: dict  # video path -> their confidences
    log: str
    evaluations: dict  # "evaluation": evaluate's JSON; "strict": the same with min_confidence 0.9999
    folder: str


@pytest.fixture(scope="module")
def multi_label_run(tmp_path_factory):
    from adapter.cli import parser as cli

    root = tmp_path_factory.mktemp("multi-label")
    dataset = write_multi_label_dataset(root / "data", per_pair={"train": 8, "validation": 3, "test": 2})
    output = str(root / "weights")
    training = set_options(num_epochs=12, learning_rate=0.003, pretrained="false", multi_label="true")
    handler = _Capture()
    logging.getLogger("adapter").addHandler(handler)
    previous_level = logging.getLogger("adapter").level
    logging.getLogger("adapter").setLevel(logging.INFO)
    try:
        tf_keras.utils.set_random_seed(0)  # the command line takes no seed; this makes the run repeatable
        assert cli.main(["train", dataset.root, "--output", output, *SMALL, *training]) == 0
        test_videos = sorted(
            os.path.join(dataset.root, "test", "items", name.lstrip("/")) for name in dataset.ranges["test"]
        )
        annotations_path = str(root / "predictions.json")
        assert cli.main(["predict", "--weights", output, *test_videos, "--output", annotations_path, *SMALL]) == 0
        evaluation = str(root / "evaluation.json")
        evaluate = ["evaluate", dataset.root, "--subset", "test", "--weights", output, *SMALL]
        assert cli.main([*evaluate, "--output", evaluation]) == 0
        strict = str(root / "strict.json")
        assert cli.main([*evaluate, "--output", strict, *set_options(min_confidence=0.9999)]) == 0
    finally:
        logging.getLogger("adapter").removeHandler(handler)
        logging.getLogger("adapter").setLevel(previous_level)
    with open(annotations_path) as file:
        annotations = json.load(file)
    predicted, confidences = {}, {}
    for path, items in annotations.items():
        video_level = [a for a in items if a["metadata"]["user"]["movinet"]["level"] == "video"]
        predicted[path] = [a["label"] for a in video_level]
        confidences[path] = [a["metadata"]["user"]["model"]["confidence"] for a in video_level]
    with open(os.path.join(output, HISTORY_FILENAME)) as file:
        history = json.load(file)
    reports = {}
    for name in ("evaluation", "strict"):
        with open(root / f"{name}.json") as file:
            reports[name] = json.load(file)
    return Run(dataset, output, history, predicted, confidences, "\n".join(handler.messages), reports, str(root))


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_the_held_out_videos_get_both_their_labels(multi_label_run):
    run = multi_label_run
    right = 0
    for path, labels in run.predicted.items():
        colour, size = os.path.basename(os.path.dirname(path)).split("_")
        right += set(labels) == {colour, size}
    assert right / len(run.predicted) >= 0.75, run.predicted
    # Each is a sigmoid probability of its own: they need not sum to 1.
    assert any(sum(c) > 1.0 for c in run.confidences.values())


def test_thresholds_and_temperature_are_recorded_in_movinet_json(multi_label_run):
    info = find_finetuned(multi_label_run.output)
    assert info.multi_label is True
    assert info.labels == ["big", "blue", "red", "small"]
    assert len(info.thresholds) == 4 and all(0.0 < t < 1.0 for t in info.thresholds)
    assert info.temperature is not None and info.temperature > 0
    # 12 validation videos, 6 of each label: every class has enough positives for an F1-best threshold.
    per_class = multi_label_run.history["multi_label"]["per_class"]
    assert not any(entry["floored"] for entry in per_class.values())
    assert [per_class[label]["threshold"] for label in info.labels] == pytest.approx(info.thresholds)


def test_map_per_class_ap_and_f1_are_in_the_training_history(multi_label_run):
    history = multi_label_run.history
    epochs = len(history["history"]["loss"])
    for key in ("val_map", "val_f1", "val_ap/big", "val_ap/red"):
        assert len(history["history"][key]) == epochs
    assert history["history"]["val_map"][history["best_epoch"]] == max(history["history"]["val_map"])  # kept by mAP
    report = history["multi_label"]
    assert 0.0 <= report["map"] <= 1.0 and report["map"] == pytest.approx(
        np.mean([entry["ap"] for entry in report["per_class"].values()])
    )
    assert "mAP" in multi_label_run.log and "Calibration on 12 validation clips" in multi_label_run.log
    assert os.path.isfile(os.path.join(multi_label_run.output, RELIABILITY_FILENAME))


def test_evaluate_reports_map_ap_f1_calibration_and_pictures(multi_label_run):
    report = multi_label_run.evaluations["evaluation"]
    assert report["videos"] == 8
    multi = report["multi_label"]
    assert set(multi["per_class"]) == {"big", "blue", "red", "small"}
    assert all(entry["positives"] == 4 for entry in multi["per_class"].values())
    assert multi["map"] == pytest.approx(np.mean([entry["ap"] for entry in multi["per_class"].values()]))
    # The F1 at the thresholds agrees with what predict named.
    named = sum(len(p["predicted"]) for p in report["predictions"])
    right = sum(len(set(p["predicted"]) & set(p["truth"])) for p in report["predictions"])
    assert multi["f1_micro"] == pytest.approx(2 * right / (named + 16))
    calibration = report["calibration"]
    assert (
        calibration["bins"] == 15 and calibration["temperature"] == find_finetuned(multi_label_run.output).temperature
    )
    assert calibration["ece_before"] is not None and calibration["ece_after"] is not None
    assert sum(b["count"] for b in calibration["reliability_after"]) == 8 * 4  # a yes/no per class and video
    for suffix in ("_reliability.png", "_per_class.png", ".png"):
        with open(os.path.join(multi_label_run.folder, "evaluation" + suffix), "rb") as file:
            assert file.read(8) == b"\x89PNG\r\n\x1a\n"


def test_min_confidence_leaves_unsure_videos_without_a_class_and_evaluate_counts_them(multi_label_run):
    strict = multi_label_run.evaluations["strict"]
    unsure = [p for p in strict["predictions"] if max(c["probability"] for c in p["top5"]) < 0.9999]
    assert unsure  # sigmoid probabilities of a few epochs' training are not that sure
    assert strict["no_class_videos"] == len(unsure)
    assert all(p["top1"] == "(no class)" and p["predicted"] == [] for p in unsure)
