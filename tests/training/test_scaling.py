"""Training over devices and precisions (adapter.training.scaling) and on imbalanced, small label sets
(adapter.training.balance, top-5 accuracy, the kept epoch's confusion matrix).

Runs use random a0 weights at 32 px and 4 frames: they prove the mechanics, not learning.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from adapter.core.config import MovinetConfig
from adapter.datasets.layout import Sample
from adapter.training import balance, scaling
from adapter.training.fit import TrainingJob, fine_tune
from adapter.training.model import build_training_model, classifier_head, compile_for_training
from adapter.training.outputs import CONFUSION_FILENAME, HISTORY_FILENAME
from tests.motion_dataset import write_motion_dataset

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMALL = dict(
    model_id="a0", imgz=32, n_frames=4, fps=5, batch_size=4, learning_rate=0.001, pretrained=False, runtime="tensorflow"
)

# ------------------------------------------------------------------------------ devices and precision


def test_mirrored_over_two_logical_cpus_trains_to_the_same_result_as_one_device(tmp_path):
    """tests/distributed_run.py, in its own process (logical devices must be set before TensorFlow starts).

    Tolerance: losses within rtol 1e-5 and head weights within 1e-5, where training moved them
    by more than 1e-3 (only the order of float sums differs between the two runs).
    """
    data = write_motion_dataset(
        tmp_path / "data", train_per_class=2, validation_per_class=1, frames=8, width=48, height=48, speed=6
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    done = subprocess.run(
        [sys.executable, "-m", "tests.distributed_run", data.root, str(tmp_path / "out")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT ") :])

    one, mirrored = result["one_device"], result["mirrored"]
    assert result["logical_cpus"] == 2 and (one["replicas"], mirrored["replicas"]) == (1, 2)
    assert one["head_moved"] > 1e-3  # the runs trained
    for key in ("loss", "val_loss", "accuracy", "val_accuracy"):
        np.testing.assert_allclose(mirrored["history"][key], one["history"][key], rtol=1e-5, atol=1e-6)
    for after_one, after_mirrored in zip(one["head"], mirrored["head"]):
        np.testing.assert_allclose(after_mirrored, after_one, rtol=0, atol=1e-5)
    # A mirrored run resumes: its two epochs are kept, a third is trained, Adam's state came back.
    resumed = result["resumed"]
    assert "Resuming from epoch 2 of 3" in done.stderr and f"optimizer step {resumed['optimizer_step']}," in done.stderr
    assert resumed["optimizer_step"] > 0 and len(resumed["history"]["loss"]) == 3
    assert resumed["history"]["loss"][:2] == mirrored["history"]["loss"]
    assert np.isfinite(resumed["history"]["loss"][2])


def test_the_strategy_and_the_precision_follow_the_visible_gpus():
    assert isinstance(
        scaling.choose_strategy(gpus=["/physical_device:GPU:0", "/physical_device:GPU:1"]),
        tf.distribute.MirroredStrategy,
    )
    assert scaling.choose_strategy(gpus=["/physical_device:GPU:0"]) is tf.distribute.get_strategy()
    assert scaling.choose_strategy(gpus=[]) is tf.distribute.get_strategy()
    assert scaling.use_mixed_precision("auto", gpus=["/physical_device:GPU:0"]) is True
    assert scaling.use_mixed_precision("auto", gpus=[]) is False
    assert scaling.use_mixed_precision(True, gpus=[]) is True  # asked for: on, even on CPU
    assert scaling.use_mixed_precision(False, gpus=["/physical_device:GPU:0"]) is False


def test_mixed_precision_computes_the_backbone_in_float16_the_head_in_float32_and_a_step_trains():
    config = MovinetConfig.from_dict({**SMALL, "mixed_precision": True})
    tf_keras.utils.set_random_seed(1)

    model = build_training_model(config, ["a", "b", "c"], None, mixed=True)
    compile_for_training(model, config, mixed=True)

    assert tf_keras.mixed_precision.global_policy().name == "float32"  # only the build was mixed
    layers = [layer for layer in model.backbone.submodules if isinstance(layer, tf_keras.layers.Layer)]
    policies = {layer.dtype_policy.name for layer in layers}
    assert "mixed_float16" in policies
    # No float16 CPU kernel for 3D average pooling: on this GPU-less machine it stays float32.
    assert {l.dtype_policy.name for l in layers if isinstance(l, tf_keras.layers.AveragePooling3D)} == {"float32"}
    head = classifier_head(model)
    assert head.dtype_policy.name == "float32"
    assert all(w.dtype == tf.float32 for w in model.weights)  # variables stay float32
    assert isinstance(model.optimizer, tf_keras.mixed_precision.LossScaleOptimizer)
    clips = tf.random.uniform([2, 4, 32, 32, 3], seed=2)
    assert model(clips, training=False).dtype == tf.float32
    logs = model.train_on_batch(clips, np.array([0, 2], dtype=np.int32), return_dict=True)
    assert np.isfinite(logs["loss"]) and int(model.optimizer.iterations.numpy()) == 1


# ------------------------------------------------------------------------------ imbalanced label sets


def samples_of(counts: dict[int, int]) -> list[Sample]:
    return [Sample(f"v{i}-{n}.mp4", i, 0, None, f"v{i}-{n}") for i, count in counts.items() for n in range(count)]


def test_balanced_class_weights_give_every_present_class_the_same_total_weight():
    labels = ["a", "b", "c", "d"]
    counts = balance.class_counts(samples_of({0: 6, 1: 2, 3: 3}), labels)
    assert counts == [6, 2, 0, 3]

    weights = balance.class_weights(counts, "balanced")

    totals = {index: weights[index] * count for index, count in enumerate(counts) if count}
    assert len(set(np.round(list(totals.values()), 9))) == 1  # rare classes weigh as much as common ones
    assert sum(weights[i] * c for i, c in enumerate(counts)) == pytest.approx(sum(counts))  # mean weight 1
    assert weights[1] == pytest.approx(3 * weights[0])  # a third of the samples, three times the weight
    assert set(weights) == {0, 1, 2, 3}  # Keras wants every class; the absent one never occurs
    assert balance.class_weights(counts, "none") is None


@pytest.fixture(scope="module")
def imbalanced_run(tmp_path_factory):
    """One 2-epoch run on six labels, three of them without data, the rest 4:2:2 (ranges) in train."""
    root = tmp_path_factory.mktemp("imbalanced")
    data = write_motion_dataset(
        root / "data",
        classes=("left", "right", "up"),
        train_per_class=3,
        validation_per_class=1,
        frames=8,
        width=48,
        height=48,
        speed=6,
    )
    for name in ("right/right_001", "right/right_002", "up/up_002"):  # fewer of these in train
        os.remove(os.path.join(data.root, "train", "json", name + ".json"))
    run = type("Run", (), {})()
    run.labels = ["down", "left", "right", "spin", "up", "zoom"]
    run.output = str(root / "out")
    run.sent, run.class_weight = [], None
    original_fit = tf_keras.Model.fit

    def recording_fit(model, *args, **kwargs):
        run.class_weight = kwargs.get("class_weight")
        return original_fit(model, *args, **kwargs)

    job = TrainingJob(
        config=MovinetConfig.from_dict({**SMALL, "num_epochs": 2, "class_weighting": "balanced"}),
        labels=run.labels,
        subsets=("train", "validation"),
        starting_model=lambda: None,
        metrics_sink=lambda epoch, values: run.sent.append((epoch, values)) or True,
        seed=5,
    )
    with pytest.MonkeyPatch.context() as patch, _captured_logs("adapter.training") as run.log:
        patch.setattr(tf_keras.Model, "fit", recording_fit)
        run.result = fine_tune(data.root, run.output, job)
    with open(os.path.join(run.output, HISTORY_FILENAME)) as file:
        run.record = json.load(file)
    return run


class _captured_logs:
    """caplog for a module-scoped fixture: the records of one logger while the block runs."""

    def __init__(self, name):
        self.logger, self.records = logging.getLogger(name), []

    def __enter__(self):
        self.handler = logging.Handler(logging.DEBUG)
        self.handler.emit = self.records.append
        self.logger.addHandler(self.handler)
        self.level, self.logger.level = self.logger.level, logging.INFO
        return self.records

    def __exit__(self, *exc):
        self.logger.removeHandler(self.handler)
        self.logger.level = self.level


def test_labels_without_training_samples_are_named_in_a_warning(imbalanced_run):
    warnings = [r.getMessage() for r in imbalanced_run.log if r.levelno == logging.WARNING]
    named = [w for w in warnings if "no sample in the train subset" in w]
    assert len(named) == 1
    assert all(repr(label) in named[0] for label in ("down", "spin", "zoom"))
    assert not any(repr(label) in named[0] for label in ("left", "right", "up"))


def test_balanced_class_weights_are_logged_and_reach_the_loss(imbalanced_run):
    weights = imbalanced_run.class_weight  # what Keras fit weighed the loss with
    labels = imbalanced_run.labels
    left, right, up = (labels.index(name) for name in ("left", "right", "up"))
    # 4 left ranges (3 videos + one range of the two-range video), 2 right, 2 up.
    assert weights[right] == pytest.approx(2 * weights[left]) and weights[up] == pytest.approx(weights[right])
    logged = [r.getMessage() for r in imbalanced_run.log if "Class weighting 'balanced'" in r.getMessage()]
    assert len(logged) == 1 and f"'right' {weights[right]:.3g} (2)" in logged[0]


def test_top5_accuracy_is_reported_with_more_than_five_labels(imbalanced_run):
    history = imbalanced_run.record["history"]
    assert len(history["top5_accuracy"]) == len(history["val_top5_accuracy"]) == 2
    for top1, top5 in zip(history["val_accuracy"], history["val_top5_accuracy"]):
        assert top1 <= top5 <= 1.0
    for epoch, values in imbalanced_run.sent:
        sent = {(figure, legend): value for figure, legend, value in values}
        assert sent["top-5 accuracy", "validation"] == pytest.approx(history["val_top5_accuracy"][epoch])
        assert sent["top-5 accuracy", "train"] == pytest.approx(history["top5_accuracy"][epoch])


def test_the_kept_epochs_validation_confusion_matrix_is_drawn_beside_the_curves(imbalanced_run):
    path = os.path.join(imbalanced_run.output, CONFUSION_FILENAME)
    assert imbalanced_run.result.confusion_path == path
    with open(path, "rb") as file:
        assert file.read(8) == b"\x89PNG\r\n\x1a\n"
    record = imbalanced_run.record
    confusion = record["confusion_matrix"]
    matrix = np.array(confusion["counts"])
    labels = imbalanced_run.labels
    assert confusion["labels"] == labels and confusion["epoch"] == record["best_epoch"]
    assert matrix.shape == (6, 6)
    # Rows are the true labels: one validation video each of left, right and up.
    assert matrix.sum(axis=1).tolist() == [int(label in ("left", "right", "up")) for label in labels]
    # The diagonal is what Keras counted as correct in the kept epoch.
    kept_accuracy = record["history"]["val_accuracy"][record["best_epoch"]]
    assert np.trace(matrix) / matrix.sum() == pytest.approx(kept_accuracy)
