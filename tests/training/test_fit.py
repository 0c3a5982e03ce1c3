"""Fine-tuning (adapter.training): the errors before any step, the model it starts from, the
tf.data input, and one real training run through the adapter's own train/save/load hooks.

Models are the a0 exports of the hub_cache fixture (random weights, as real pretrained ones
cannot be downloaded here), so these tests prove the mechanics; that training really learns
motion is benchmarks/learns_motion.py (a run takes minutes).
"""

from __future__ import annotations

import json
import logging
import math
import os

import dtlpy as dl
import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from adapter import MovinetAdapter
from adapter.cli.train import run_offline_training
from adapter.core.config import ConfigError
from adapter.datasets.layout import DatasetError, load_subset
from adapter.model.hub import HubModelUnavailable
from adapter.model.loading import METADATA_FILENAME, find_finetuned, load_model
from adapter.training.checkpoints import epoch_dir, list_checkpoints
from adapter.training.model import build_training_model, starting_model
from adapter.training.outputs import CURVES_FILENAME, HISTORY_FILENAME
from adapter.training.pipeline import make_dataset
from adapter.video.inputs import local_video
from tests.conftest import SMALL_TRAINING, model_entity, set_options
from tests.motion_dataset import write_motion_dataset

LABELS = ["left", "right"]
SMALL = SMALL_TRAINING


def bound_adapter(configuration: dict, labels=LABELS) -> MovinetAdapter:
    """An adapter bound to a model entity without loading anything (as the CLI binds one)."""
    adapter = MovinetAdapter()
    adapter.model_entity = model_entity(configuration, labels=labels)
    return adapter


@pytest.fixture(scope="module")
def motion_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("motion")
    return write_motion_dataset(root, train_per_class=4, validation_per_class=2, frames=8, width=48, height=48, speed=6)


# ------------------------------------------------------------------------------ errors before training


