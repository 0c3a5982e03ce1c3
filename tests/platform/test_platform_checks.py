"""The real-platform suite's checks (platform_checks.py) on entities built from platform-shaped JSON.

The JSON follows what dtlpy 1.126.5 reads in each entity's from_json (field names and nesting):
a model with its configuration and deploy metadata, item artifacts whose filename is the full
remote path, executions with latestStatus and statusLog, annotations with metadata.user.model,
feature sets and features. Each check must pass on a correct result and fail on a wrong one.
"""

from __future__ import annotations

import dtlpy as dl
import numpy as np
import pytest

from adapter.core.presets import kinetics_600_labels
from tests.platform import platform_checks as checks

MODEL_NAME = "movinet-test-1a2b3c4d-finetuned"


def model(status="trained", configuration=None) -> dl.Model:
    return dl.Model.from_json(
        _json={
            "id": "65a0000000000000000000aa",
            "name": MODEL_NAME,
            "status": status,
            "configuration": configuration
            or {
                "model_id": "a0",
                "model_mode": "base",
                "embeddings_size": 480,
                "weights_filename": "movinet_finetuned.weights.h5",
                "id_to_label_map": {"0": "left", "1": "right"},
            },
            "artifacts": [{"type": "item", "itemId": "65a0000000000000000000b1"}],
            "metadata": {"system": {"deploy": {"services": ["65a0000000000000000000c1"]}}},
            "projectId": "65a0000000000000000000d1",
            "labels": ["left", "right"],
        },
        client_api=dl.client_api,
        project=None,
        package=None,
    )


def artifact(relative: str) -> dl.ItemArtifact:
    """An artifact as model.artifacts.list() gives it: the Binaries dataset's item."""
    return dl.Artifact.from_json(
        _json={
            "id": f"65a00000000000000000{abs(hash(relative)) % 10000:04d}",
            "type": "file",
            "name": relative.rsplit("/", 1)[-1],
            "filename": f"/artifacts/models/{MODEL_NAME}/{relative}",
            "dir": f"/artifacts/models/{MODEL_NAME}",
            "datasetId": "65a0000000000000000000e1",
            "metadata": {"system": {"mimetype": "application/octet-stream"}},
        },
        client_api=dl.client_api,
    )


def execution(state: str, message: str = "") -> dl.Execution:
    return dl.Execution.from_json(
        _json={
            "id": "65a0000000000000000000f1",
            "projectId": "65a0000000000000000000d1",
            "serviceId": "65a0000000000000000000c1",
            "functionName": "predict_items",
            "latestStatus": {"status": state, "message": message, "percentComplete": 100},
            "statusLog": [
                {"status": "created", "percentComplete": 0},
                {"status": "in-progress", "percentComplete": 0},
                {"status": state, "message": message, "percentComplete": 100},
            ],
            "input": {"items": []},
            "output": None,
        },
        client_api=dl.client_api,
    )


def annotation(label: str, model_name: str | None) -> dl.Annotation:
    metadata = {"system": {"status": None, "automated": model_name is not None}}
    if model_name is not None:
        metadata["user"] = {"model": {"name": model_name, "confidence": 0.8, "model_id": "65a0000000000000000000aa"}}
        metadata["system"]["model"] = {"name": model_name, "confidence": 0.8, "model_id": "65a0000000000000000000aa"}
    return dl.Annotation.from_json(
        _json={
            "id": f"65a0000000000000000001{abs(hash((label, model_name))) % 100:02d}",
            "itemId": "65a000000000000000000101",
            "type": "class",
            "label": label,
            "coordinates": None,
            "metadata": metadata,
            "creator": "bot.abc@bot.dataloop.ai",
            "createdAt": "2026-01-01T00:00:00.000Z",
            "updatedAt": "2026-01-01T00:00:00.000Z",
            "updatedBy": "bot.abc@bot.dataloop.ai",
            "source": "sdk",
        }
    )


