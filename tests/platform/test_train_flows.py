"""Fine-tuning through the SDK's own train_model flow, offline: clone, prepare_data, train, save_to_model,
artifacts, metrics, and a failed run that the next run resumes.

Only the calls that talk HTTP are replaced (tests/conftest.py's OfflinePlatform: artifacts
round-trip through a per-model folder, the dataset is a local folder in prepare_data's
layout); dtlpy's flow code runs for real. Models are the tiny a0 of the hub_cache fixture.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil

import dtlpy as dl
import pytest
from dtlpy.services import service_defaults

from adapter import MovinetAdapter
from adapter.core.config import ConfigError
from adapter.core.devices import REQUIRE_GPU_ENV, AcceleratorUnavailable
from adapter.core.presets import kinetics_600_labels
from adapter.datasets.layout import load_subset
from adapter.model.loading import DEFAULT_WEIGHTS_FILENAME, METADATA_FILENAME
from adapter.runtime import conversion as runtime_conversion
from adapter.runtime.conversion import CLIP_FILE
from adapter.runtime.conversion_cache import CACHE_DIRNAME
from adapter.training.outputs import CONFUSION_FILENAME, CURVES_FILENAME, HISTORY_FILENAME, RELIABILITY_FILENAME
from adapter.training.resume import RESUME_FILENAME
from adapter.video.inputs import local_video
from tests.conftest import SMALL_TRAINING, model_entity, subset_filters
from tests.motion_dataset import write_motion_dataset
from tests.videos import write_video

LABELS = ["left", "right"]
SMALL = SMALL_TRAINING
KEPT_ARTIFACTS = {
    DEFAULT_WEIGHTS_FILENAME,
    METADATA_FILENAME,
    CURVES_FILENAME,
    CONFUSION_FILENAME,
    HISTORY_FILENAME,
    RELIABILITY_FILENAME,  # calibrate is on by default
}


@pytest.fixture
def service(platform, hub_cache, tmp_path, monkeypatch):
    """The offline platform with a dataset of two motion classes, run from a scratch folder like a service."""
    monkeypatch.chdir(tmp_path)  # train_model prepares data under the relative tmp/<model id>
    monkeypatch.setattr(service_defaults, "DATALOOP_PATH", str(tmp_path / "dataloop"))
    data = write_motion_dataset(
        tmp_path / "dataset", train_per_class=2, validation_per_class=1, frames=8, width=48, height=48, speed=6
    )
    platform.dataset = platform.add_dataset(data.root)
    platform.data_root = data.root
    return platform


def clone_of_the_preset(platform, *, num_epochs: int, name="motion-model", **configuration) -> dl.Model:
    """What a user does on the platform: clone the a0 preset onto their dataset with their labels.

    The configuration (SMALL, with the given keys over it) is copied unchanged, so it still
    carries the preset's 600 Kinetics labels.
    """
    kinetics = kinetics_600_labels()
    preset = model_entity(
        {**SMALL, **configuration, "num_epochs": num_epochs, "id_to_label_map": dict(enumerate(kinetics))},
        labels=kinetics,
        name="movinet-a0-base",
        model_id="preset-a0",
    )
    models = dl.repositories.Models(client_api=dl.client_api, project=None)
    return models.clone(
        from_model=preset,
        model_name=name,
        dataset=platform.dataset,
        configuration=dict(preset.configuration),
        labels=LABELS,
        train_filter=subset_filters("train"),
        validation_filter=subset_filters("validation"),
    )


def test_train_model_on_a_clone_trains_its_own_labels_and_uploads_only_what_load_needs(
    service, caplog, monkeypatch, tmp_path
):
    # The default runtime (tflite on CPU): the artifacts also carry the conversion a replica runs.
    model = clone_of_the_preset(service, num_epochs=2, runtime=None)
    sent = service.clone_requests[-1]
    assert len(sent["configuration"]["id_to_label_map"]) == 600 and sent["labels"] == LABELS  # the trap

    with caplog.at_level(logging.INFO):
        trained = MovinetAdapter().train_model(model)

    assert trained.status == "trained" and service.model_statuses[0] == "training"
    assert trained.configuration["id_to_label_map"] == {0: "left", 1: "right"}
    assert "using the model's labels" in caplog.text
    files = service.artifact_files(model.id)
    conversion = {name for name in files if name.startswith(CACHE_DIRNAME + "/")}
    assert files - conversion == KEPT_ARTIFACTS
    assert {name.rsplit("/", 1)[-1] for name in conversion} == {CLIP_FILE, "manifest.json"}
    with open(f"{service.artifacts_dir(model.id)}/{METADATA_FILENAME}") as file:
        assert json.load(file)["labels"] == LABELS
    assert [len(samples) for samples in service.metrics] == [4, 4]  # train/validation loss and accuracy, per epoch
    assert [{s.x for s in samples} for samples in service.metrics] == [{0}, {1}]

    # What a fresh deployment replica does, with nothing in its own cache: it downloads the
    # artifacts, loads, and predicts from the shipped conversion without converting.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "fresh-replica-cache"))

    def no_conversion(*args):
        raise AssertionError("the replica converted the model instead of using the artifacts' conversion")

    monkeypatch.setattr(runtime_conversion, "convert_base", no_conversion)
    fresh = MovinetAdapter()
    fresh.load_from_model(model_entity=trained)
    assert fresh.loaded.finetuned is not None and fresh.loaded.labels == LABELS
    video = write_video(tmp_path / "clip.mp4", frames=12, fps=10, width=48, height=48)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        (collection,) = fresh.predict([local_video(video)])

    assert fresh.failures == []
    assert {annotation.label for annotation in collection.annotations} <= set(LABELS)
    reused = [r.getMessage() for r in caplog.records if "Reusing the TF Lite conversion" in r.getMessage()]
    assert len(reused) == 1 and os.path.realpath(fresh.loaded.source) in os.path.realpath(reused[0].split(" in ", 1)[1])


class FailingProgress:
    """The service's progress reporter; it dies after the given epoch (0-based), like a lost pod."""

    def __init__(self, fail_after_epoch: int):
        self.fail_after_epoch = fail_after_epoch

    def update(self, progress=None, message=None, **kwargs):
        if message and message.startswith(f"finished epoch: {self.fail_after_epoch}/"):
            raise RuntimeError("the service was interrupted")