def test_stream_mode_refuses_to_train_before_reading_any_data(platform, tmp_path):
    adapter = bound_adapter({**SMALL, "model_mode": "stream"})
    missing = tmp_path / "never-read"

    with pytest.raises(ConfigError, match=r"base models only.*'model_mode'.*'base'"):
        adapter.train(str(missing), str(tmp_path / "out"))
    with pytest.raises(ConfigError, match=r"'model_mode'"):
        run_offline_training(adapter, str(missing), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_a_subset_with_no_usable_sample_fails_before_any_model_is_built(platform, tmp_path, monkeypatch):
    data = write_motion_dataset(tmp_path / "data", train_per_class=1, validation_per_class=1, frames=4)
    adapter = bound_adapter(SMALL, labels=["up", "down"])  # none of the data's labels
    monkeypatch.setattr("adapter.training.model.starting_model", lambda *a: pytest.fail("built a model"))

    with pytest.raises(DatasetError, match=r"'train'.*no usable sample"):
        adapter.train(data.root, str(tmp_path / "out"))


def test_a_model_without_labels_cannot_train(platform, tmp_path):
    adapter = bound_adapter(SMALL, labels=None)

    with pytest.raises(ConfigError, match="label map"):
        adapter.train(str(tmp_path), str(tmp_path / "out"))


def test_pretrained_start_never_falls_back_to_random_weights(platform, motion_data, tmp_path):
    adapter = bound_adapter({**SMALL, "hub_handle": str(tmp_path / "no-such-model")})

    with pytest.raises(HubModelUnavailable):
        adapter.train(motion_data.root, str(tmp_path / "out"))


# ------------------------------------------------------------------------------ the model training starts from


def _head_weights(model):
    from adapter.training.model import classifier_head

    head = classifier_head(model)
    return head._head.get_weights(), head._classifier.get_weights()


def test_training_starts_from_the_pretrained_backbone_with_a_head_for_the_label_map(hub_cache):
    from adapter.core.config import MovinetConfig

    config = MovinetConfig.from_dict({**SMALL, "dropout_rate": 0.3})
    start = starting_model(config)  # nothing loaded yet: the hub model
    pretrained_backbone = [w.copy() for w in start.model.backbone.get_weights()]
    pretrained_projection, _ = _head_weights(start.model)

    model = build_training_model(config, ["a", "b", "c"], start)

    assert model(tf.zeros([1, 4, 32, 32, 3])).shape == (1, 3)
    for before, after in zip(pretrained_backbone, model.backbone.get_weights()):
        np.testing.assert_array_equal(before, after)
    projection, classifier = _head_weights(model)
    for before, after in zip(pretrained_projection, projection):
        np.testing.assert_array_equal(before, after)
    assert classifier[0].shape[-1] == 3
    assert len(model.trainable_weights) > 100  # full fine-tuning by default

    frozen = build_training_model(config.replace(freeze_backbone=True), ["a", "b", "c"], start)
    assert all(w.name.startswith("classifier_head") for w in frozen.trainable_weights)
    assert len(frozen.trainable_weights) == 4  # projection and class layer: kernel + bias each


def test_pretrained_false_trains_from_random_initialisation_and_says_so(caplog):
    from adapter.core.config import MovinetConfig

    config = MovinetConfig.from_dict({**SMALL, "pretrained": False})
    with caplog.at_level(logging.WARNING, logger="adapter.training.model"):
        assert starting_model(config) is None
    assert any("random initialisation" in r.getMessage() for r in caplog.records)
    model = build_training_model(config, LABELS, None)
    assert model(tf.zeros([2, 4, 32, 32, 3])).shape == (2, 2)


# ------------------------------------------------------------------------------ input pipeline


def test_the_input_pipeline_yields_batches_of_preprocessed_clips(motion_data):
    from adapter.core.config import MovinetConfig

    config = MovinetConfig.from_dict(SMALL)
    samples = load_subset(motion_data.root, "train", LABELS).samples  # 8 videos + 2 ranges of one

    steps = len(samples) // 4  # the partial batch is dropped: one shape, one compile
    train = make_dataset(samples, config, training=True, seed=1, epochs=3)
    epochs = [list(train)[e * steps : (e + 1) * steps] for e in range(3)]
    assert len(list(train)) == 3 * steps
    clips, labels = epochs[0][0]
    assert clips.shape == (4, 4, 32, 32, 3) and clips.dtype == tf.float32
    assert labels.dtype == tf.int32 and set(labels.numpy()) <= {0, 1}
    assert 0.0 <= float(tf.reduce_min(clips)) and float(tf.reduce_max(clips)) <= 1.0
    # Another epoch reshuffles and draws new starts and jitter.
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(epochs[0], epochs[1]))
    # A run resumed at epoch 2 gets the very clips an uninterrupted run gets in its epoch 2.
    resumed = list(make_dataset(samples, config, training=True, seed=1, first_epoch=2, epochs=3))
    assert len(resumed) == steps
    for (clips, labels), (expected_clips, expected_labels) in zip(resumed, epochs[2]):
        np.testing.assert_array_equal(clips, expected_clips)
        np.testing.assert_array_equal(labels, expected_labels)

    validation = make_dataset(samples, config, training=False)
    first, second = [np.concatenate([c.numpy() for c, _ in validation]) for _ in range(2)]
    assert first.shape[0] == len(samples)  # every sample, in order, the last batch kept
    np.testing.assert_array_equal(first, second)  # centred, unjittered: the same every epoch
    labels = np.concatenate([l.numpy() for _, l in validation])
    assert labels.tolist() == [s.label_index for s in samples]


# ------------------------------------------------------------------------------ a real run through the adapter


class TrainedRun:
    """What one train -> save -> load round trip produced, for the tests below to inspect."""


