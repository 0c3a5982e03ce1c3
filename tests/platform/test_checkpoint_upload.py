"""Uploading the resume checkpoint during training (adapter.platform.checkpoint_upload), at the SDK
boundary: the offline platform's artifacts stand in for the model's (tests/conftest.py)."""

from __future__ import annotations

import logging
import os

import dtlpy as dl

from adapter.platform.checkpoint_upload import CheckpointUploader
from adapter.training.checkpoints import write_checkpoint
from tests.conftest import SMALL_TRAINING, model_entity


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def checkpoint(output, epochs_done: int) -> str:
    def write_files(folder):
        with open(os.path.join(folder, "w.weights.h5"), "wb") as file:
            file.write(b"epoch %d" % epochs_done)

    return write_checkpoint(str(output), epochs_done, write_files, {"epochs_done": epochs_done})


def remote_checkpoints(platform, model) -> dict[str, set[str]]:
    folders: dict[str, set[str]] = {}
    for name in platform.artifact_files(model.id):
        parts = name.split("/")
        if parts[0] == "checkpoints":
            folders.setdefault(parts[1], set()).add(parts[2])
    return folders


def test_checkpoints_are_uploaded_once_the_period_passed_and_replace_the_earlier_upload(platform, tmp_path):
    model = model_entity(SMALL_TRAINING, labels=["a", "b"])
    clock = Clock()
    upload = CheckpointUploader(model, period_minutes=10, clock=clock)
    output = tmp_path / "output"

    clock.now += 60  # one epoch of a minute: too soon
    upload(str(output), [checkpoint(output, 1)])
    assert remote_checkpoints(platform, model) == {}

    clock.now += 600  # ten minutes later: epochs 2 (best so far) and 3
    upload(str(output), [checkpoint(output, 3), checkpoint(output, 2)])
    assert remote_checkpoints(platform, model) == {
        "epoch-0003": {"w.weights.h5", "resume.json"},
        "epoch-0002": {"w.weights.h5", "resume.json"},
    }
    assert not any(name.startswith(".checkpoint-upload-") for name in os.listdir(tmp_path))  # staging removed

    clock.now += 601
    upload(str(output), [checkpoint(output, 5), checkpoint(output, 2)])
    assert set(remote_checkpoints(platform, model)) == {"epoch-0005", "epoch-0002"}  # epoch-0003 deleted
    assert {a.filename.split("/")[5] for a in model.model_artifacts} == {"epoch-0005", "epoch-0002"}
    assert platform.artifact_uploads[-1].endswith("*")  # the SDK's own folder upload
    with open(os.path.join(platform.artifacts_dir(model.id), "checkpoints/epoch-0005/w.weights.h5"), "rb") as file:
        assert file.read() == b"epoch 5"


def test_a_period_of_zero_uploads_after_every_epoch(platform, tmp_path):
    model = model_entity(SMALL_TRAINING, labels=["a", "b"])
    upload = CheckpointUploader(model, period_minutes=0, clock=Clock())

    upload(str(tmp_path), [checkpoint(tmp_path, 1)])
    assert set(remote_checkpoints(platform, model)) == {"epoch-0001"}
    upload(str(tmp_path), [checkpoint(tmp_path, 2)])
    assert set(remote_checkpoints(platform, model)) == {"epoch-0002"}


def test_a_failed_upload_is_a_warning_and_the_next_epoch_tries_again(platform, tmp_path, monkeypatch, caplog):
    model = model_entity(SMALL_TRAINING, labels=["a", "b"])
    upload = CheckpointUploader(model, period_minutes=0, clock=Clock())
    real_upload = dl.repositories.Artifacts.upload

    def unreachable(self, *args, **kwargs):
        raise ConnectionError("platform unreachable")

    monkeypatch.setattr(dl.repositories.Artifacts, "upload", unreachable)
    with caplog.at_level(logging.WARNING):
        upload(str(tmp_path), [checkpoint(tmp_path, 1)])  # does not raise: training goes on
    assert "Could not upload the checkpoint epoch-0001" in caplog.text and "platform unreachable" in caplog.text

    monkeypatch.setattr(dl.repositories.Artifacts, "upload", real_upload)
    upload(str(tmp_path), [checkpoint(tmp_path, 2)])
    assert set(remote_checkpoints(platform, model)) == {"epoch-0002"}


def test_another_models_artifacts_listed_by_the_sdks_name_prefix_are_never_deleted(platform, tmp_path, monkeypatch):
    # The SDK lists /artifacts/models/<name>* as the model's artifacts: a model named
    # "<name>-stream" has its files listed too. Its checkpoints are not this model's to delete.
    model = model_entity(SMALL_TRAINING, labels=["a", "b"], name="movinet-a0")
    other = dl.Artifact.from_json(
        _json={
            "id": "other-model-file",
            "type": "file",
            "name": "resume.json",
            "filename": "/artifacts/models/movinet-a0-stream/checkpoints/epoch-0001/resume.json",
        },
        client_api=dl.client_api,
    )
    offline_upload, offline_delete, deleted = dl.repositories.Artifacts.upload, dl.repositories.Artifacts.delete, []

    def upload_listing_by_prefix(self, *args, **kwargs):
        result = offline_upload(self, *args, **kwargs)
        self.model.model_artifacts = [*self.model.model_artifacts, other]
        return result

    def delete(self, artifact_id=None, **kwargs):
        deleted.append(artifact_id)
        return offline_delete(self, artifact_id=artifact_id, **kwargs)

    monkeypatch.setattr(dl.repositories.Artifacts, "upload", upload_listing_by_prefix)
    monkeypatch.setattr(dl.repositories.Artifacts, "delete", delete)
    upload = CheckpointUploader(model, period_minutes=0, clock=Clock())
    upload(str(tmp_path), [checkpoint(tmp_path, 1)])
    upload(str(tmp_path), [checkpoint(tmp_path, 2)])

    assert deleted and all(a.startswith("checkpoints/epoch-0001/") for a in deleted)  # this model's old upload
    assert other in model.model_artifacts
    assert set(remote_checkpoints(platform, model)) == {"epoch-0002"}
