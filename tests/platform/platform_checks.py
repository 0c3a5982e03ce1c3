"""What the real-platform suite checks, as functions of dtlpy entities.

test_real_platform.py calls them on what the platform returns; test_platform_checks.py calls
them offline on entities built with from_json from platform-shaped JSON, so a check that reads
a field the way the platform does not shape it fails here first, not on the first run with
credentials.
"""

from __future__ import annotations

import json
import posixpath

import dtlpy as dl
import numpy as np

from adapter.core.presets import kinetics_600_labels


def status(execution: dl.Execution) -> str | None:
    """The execution's latest status: "success", "failed", "in-progress", ..."""
    return (execution.latest_status or {}).get("status")


def described(execution: dl.Execution) -> str:
    """Everything the platform says about how the execution ended, for assertion messages."""
    return (
        json.dumps(execution.latest_status, default=str) + "\n" + json.dumps(execution.status_log, default=str)[-4000:]
    )


def model_annotations(
    annotations: list[dl.Annotation], model: dl.Model, name: str | None = None
) -> list[dl.Annotation]:
    """The class annotations among annotations that model made (metadata.user.model.name, as dtlpymetrics reads it).

    Args:
        annotations: an item's annotations.
        model: the model.
        name: the name its predictions carry (default the model's; an evaluation's differ).
    """
    name = name or model.name
    return [
        annotation
        for annotation in annotations
        if annotation.type == "class"
        and ((annotation.metadata or {}).get("user") or {}).get("model", {}).get("name") == name
    ]


def deployed_service_ids(model: dl.Model) -> list[str]:
    """The ids of the services the model is deployed on (metadata.system.deploy.services)."""
    return list((((model.metadata or {}).get("system") or {}).get("deploy") or {}).get("services") or [])


def check_app_model(model: dl.Model, embeddings_size: int) -> None:
    """The model the app installed: the preset's configuration, pretrained."""
    assert model.configuration["model_id"] == "a0"
    assert model.configuration["model_mode"] == "base"
    assert model.configuration["embeddings_size"] == embeddings_size
    assert model.status == "pre-trained"


def check_predict_items(execution: dl.Execution, bad_name: str, good_annotations: list, top_k: int) -> None:
    """The bad video fails the execution with its name; the good one was still annotated (top_k Kinetics labels)."""
    assert status(execution) == "failed", described(execution)
    assert bad_name in described(execution)
    assert len(good_annotations) >= top_k
    assert {annotation.label for annotation in good_annotations} <= set(kinetics_600_labels())


def check_succeeded(execution: dl.Execution) -> None:
    assert status(execution) == "success", described(execution)


def check_vectors(feature_set: dl.FeatureSet | None, vectors: dict[str, list], item_ids: set[str], size: int) -> None:
    """One unit-length vector of size values per item, in a feature set of that size."""
    assert feature_set is not None and feature_set.size == size
    assert set(vectors) == item_ids
    for vector in vectors.values():
        assert len(vector) == size
        np.testing.assert_allclose(np.linalg.norm(vector), 1.0, atol=1e-4)


def feature_vectors_of(features) -> dict[str, list]:
    """{entity id: vector} of feature entities (feature_set.features.list(...).all())."""
    return {feature.entity_id: feature.value for feature in features}


def check_fine_tuned(execution: dl.Execution, model: dl.Model, artifacts: list, labels: list[str]) -> None:
    """train_model succeeded, the labels are the dataset's, and the weights file is among the artifacts.

    weights_filename is relative to the model's artifacts folder; an artifact's filename is its
    full remote path (/artifacts/models/<model name>/<relative path>), so compare under that folder.
    """
    check_succeeded(execution)
    assert model.status == "trained"
    assert sorted(model.configuration["id_to_label_map"].values()) == labels
    weights = model.configuration.get("weights_filename")
    assert weights, model.configuration
    root = f"/artifacts/models/{model.name}"
    relative = {
        posixpath.relpath(artifact.filename, root)
        for artifact in artifacts
        if artifact.filename and artifact.filename.startswith(root + "/")
    }
    assert weights in relative, (weights, sorted(artifact.filename for artifact in artifacts))


def check_evaluated(execution: dl.Execution, annotations_by_item: dict[str, list], labels: list[str]) -> None:
    """evaluate_model succeeded and each item carries this model's predictions, from its labels only."""
    check_succeeded(execution)
    for name, made in annotations_by_item.items():
        predicted = {annotation.label for annotation in made}
        assert predicted and predicted <= set(labels), f"{name}: {predicted}"