@pytest.fixture(scope="module")
def trained(hub_cache, motion_data, tmp_path_factory):
    run = TrainedRun()
    run.metrics_sent, run.epoch_calls, run.model_updates = [], [], 0
    work = tmp_path_factory.mktemp("trained")
    run.output_path, run.save_path = str(work / "output"), str(work / "saved")
    run.configuration = {**SMALL, "num_epochs": 3}

    def metrics_create(self, samples, dataset_id=None, **kwargs):
        run.metrics_sent.append(list(samples))
        return True

    def model_update(self, *args, **kwargs):
        run.model_updates += 1
        return self

    # The platform calls, replaced for the whole module (conftest's `platform` fixture is per test).
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dl.Model, "update", model_update)
        patch.setattr(dl.repositories.Metrics, "create", metrics_create)
        adapter = bound_adapter(run.configuration)
        adapter.load(None)  # as train_model does before train(): the pretrained (hub) model
        run.started_from = adapter.loaded.source
        adapter.train(
            motion_data.root, run.output_path, on_epoch_end_callback=lambda i, n: run.epoch_calls.append((i, n)), seed=3
        )
        run.loaded_after_train = adapter.loaded
        videos = sorted(s.video_path for s in load_subset(motion_data.root, "validation", LABELS).samples)
        run.videos = videos[:2]
        run.predictions_after_train = [adapter.classify_video(local_video(v))[0].probabilities for v in run.videos]
        run.annotations_after_train = adapter.predict_video(local_video(run.videos[0])).to_json()["annotations"]
        adapter.save(run.save_path)
        run.saved_configuration = dict(adapter.configuration)

        fresh = MovinetAdapter()
        fresh.model_entity = model_entity(run.saved_configuration, labels=LABELS)
        fresh.load(run.save_path)
        run.fresh_labels = fresh.loaded.labels
        run.fresh_predictions = [fresh.classify_video(local_video(v))[0].probabilities for v in run.videos]
        run.fresh_annotations = [fresh.predict_video(local_video(v)).to_json()["annotations"] for v in run.videos]

        uncalibrated = MovinetAdapter()  # the same weights with calibrate false: what they predicted before
        uncalibrated.model_entity = model_entity({**run.saved_configuration, "calibrate": False}, labels=LABELS)
        uncalibrated.load(run.save_path)
        run.uncalibrated_annotations = [
            uncalibrated.predict_video(local_video(v)).to_json()["annotations"] for v in run.videos
        ]
    with open(os.path.join(run.output_path, HISTORY_FILENAME)) as file:
        run.history = json.load(file)
    return run


def test_each_epochs_losses_and_accuracies_go_to_the_models_platform_metrics(trained):
    history = trained.history["history"]
    assert len(trained.metrics_sent) == 3  # one call per epoch
    for epoch, samples in enumerate(trained.metrics_sent):
        assert all(isinstance(s, dl.PlotSample) for s in samples)
        sent = {(s.figure, s.legend): s for s in samples}
        assert set(sent) == {
            ("loss", "train"),
            ("loss", "validation"),
            ("accuracy", "train"),
            ("accuracy", "validation"),
        }
        assert {s.x for s in samples} == {epoch}
        for (figure, legend), key in {
            ("loss", "train"): "loss",
            ("loss", "validation"): "val_loss",
            ("accuracy", "train"): "accuracy",
            ("accuracy", "validation"): "val_accuracy",
        }.items():
            assert math.isclose(sent[figure, legend].y, history[key][epoch], rel_tol=1e-6)
    assert all(0.0 <= a <= 1.0 for a in history["val_accuracy"])


def test_the_sdks_epoch_callback_is_called_after_every_epoch(trained):
    assert trained.epoch_calls == [(0, 3), (1, 3), (2, 3)]


def test_output_path_holds_the_newest_and_the_best_checkpoint_and_the_training_curves(trained):
    kept = {epochs for epochs, _ in list_checkpoints(trained.output_path)}
    assert kept == {3, trained.history["best_epoch"] + 1}  # the others were removed
    for epochs in kept:
        info = find_finetuned(epoch_dir(trained.output_path, epochs))
        assert info is not None and info.labels == LABELS
    with open(os.path.join(trained.output_path, CURVES_FILENAME), "rb") as file:
        assert file.read(8) == b"\x89PNG\r\n\x1a\n"


def test_the_epoch_with_the_best_validation_accuracy_is_kept(trained):
    history = trained.history["history"]
    accuracy, loss = history["val_accuracy"], history["val_loss"]
    best = max(range(3), key=lambda e: (accuracy[e], -loss[e]))
    assert trained.history["best_epoch"] == best
    best_dir = epoch_dir(trained.output_path, best + 1)
    assert trained.loaded_after_train.source == best_dir
    assert trained.loaded_after_train.labels == LABELS  # predict() now answers in the model's own labels
    assert {a["label"] for a in trained.annotations_after_train} <= set(LABELS)


def test_save_records_weights_and_label_map_and_load_gives_the_same_predictions(trained):
    config = trained.saved_configuration
    assert config["id_to_label_map"] == {0: "left", 1: "right"}
    assert os.path.isfile(os.path.join(trained.save_path, config["weights_filename"]))
    assert trained.model_updates > 0  # the SDK writes the configuration back to the platform
    with open(os.path.join(trained.save_path, METADATA_FILENAME)) as file:
        metadata = json.load(file)
    assert metadata["model_id"] == "a0" and metadata["model_mode"] == "base" and metadata["labels"] == LABELS
    assert (metadata["imgz"], metadata["n_frames"], metadata["fps"]) == (32, 4, 5.0)

    assert trained.fresh_labels == LABELS
    for after_train, after_load in zip(trained.predictions_after_train, trained.fresh_predictions):
        np.testing.assert_allclose(after_load, after_train, rtol=1e-5, atol=1e-6)


