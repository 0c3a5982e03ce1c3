"""Resume states (adapter.training.resume): written with the real weights and optimizer of a tiny
Keras model, found newest-complete-first, skipped with the reason, restored exactly."""

from __future__ import annotations

import dataclasses
import json
import logging
import os

import numpy as np
import pytest
import tf_keras

from adapter.core.config import MovinetConfig
from adapter.model.loading import DEFAULT_WEIGHTS_FILENAME, FineTunedInfo
from adapter.training.callbacks import BestEpoch
from adapter.training.checkpoints import epoch_dir, list_checkpoints
from adapter.training.outputs import HISTORY_FILENAME
from adapter.training.resume import (
    ResumeCheckpoint,
    ResumeState,
    find_resume_state,
    read_resume_state,
    restore_training_state,
    run_settings,
    write_resume_state,
)

CONFIG = MovinetConfig.from_dict(dict(model_id="a0", imgz=32, n_frames=4, fps=5, learning_rate=0.01))
LABELS = ["left", "right"]
INFO = FineTunedInfo(model_id="a0", model_mode="base", labels=LABELS, imgz=32, n_frames=4, fps=5.0)


def tiny_model(seed=0) -> tf_keras.Model:
    """A compiled two-class model with Adam, one step trained (so the optimizer has state)."""
    tf_keras.utils.set_random_seed(seed)
    model = tf_keras.Sequential([tf_keras.Input([3]), tf_keras.layers.Dense(2)])
    model.compile(optimizer=tf_keras.optimizers.Adam(CONFIG.learning_rate), loss="sparse_categorical_crossentropy")
    model.fit(np.ones([4, 3], np.float32), np.array([0, 1, 0, 1]), epochs=1, verbose=0)
    return model


def state_for(epochs_done: int, best_epoch: int | None = 0) -> ResumeState:
    return ResumeState(
        run_id="run-1",
        epochs_done=epochs_done,
        num_epochs=5,
        optimizer_step=3 * epochs_done,
        **run_settings(CONFIG, LABELS),
        best_epoch=best_epoch,
        best_val_accuracy=0.5,
        best_val_loss=0.7,
        history={"val_accuracy": [0.5 + 0.1 * e for e in range(epochs_done)], "val_loss": [0.7] * epochs_done},
        data_seed=11,
    )


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def test_the_newest_complete_checkpoint_that_fits_is_found(tmp_path, model):
    for epochs in (1, 2, 3):
        write_resume_state(str(tmp_path), model, INFO, state_for(epochs, best_epoch=0))

    state = find_resume_state([None, str(tmp_path)], CONFIG, LABELS)

    assert state.epochs_done == 3 and state.checkpoint_path == epoch_dir(str(tmp_path), 3)
    assert state.best_path == epoch_dir(str(tmp_path), 1) and state.data_seed == 11