def test_a_failed_run_is_resumed_from_its_last_checkpoint_by_the_next_train_model(service, caplog):
    model = clone_of_the_preset(service, num_epochs=3)
    samples = load_subset(service.data_root, "train", LABELS).samples
    steps_per_epoch = len(samples) // min(SMALL["batch_size"], len(samples))

    with pytest.raises(RuntimeError, match="interrupted"):
        MovinetAdapter().train_model(model, progress=FailingProgress(fail_after_epoch=1))

    # The SDK's save-on-failure uploaded the checkpoints: nothing trained is lost.
    files = service.artifact_files(model.id)
    assert {"checkpoints/epoch-0002/" + RESUME_FILENAME, "checkpoints/epoch-0002/" + METADATA_FILENAME} <= files
    assert any(f.startswith("checkpoints/epoch-0002/optimizer") for f in files)
    with open(f"{service.artifacts_dir(model.id)}/checkpoints/epoch-0002/{RESUME_FILENAME}") as file:
        state = json.load(file)
    assert state["epochs_done"] == 2 and state["optimizer_step"] == 2 * steps_per_epoch
    failed_history = state["history"]
    metrics_before = len(service.metrics)

    caplog.clear()
    with caplog.at_level(logging.INFO):
        trained = MovinetAdapter().train_model(model)

    assert "Resuming from epoch 2 of 3" in caplog.text
    assert f"optimizer step {2 * steps_per_epoch}," in caplog.text  # Adam's state came back, not a fresh optimizer
    assert [{s.x for s in samples} for samples in service.metrics[metrics_before:]] == [{2}]  # only the last epoch ran
    assert trained.status == "trained"
    # Success: the stale checkpoints are gone from the artifacts, the model and its record stay.
    assert service.artifact_files(model.id) == KEPT_ARTIFACTS
    with open(f"{service.artifacts_dir(model.id)}/{HISTORY_FILENAME}") as file:
        record = json.load(file)
    history = record["history"]
    assert record["finished"] is True and len(history["val_accuracy"]) == 3
    for key, values in failed_history.items():
        assert history[key][:2] == values  # the failed run's epochs are part of the record
    accuracy, loss = history["val_accuracy"], history["val_loss"]
    assert record["best_epoch"] == max(range(3), key=lambda e: (accuracy[e], -loss[e]))
    assert all(math.isfinite(v) for v in loss)


class PodKilled(BaseException):
    """What an OOM kill, eviction, preemption or timeout looks like to the SDK: no Python exception it
    catches (it catches Exception), so its save-on-failure never runs and nothing after it does."""