def test_a_fine_tuned_model_is_calibrated_and_its_calibration_changes_only_confidences(trained):
    temperature = trained.saved_configuration["temperature"]
    with open(os.path.join(trained.save_path, METADATA_FILENAME)) as file:
        assert json.load(file)["temperature"] == temperature
    calibration = trained.history["calibration"]
    assert calibration["temperature"] == temperature and calibration["samples"] == 4  # the validation clips
    assert calibration["nll_after"] <= calibration["nll_before"] + 1e-9  # the fit minimises the NLL (T=1 included)
    assert temperature != pytest.approx(1.0, abs=1e-3)
    for calibrated, plain in zip(trained.fresh_annotations, trained.uncalibrated_annotations):
        assert [a["label"] for a in calibrated] == [a["label"] for a in plain]  # same labels, same order
        confidences = [a["metadata"]["user"]["model"]["confidence"] for a in calibrated]
        plain_confidences = [a["metadata"]["user"]["model"]["confidence"] for a in plain]
        assert confidences != pytest.approx(plain_confidences, abs=1e-6)


def test_training_continues_from_fine_tuned_weights_in_the_artifacts(trained):
    from adapter.core.config import MovinetConfig

    config = MovinetConfig.from_dict(trained.saved_configuration)
    start = load_model(config, trained.save_path)  # what load() finds in the model's artifacts
    assert start.finetuned is not None
    clips = tf.random.uniform([2, 4, 32, 32, 3], seed=1)

    same = build_training_model(config, LABELS, start)  # same labels: the whole model carries on
    np.testing.assert_allclose(same(clips, training=False), start.model(clips, training=False), rtol=1e-5, atol=1e-6)

    more = build_training_model(config, [*LABELS, "up"], start)  # new labels: a new class layer only
    (projection, _), (start_projection, _) = _head_weights(more), _head_weights(start.model)
    for before, after in zip(start_projection, projection):
        np.testing.assert_array_equal(before, after)
    assert more(clips).shape == (2, 3)


# ------------------------------------------------------------------------------ it learns, from the command line


def test_the_command_line_trains_a_model_that_learns_motion_no_single_frame_shows(tmp_path, capsys, caplog):
    """`python -m adapter train`, then `predict --weights`, without login; two classes that differ
    only in the direction of motion; random initialisation; about 1.5 minutes."""
    from adapter.cli import parser as cli

    dataset = write_motion_dataset(
        tmp_path / "data", train_per_class=32, validation_per_class=8, frames=16, width=48, height=48, speed=6
    )
    output = tmp_path / "weights"
    small = set_options(imgz=32, n_frames=4, batch_size=4, fps=5, runtime="tensorflow")
    training = set_options(num_epochs=20, learning_rate=0.003, pretrained="false")
    caplog.set_level(logging.INFO, logger="adapter")
    tf_keras.utils.set_random_seed(0)  # the command line takes no seed; this makes the run repeatable

    assert cli.main(["train", dataset.root, "--output", str(output), *small, *training]) == 0

    assert "Epoch 20/20: loss" in caplog.text and "val_accuracy" in caplog.text  # the per-epoch metrics
    assert f"Fine-tuned weights written to {output}" in caplog.text
    with open(output / HISTORY_FILENAME) as file:
        record = json.load(file)
    history = record["history"]
    assert max(history["val_accuracy"]) >= 0.9
    assert history["val_accuracy"][record["best_epoch"]] == max(history["val_accuracy"])  # the kept epoch
    assert min(history["loss"][-5:]) < 0.5 * history["loss"][0]  # the loss fell
    assert find_finetuned(str(output)).labels == LABELS  # without --labels: the train subset's, sorted

    validation = load_subset(dataset.root, "validation", LABELS).samples
    capsys.readouterr()
    assert cli.main(["predict", "--weights", str(output), *[s.video_path for s in validation], *small]) == 0
    lines = {
        line.split(": ", 1)[0]: line.split(": ", 1)[1] for line in capsys.readouterr().out.splitlines() if ": " in line
    }
    top1 = [lines[sample.video_path].split()[0] for sample in validation]
    correct = sum(label == LABELS[sample.label_index] for label, sample in zip(top1, validation))
    assert correct / len(validation) >= 0.9