def test_a_corrupt_newest_checkpoint_falls_back_to_the_best_one_and_the_warning_names_it(tmp_path, model, caplog):
    # The case: the newest epoch's weights truncated by a kill; the best epoch's intact.
    write_resume_state(str(tmp_path), model, INFO, state_for(1, best_epoch=0))
    newest = write_resume_state(str(tmp_path), model, INFO, state_for(2, best_epoch=0))
    weights = os.path.join(newest, DEFAULT_WEIGHTS_FILENAME)
    with open(weights, "r+b") as file:
        file.truncate(os.path.getsize(weights) // 2)

    with caplog.at_level(logging.WARNING):
        state = find_resume_state([str(tmp_path)], CONFIG, LABELS)

    assert state is not None and state.epochs_done == 1  # never starts over while an intact one exists
    assert state.history == state_for(1).history  # the history of that epoch, not of the lost one
    assert f"Skipping the checkpoint {newest}" in caplog.text and DEFAULT_WEIGHTS_FILENAME in caplog.text
    assert "after skipping 1 newer" in caplog.text


def test_the_artifacts_and_the_output_are_searched_together_newest_first(tmp_path, model):
    write_resume_state(str(tmp_path / "artifacts"), model, INFO, state_for(2))
    write_resume_state(str(tmp_path / "output"), model, INFO, state_for(3))

    state = find_resume_state([str(tmp_path / "artifacts"), str(tmp_path / "output")], CONFIG, LABELS)

    assert state.checkpoint_path == epoch_dir(str(tmp_path / "output"), 3)


def test_a_checkpoint_for_other_labels_or_input_is_skipped_with_the_reason(tmp_path, model, caplog):
    write_resume_state(str(tmp_path), model, INFO, state_for(2))

    with caplog.at_level(logging.WARNING):
        assert find_resume_state([str(tmp_path)], CONFIG, ["up", "down"]) is None
        assert find_resume_state([str(tmp_path)], CONFIG.replace(imgz=48, model_id="a1"), LABELS) is None

    assert "labels was ['left', 'right'], now ['up', 'down']" in caplog.text
    assert "model_id was 'a0', now 'a1'" in caplog.text and "imgz was 32, now 48" in caplog.text
    assert "run again with those settings to resume it" in caplog.text


def test_another_platform_models_checkpoint_is_never_resumed(tmp_path, model, caplog):
    # The SDK downloads the files of "<name>-copy" with "<name>"'s artifacts, into the same folders.
    other = dataclasses.replace(state_for(2), model_entity_id="model-copy")
    write_resume_state(str(tmp_path), model, INFO, other)

    with caplog.at_level(logging.WARNING):
        assert find_resume_state([str(tmp_path)], CONFIG, LABELS, model_entity_id="model-1") is None
    assert "model_entity_id was 'model-copy', now 'model-1'" in caplog.text
    assert find_resume_state([str(tmp_path)], CONFIG, LABELS, model_entity_id="model-copy") is not None


def test_a_softmax_runs_checkpoint_is_not_resumed_as_multi_label_nor_the_reverse(tmp_path, model, caplog):
    write_resume_state(str(tmp_path / "softmax"), model, INFO, state_for(2))
    multi = dataclasses.replace(state_for(2), multi_label=True)
    write_resume_state(str(tmp_path / "multi"), model, dataclasses.replace(INFO, multi_label=True), multi)

    with caplog.at_level(logging.WARNING):
        assert find_resume_state([str(tmp_path / "softmax")], CONFIG.replace(multi_label=True), LABELS) is None
        assert find_resume_state([str(tmp_path / "multi")], CONFIG, LABELS) is None
    assert "multi_label was False, now True" in caplog.text and "multi_label was True, now False" in caplog.text
    assert find_resume_state([str(tmp_path / "multi")], CONFIG.replace(multi_label=True), LABELS).multi_label


def test_the_checkpoint_of_a_finished_run_is_skipped(tmp_path, model, caplog):
    write_resume_state(str(tmp_path), model, INFO, state_for(2))
    (tmp_path / HISTORY_FILENAME).write_text(json.dumps({"run_id": "run-1", "finished": True}))

    with caplog.at_level(logging.WARNING):
        assert find_resume_state([str(tmp_path)], CONFIG, LABELS) is None
    assert "its run finished" in caplog.text

    (tmp_path / HISTORY_FILENAME).write_text(json.dumps({"run_id": "run-0", "finished": True}))  # another run's
    assert find_resume_state([str(tmp_path)], CONFIG, LABELS) is not None


def test_a_lost_best_checkpoint_makes_the_resumed_epoch_the_best_with_a_warning(tmp_path, model, caplog):
    write_resume_state(str(tmp_path), model, INFO, state_for(3, best_epoch=0))  # epoch-0001 was never written

    with caplog.at_level(logging.WARNING):
        state = find_resume_state([str(tmp_path)], CONFIG, LABELS)

    assert state.best_epoch == 2 and state.best_path == state.checkpoint_path
    assert state.best_val_accuracy == pytest.approx(state.history["val_accuracy"][2])
    assert "epoch 3, the one resumed from, is the best so far" in caplog.text


def test_restoring_gives_back_the_weights_and_the_optimizers_step_and_moments(tmp_path, model):
    path = write_resume_state(str(tmp_path), model, INFO, state_for(1))
    fresh = tiny_model(seed=5)  # other weights, its own optimizer state
    fresh.optimizer.iterations.assign(0)

    restore_training_state(fresh, read_resume_state(path), CONFIG)

    for saved, restored in zip(model.get_weights(), fresh.get_weights()):
        np.testing.assert_array_equal(saved, restored)
    assert int(fresh.optimizer.iterations.numpy()) == int(model.optimizer.iterations.numpy()) > 0
    for saved, restored in zip(model.optimizer.variables(), fresh.optimizer.variables()):
        np.testing.assert_array_equal(saved.numpy(), restored.numpy())


def test_the_epoch_callback_keeps_the_newest_and_the_best_checkpoint_and_hands_them_on(tmp_path, model):
    best = BestEpoch()
    curves = type("Curves", (), {"history": {}})()
    saved = []
    saver = ResumeCheckpoint(
        str(tmp_path),
        INFO,
        "run-1",
        4,
        run_settings(CONFIG, LABELS),
        best,
        curves,
        data_seed=3,
        on_saved=lambda output, kept: saved.append([os.path.basename(p) for p in kept]),
    )
    saver.set_model(model)
    for epoch, accuracy in enumerate([0.5, 0.9, 0.6, 0.7]):
        logs = {"val_accuracy": accuracy, "val_loss": 1.0}
        curves.history.setdefault("val_accuracy", []).append(accuracy)
        best.on_epoch_end(epoch, logs)
        saver.on_epoch_end(epoch, logs)

    assert saved == [["epoch-0001"], ["epoch-0002"], ["epoch-0003", "epoch-0002"], ["epoch-0004", "epoch-0002"]]
    assert [n for n, _ in list_checkpoints(str(tmp_path))] == [4, 2]
    state = find_resume_state([str(tmp_path)], CONFIG, LABELS)
    assert (state.epochs_done, state.best_epoch, state.data_seed) == (4, 1, 3)
    assert state.best_path == epoch_dir(str(tmp_path), 2)