class KilledAfterEpoch(FailingProgress):
    def update(self, progress=None, message=None, **kwargs):
        if message and message.startswith(f"finished epoch: {self.fail_after_epoch}/"):
            raise PodKilled()


def remote_checkpoints(service, model) -> set[str]:
    return {name.split("/")[1] for name in service.artifact_files(model.id) if name.startswith("checkpoints/")}


def test_a_pod_killed_without_an_exception_is_resumed_from_the_checkpoint_uploaded_while_it_trained(
    service, caplog, tmp_path
):
    model = clone_of_the_preset(service, num_epochs=3, checkpoint_upload_minutes=0)
    samples = load_subset(service.data_root, "train", LABELS).samples
    steps_per_epoch = len(samples) // min(SMALL["batch_size"], len(samples))

    with pytest.raises(PodKilled):
        MovinetAdapter().train_model(model, progress=KilledAfterEpoch(fail_after_epoch=1))

    # Only the epoch callback's uploads reached the platform: the newest checkpoint and the
    # best epoch's; the first upload's other folder was deleted when the second replaced it.
    assert {name.split("/")[0] for name in service.artifact_files(model.id)} == {"checkpoints"}
    output = next(tmp_path.glob("tmp/*/output"))
    kept = {name for name in os.listdir(output / "checkpoints")}
    assert "epoch-0002" in kept and remote_checkpoints(service, model) == kept
    killed_history = json.loads((output / "checkpoints/epoch-0002" / RESUME_FILENAME).read_text())["history"]

    # A new pod: nothing local survives, only the model's artifacts.
    shutil.rmtree(tmp_path / "tmp")
    shutil.rmtree(tmp_path / "dataloop", ignore_errors=True)
    metrics_before = len(service.metrics)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        trained = MovinetAdapter().train_model(model)

    assert "Resuming from epoch 2 of 3" in caplog.text
    assert f"optimizer step {2 * steps_per_epoch}," in caplog.text
    assert [{s.x for s in samples} for samples in service.metrics[metrics_before:]] == [{2}]  # epoch 3 only
    assert trained.status == "trained" and service.artifact_files(model.id) == KEPT_ARTIFACTS
    record = json.loads((tmp_path / "tmp" / model.id / "output" / HISTORY_FILENAME).read_text())
    assert record["finished"] is True and len(record["history"]["loss"]) == 3
    for key, values in killed_history.items():
        assert record["history"][key][:2] == values


def test_a_stream_model_is_refused_before_anything_is_downloaded(platform):
    model = model_entity({**SMALL, "model_mode": "stream"}, labels=LABELS)

    with pytest.raises(ConfigError, match=r"'model_mode'"):
        MovinetAdapter().train_model(model)
    assert platform.artifact_downloads == [] and platform.model_statuses == []


def test_a_gpu_service_that_tensorflow_cannot_use_fails_before_anything_is_downloaded(platform, monkeypatch):
    monkeypatch.setenv(REQUIRE_GPU_ENV, "1")  # as the GPU runner image sets it; this machine has no GPU
    model = model_entity(SMALL, labels=LABELS)

    with pytest.raises(AcceleratorUnavailable, match="Training was started"):
        MovinetAdapter().train_model(model)
    assert platform.artifact_downloads == [] and platform.model_statuses == []


def test_prediction_uses_the_models_labels_over_a_copied_label_map(platform, hub_cache):
    renamed = [f"activity {i}" for i in range(600)]  # the user renamed the 600 classes on the model
    model = model_entity({**SMALL, "id_to_label_map": dict(enumerate(kinetics_600_labels()))}, labels=renamed)
    adapter = MovinetAdapter()
    adapter.model_entity = model

    adapter.load(None)

    assert adapter.loaded.labels == renamed


def test_training_data_larger_than_the_free_disk_fails_before_any_download(service, monkeypatch):
    import shutil

    from adapter.platform.items import NotEnoughDisk

    model = clone_of_the_preset(service, num_epochs=1)
    items = service.dataset_items[service.dataset.id]
    free = shutil.disk_usage(str(service_defaults.DATALOOP_PATH).rsplit("/", 1)[0]).free
    big = items[0]
    big.setdefault("metadata", {}).setdefault("system", {})["size"] = free
    downloads = []
    monkeypatch.setattr(dl.repositories.Datasets, "_export_recursive", lambda *a, **k: downloads.append(1) or iter(()))

    with pytest.raises(NotEnoughDisk, match="does not fit") as raised:
        MovinetAdapter().train_model(model)

    assert f"item {big['name']!r} (id {big['id']})" in str(raised.value)
    assert downloads == []
