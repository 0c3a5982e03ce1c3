"""The commands' outputs: checked before any work, written atomically, kept as videos finish; plots never fail a video."""

from __future__ import annotations

import json
import logging
import types

import numpy as np
import pytest

from adapter.cli import commands
from adapter.cli import parser as cli


@pytest.mark.parametrize(
    "command",
    [
        ["predict", "walk.mp4"],
        ["embed", "walk.mp4"],
        ["evaluate", "DATA"],
        ["export-tflite", "--model", "movinet-a0-base"],
    ],
)
def test_an_output_file_in_a_missing_folder_exits_2_naming_it_before_any_work(tmp_path, capsys, monkeypatch, command):
    def no_work(*args, **kwargs):
        raise AssertionError("work started before --output was checked")

    monkeypatch.setattr(commands, "loaded_adapter", no_work)
    monkeypatch.setattr(commands, "export_adapter", no_work)
    output = tmp_path / "missing" / "out.json"
    command = [str(tmp_path / part) if part in ("walk.mp4", "DATA") else part for part in command]

    assert cli.main([*command, "--output", str(output)]) == 2

    error = capsys.readouterr().err
    assert str(output) in error and "does not exist" in error


def test_an_output_folder_under_a_missing_folder_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(commands, "export_adapter", lambda *a: pytest.fail("exported before --output was checked"))
    output = tmp_path / "missing" / "saved_model"

    assert cli.main(["export-savedmodel", "--model", "movinet-a0-base", "--output", str(output)]) == 2
    assert str(output) in capsys.readouterr().err


def test_an_output_that_is_a_folder_exits_2(tmp_path, capsys):
    assert cli.main(["predict", str(tmp_path / "walk.mp4"), "--output", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


class _Collection:
    def __init__(self, label):
        self.label = label

    def to_json(self):
        level = {"movinet": {"level": "video"}, "model": {"confidence": 0.9}}
        return {"annotations": [{"label": self.label, "metadata": {"user": level}}]}


class _DyingAdapter:
    """Predicts (embeds) the first videos, then the process 'dies' (KeyboardInterrupt) on the one named dies."""

    def __init__(self):
        self.failures = []
        self.on_video_predicted = None
        self.config = types.SimpleNamespace(variant_embeddings_size=2)

    def predict(self, videos):
        (video,) = videos
        if video.path.endswith("dies.mp4"):
            raise KeyboardInterrupt
        return [_Collection(video.path)]

    def embed(self, videos):
        (video,) = videos
        if video.path.endswith("dies.mp4"):
            raise KeyboardInterrupt
        return [[1.0, 2.0]]


@pytest.mark.parametrize("command", ["predict", "embed"])
def test_videos_finished_before_the_process_dies_are_in_the_output(tmp_path, monkeypatch, command):
    monkeypatch.setattr(commands, "loaded_adapter", lambda args: _DyingAdapter())
    monkeypatch.setattr("adapter.video.inputs.local_video", lambda path: types.SimpleNamespace(path=path, name=path))
    videos = [str(tmp_path / name) for name in ("a.mp4", "b.mp4", "dies.mp4", "c.mp4")]
    output = tmp_path / "out.json"
    output.write_text('{"from": "an earlier run"}')

    with pytest.raises(KeyboardInterrupt):
        cli.main([command, *videos, "--output", str(output)])

    written = json.loads(output.read_text())
    assert list(written) == videos[:2]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out.json"]  # no partial file left


def test_a_plot_that_cannot_be_written_is_a_warning_and_the_prediction_stands(tmp_path, caplog):
    from adapter.runtime.results import Segment, VideoPrediction

    labels = ["walk", "run"]
    adapter = types.SimpleNamespace(loaded=types.SimpleNamespace(labels=labels), config=types.SimpleNamespace(top_k=2))
    plots = tmp_path / "plots"
    write = commands.probability_plotter(adapter, str(plots))
    probabilities = np.array([0.7, 0.3], dtype=np.float32)
    segment = Segment(first_index=0, last_index=9, class_index=0, confidence=0.7, probabilities=probabilities)
    prediction = VideoPrediction(probabilities=probabilities, segments=[segment])
    reader = types.SimpleNamespace(num_frames=10, source_fps=10.0)
    # A name past the file system's limit (255 bytes) fails the write the way a full disk does.
    video = types.SimpleNamespace(path=str(tmp_path / ("v" * 300 + ".mp4")), name="the long one")

    with caplog.at_level(logging.WARNING):
        write(video, prediction, reader)  # does not raise

    assert "the long one" in caplog.text and "prediction stands" in caplog.text
    assert list(plots.iterdir()) == []
    ok = types.SimpleNamespace(path=str(tmp_path / "walk.mp4"), name="walk")
    write(ok, prediction, reader)
    assert [path.name for path in plots.iterdir()] == ["walk.png"]


def test_evaluate_writes_its_report_even_when_the_confusion_picture_cannot_be_written(tmp_path, monkeypatch, caplog):
    from adapter.cli import evaluate
    from adapter.evaluation import subset
    from adapter.evaluation.metrics import VideoScore

    labels = ["walk", "run"]
    item = subset.EvaluationItem("/walk.mp4", str(tmp_path / "walk.mp4"), [("walk", None, None)])
    monkeypatch.setattr(subset, "evaluation_items", lambda data, name: ([item], []))
    from adapter.runtime.results import Scoring

    adapter = types.SimpleNamespace(
        loaded=types.SimpleNamespace(labels=labels),
        config=types.SimpleNamespace(temporal_annotations=False),
        classifier=types.SimpleNamespace(scoring=Scoring()),
    )
    monkeypatch.setattr(commands, "loaded_adapter", lambda args: adapter)
    score = VideoScore(
        "/walk.mp4",
        ["walk"],
        "walk",
        [("walk", 0.8), ("run", 0.2)],
        probabilities=np.array([0.8, 0.2]),
        predicted=["walk"],
    )
    monkeypatch.setattr(evaluate, "predict_items", lambda adapter, items, progress, segment_scores=None: ([score], []))
    output = tmp_path / "report.json"
    plot = tmp_path / ("m" * 300 + ".png")  # a name the file system refuses

    with caplog.at_level(logging.WARNING):
        code = cli.main(["evaluate", str(tmp_path), "--output", str(output), "--plot", str(plot)])

    assert code == 0
    assert json.loads(output.read_text())["top1_accuracy"] == 1.0
    assert "confusion matrix picture" in caplog.text
    assert "Could not write the reliability diagram" in caplog.text  # the other pictures: warnings too
    assert sorted(path.name for path in tmp_path.iterdir()) == ["report.json"]