def test_status_and_description_read_latest_status_and_status_log():
    failed = execution("failed", "Prediction failed for item 'notes.mp4' (id 65a...)")

    assert checks.status(failed) == "failed"
    assert "notes.mp4" in checks.described(failed)
    checks.check_succeeded(execution("success"))
    with pytest.raises(AssertionError):
        checks.check_succeeded(failed)


def test_the_weights_artifact_is_found_by_its_path_under_the_models_folder():
    trained = model()
    artifacts = [artifact("movinet_finetuned.weights.h5"), artifact("__view__training-history__x.json")]

    # An artifact's filename is the full remote path, its name only the basename.
    assert artifacts[0].filename == f"/artifacts/models/{MODEL_NAME}/movinet_finetuned.weights.h5"
    checks.check_fine_tuned(execution("success"), trained, artifacts, ["left", "right"])

    with pytest.raises(AssertionError):
        checks.check_fine_tuned(execution("success"), trained, artifacts[1:], ["left", "right"])
    # A file of the same name in another model's folder (a name prefix of this one) is not this model's.
    elsewhere = dl.Artifact.from_json(
        _json={**artifacts[0].to_json(), "filename": "/artifacts/models/movinet-test/movinet_finetuned.weights.h5"},
        client_api=dl.client_api,
    )
    with pytest.raises(AssertionError):
        checks.check_fine_tuned(execution("success"), trained, [elsewhere], ["left", "right"])


def test_the_model_json_artifact_references_carry_no_filename():
    # model.artifacts (the model JSON's list) are references: the suite must list the items instead.
    (reference,) = model().model_artifacts
    assert reference.filename is None


def test_deployed_services_and_app_model_configuration():
    assert checks.deployed_service_ids(model()) == ["65a0000000000000000000c1"]
    assert checks.deployed_service_ids(model(configuration={"model_id": "a0"})) == ["65a0000000000000000000c1"]
    pretrained = model(status="pre-trained")
    checks.check_app_model(pretrained, 480)
    with pytest.raises(AssertionError):
        checks.check_app_model(pretrained, 256)


def test_model_annotations_are_the_class_annotations_named_in_metadata_user_model():
    mine = [annotation(label, MODEL_NAME) for label in kinetics_600_labels()[:3]]
    human = annotation("left", None)
    other = annotation("walking", "another-model")

    assert checks.model_annotations([*mine, human, other], model()) == mine
    checks.check_predict_items(execution("failed", "item 'notes.mp4' failed"), "notes.mp4", mine, top_k=3)
    with pytest.raises(AssertionError):
        checks.check_predict_items(execution("failed", "item 'notes.mp4' failed"), "notes.mp4", mine[:2], top_k=3)
    checks.check_evaluated(execution("success"), {"a.mp4": [annotation("left", MODEL_NAME)]}, ["left", "right"])
    with pytest.raises(AssertionError):
        checks.check_evaluated(execution("success"), {"a.mp4": mine}, ["left", "right"])


def test_vectors_read_from_feature_entities():
    feature_set = dl.FeatureSet.from_json(
        _json={
            "id": "65a000000000000000000201",
            "name": MODEL_NAME,
            "type": MODEL_NAME,
            "entityType": "item",
            "size": 480,
            "project": "65a0000000000000000000d1",
            "modelId": "65a0000000000000000000aa",
        },
        client_api=dl.client_api,
    )
    unit = (np.ones(480) / np.sqrt(480)).tolist()
    features = [
        dl.Feature.from_json(
            _json={"id": f"f{n}", "featureSetId": feature_set.id, "entityId": item_id, "value": unit},
            client_api=dl.client_api,
        )
        for n, item_id in enumerate(["i1", "i2"])
    ]

    vectors = checks.feature_vectors_of(features)
    checks.check_vectors(feature_set, vectors, {"i1", "i2"}, 480)
    with pytest.raises(AssertionError):
        checks.check_vectors(feature_set, {"i1": [v * 2 for v in unit], "i2": unit}, {"i1", "i2"}, 480)
