"""Training's service-facing details, without a model run: metrics a platform can plot, progress in
service logs, and which resume states a new run accepts."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import sys

from adapter.core.config import MovinetConfig
from adapter.model.loading import DEFAULT_WEIGHTS_FILENAME, METADATA_FILENAME
from adapter.training.callbacks import EpochMetrics, EpochReporter
from adapter.training.outputs import HISTORY_FILENAME
from adapter.training.resume import OPTIMIZER_CHECKPOINT, RESUME_FILENAME, ResumeState, find_resume_state

CONFIG = MovinetConfig.from_dict(dict(model_id="a0", imgz=32, n_frames=4, fps=5))
LABELS = ["left", "right"]


def test_nan_and_inf_epoch_metrics_are_not_sent_and_the_log_names_them(caplog):
    sent = []
    metrics = EpochMetrics(lambda epoch, values: sent.append((epoch, values)) or True)

    with caplog.at_level(logging.WARNING):
        metrics.on_epoch_end(4, {"loss": float("nan"), "val_loss": 0.7, "accuracy": float("inf"), "val_accuracy": 0.5})
        metrics.on_epoch_end(5, {"loss": float("nan")})

    assert sent == [(4, [("loss", "validation", 0.7), ("accuracy", "validation", 0.5)])]  # nothing for epoch 6
    assert "Epoch 5 loss is nan" in caplog.text and "Epoch 5 accuracy is inf" in caplog.text


def test_multi_label_epochs_send_map_f1_and_each_classs_ap():
    sent = []
    metrics = EpochMetrics(lambda epoch, values: sent.append((epoch, values)) or True)

    metrics.on_epoch_end(2, {"loss": 0.4, "val_map": 0.8, "val_f1": 0.6, "val_ap/red": 0.9, "val_ap/big": 0.7})

    ((epoch, values),) = sent
    assert epoch == 2
    assert set(values) == {
        ("loss", "train", 0.4),
        ("mAP", "validation", 0.8),
        ("F1", "validation", 0.6),
        ("AP per class", "red", 0.9),
        ("AP per class", "big", 0.7),
    }


class Terminal(io.StringIO):
    def isatty(self):
        return True


def run_two_epochs(reporter: EpochReporter) -> None:
    for epoch in range(2):
        reporter.on_epoch_begin(epoch)
        for batch in range(3):
            reporter.on_train_batch_end(batch, {"loss": 0.5})
        reporter.on_epoch_end(epoch, {"loss": 0.5, "val_accuracy": 0.75})
    reporter.on_train_end()


def test_a_service_log_gets_one_line_per_epoch_and_no_progress_bar(caplog, monkeypatch):
    service_stderr = io.StringIO()  # not a terminal, as in a service's container
    monkeypatch.setattr(sys, "stderr", service_stderr)
    calls = []
    with caplog.at_level(logging.INFO, logger="adapter.training.callbacks"):
        run_two_epochs(EpochReporter(2, steps=3, on_epoch_end_callback=lambda i, n: calls.append((i, n))))

    assert service_stderr.getvalue() == ""
    lines = [r.getMessage() for r in caplog.records]
    assert [line.split(":")[0] for line in lines] == ["Epoch 1/2", "Epoch 2/2"]
    assert "loss 0.5000" in lines[0] and "val_accuracy 0.7500" in lines[0]
    assert calls == [(0, 2), (1, 2)]


def test_a_terminal_gets_a_progress_bar(monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)

    run_two_epochs(EpochReporter(2, steps=3))

    assert "epoch 1/2" in terminal.getvalue() and "\r" in terminal.getvalue()


def write_state(folder, **changes) -> ResumeState:
    """A resume state as a failed run leaves it (file contents aside: they are only checked to exist)."""
    state = ResumeState(
        run_id="run-1",
        epochs_done=2,
        num_epochs=4,
        optimizer_step=6,
        model_id="a0",
        labels=LABELS,
        imgz=32,
        n_frames=4,
        fps=5.0,
        freeze_backbone=False,
        best_epoch=1,
        best_val_accuracy=0.5,
        best_val_loss=0.7,
        history={"loss": [0.9, 0.8]},
    )
    state = dataclasses.replace(state, **changes)
    for name in ("last", "best"):
        directory = os.path.join(folder, "checkpoints", name)
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, METADATA_FILENAME), "w") as file:
            json.dump(dict(model_id="a0", model_mode="base", labels=LABELS, imgz=32, n_frames=4, fps=5.0), file)
        open(os.path.join(directory, DEFAULT_WEIGHTS_FILENAME), "wb").close()
    last = os.path.join(folder, "checkpoints", "last")
    open(os.path.join(last, OPTIMIZER_CHECKPOINT + ".index"), "wb").close()
    with open(os.path.join(last, RESUME_FILENAME), "w") as file:
        json.dump({k: v for k, v in dataclasses.asdict(state).items() if k != "artifacts_path"}, file)
    return state


def test_a_matching_resume_state_is_found(tmp_path):
    write_state(tmp_path)

    state = find_resume_state(str(tmp_path), CONFIG, LABELS)

    assert state is not None and state.epochs_done == 2 and state.artifacts_path == str(tmp_path)


def test_a_resume_state_for_other_labels_or_input_is_ignored_with_the_reason(tmp_path, caplog):
    write_state(tmp_path)

    with caplog.at_level(logging.WARNING):
        assert find_resume_state(str(tmp_path), CONFIG, ["up", "down"]) is None
        assert find_resume_state(str(tmp_path), CONFIG.replace(imgz=48, model_id="a1"), LABELS) is None

    assert "labels was ['left', 'right'], now ['up', 'down']" in caplog.text
    assert "model_id was 'a0', now 'a1'" in caplog.text and "imgz was 32, now 48" in caplog.text


def test_the_resume_state_of_a_finished_run_is_ignored(tmp_path, caplog):
    write_state(tmp_path)
    with open(tmp_path / HISTORY_FILENAME, "w") as file:
        json.dump({"run_id": "run-1", "finished": True, "best_epoch": 3, "history": {}}, file)

    with caplog.at_level(logging.WARNING):
        assert find_resume_state(str(tmp_path), CONFIG, LABELS) is None
    assert "its run finished" in caplog.text

    with open(tmp_path / HISTORY_FILENAME, "w") as file:  # another run's record says nothing about this one
        json.dump({"run_id": "run-0", "finished": True, "best_epoch": 3, "history": {}}, file)
    assert find_resume_state(str(tmp_path), CONFIG, LABELS) is not None


def test_an_unreadable_or_incomplete_resume_state_is_ignored_with_the_reason(tmp_path, caplog):
    write_state(tmp_path)
    os.remove(tmp_path / "checkpoints" / "last" / (OPTIMIZER_CHECKPOINT + ".index"))
    with caplog.at_level(logging.WARNING):
        assert find_resume_state(str(tmp_path), CONFIG, LABELS) is None
    assert "optimizer checkpoint" in caplog.text

    (tmp_path / "checkpoints" / "last" / RESUME_FILENAME).write_text("{not json")
    with caplog.at_level(logging.WARNING):
        assert find_resume_state(str(tmp_path), CONFIG, LABELS) is None
    assert "cannot be read" in caplog.text
