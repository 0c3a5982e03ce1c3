"""The adapter on a real Dataloop project: publish, install, deploy, predict, embed, fine-tune, evaluate.

Skipped, with the reason printed (pytest -ra), unless the credentials are in the environment:

    DATALOOP_BOT_EMAIL, DATALOOP_BOT_PASSWORD  a bot (machine user) of the project, for dl.login_m2m
    DATALOOP_PROJECT_ID                         the project every resource is created in

Optional:

    DATALOOP_ENV                platform environment for dl.setenv (default "prod")
    MOVINET_RUNNER_IMAGE_CPU    runner image of the deploy compute config (default: the manifest's)
    MOVINET_RUNNER_IMAGE_GPU    runner image of the train/evaluate compute config (default: the manifest's,
                                Dataloop's public CUDA 11.8 base, on which training refuses to run:
                                set it to the prebuilt GPU image, docs/deploy.md)
    MOVINET_PLATFORM_TIMEOUT_S  how long to wait for one execution (default 3600)

The DPK is published from dataloop.json under a unique name (movinet-test-<hex>, project scope)
with this working tree as its codebase. Everything created is removed by one finalizer, in
reverse order of creation, also when a step fails; what it could not remove fails the run.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
import uuid
from pathlib import Path

import pytest

REQUIRED = ("DATALOOP_BOT_EMAIL", "DATALOOP_BOT_PASSWORD", "DATALOOP_PROJECT_ID")
MISSING = [name for name in REQUIRED if not os.environ.get(name)]

pytestmark = pytest.mark.skipif(
    bool(MISSING),
    reason=f"real-platform tests need {', '.join(MISSING)} in the environment (docs/testing.md: Real-platform tests)",
)

import dtlpy as dl  # noqa: E402

from adapter.core.presets import kinetics_600_labels  # noqa: E402
from adapter.core.variants import VARIANTS  # noqa: E402
from adapter.platform.annotations import EDIT_TOLERANCE_S, evaluation_name  # noqa: E402
from tests.motion_dataset import write_motion_dataset  # noqa: E402
from tests.platform import platform_checks as checks  # noqa: E402
from tests.videos import write_text_as_video  # noqa: E402

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
RUN = f"movinet-test-{uuid.uuid4().hex[:8]}"
SOURCE_MODEL = "movinet-a0-base"
LABELS = ["left", "right"]
FRAMES, FPS = 20, 5.0  # 4 s videos: one 13-frame clip at the preset's 5 fps
TIMEOUT_S = int(os.environ.get("MOVINET_PLATFORM_TIMEOUT_S", "3600"))
EMBEDDINGS_SIZE = VARIANTS["a0"].embeddings_size


# --- helpers --------------------------------------------------------------------------------


def platform_manifest() -> dict:
    """dataloop.json, renamed for this run, project-scoped, with only the a0 base model and no git codebase.

    Without a codebase, dpks.publish packs the local directory: the code under test, not a tag.
    """
    manifest = json.loads((ROOT / "dataloop.json").read_text(encoding="utf-8"))
    manifest.update(name=RUN, displayName=RUN, scope="project")
    manifest.pop("codebase", None)
    components = manifest["components"]
    (model,) = [model for model in components["models"] if model["name"] == SOURCE_MODEL]
    components["models"] = [{**model, "name": f"{RUN}-{SOURCE_MODEL}"}]
    images = {"CPU": os.environ.get("MOVINET_RUNNER_IMAGE_CPU"), "GPU": os.environ.get("MOVINET_RUNNER_IMAGE_GPU")}
    for config in components["computeConfigs"]:
        kind = "GPU" if config["runtime"]["podType"].startswith("gpu") else "CPU"
        if images[kind]:
            config["runtime"]["runnerImage"] = images[kind]
    return manifest


def finished(execution: dl.Execution) -> dl.Execution:
    """The execution once it stopped running (TimeoutError after MOVINET_PLATFORM_TIMEOUT_S)."""
    assert execution is not None, "the platform did not create the execution"
    return dl.executions.wait(execution=execution, timeout=TIMEOUT_S)


def model_annotations(item: dl.Item, model: dl.Model, name: str | None = None) -> list[dl.Annotation]:
    """The item's class annotations made by model (under name: the model's, or the evaluation's)."""
    return checks.model_annotations(list(item.annotations.list()), model, name)


def feature_vectors(feature_set: dl.FeatureSet, items: list[dl.Item]) -> dict[str, list]:
    """{item id: vector} of the feature set's vectors for items."""
    filters = dl.Filters(resource=dl.FiltersResource.FEATURE)
    filters.add(field="entityId", values=[item.id for item in items], operator=dl.FiltersOperations.IN)
    return checks.feature_vectors_of(feature_set.features.list(filters=filters).all())


def in_folder(folder: str) -> dl.Filters:
    return dl.Filters(field="dir", values=folder)


def delete_model(project: dl.Project, model_id: str) -> None:
    """Delete a model with its services and its feature set."""
    model = project.models.get(model_id=model_id)
    for service_id in checks.deployed_service_ids(model):
        project.services.get(service_id=service_id).delete()
    feature_set = model.feature_set
    if feature_set is not None:
        project.feature_sets.delete(feature_set_id=feature_set.id)
    model.delete()


@dataclasses.dataclass
class Uploaded:
    dataset: dl.Dataset
    train: list[dl.Item]
    validation: list[dl.Item]
    bad: dl.Item  # a text file named .mp4


# --- fixtures: created once, removed at the end ----------------------------------------------


@pytest.fixture(scope="module")
def cleanup():
    """register(description, undo): every undo runs at the end, newest first, each even if another fails."""
    undo_actions = []
    yield lambda description, undo: undo_actions.append((description, undo))
    leftovers = []
    for description, undo in reversed(undo_actions):
        try:
            undo()
            logger.info("removed %s", description)
        except Exception as err:  # keep removing the rest; report every leftover below
            leftovers.append(f"{description}: {type(err).__name__}: {err}")
    if leftovers:
        pytest.fail(f"{RUN}: these could not be removed from the project:\n" + "\n".join(leftovers))


@pytest.fixture(scope="module")
def project() -> dl.Project:
    dl.setenv(os.environ.get("DATALOOP_ENV", "prod"))
    dl.login_m2m(email=os.environ["DATALOOP_BOT_EMAIL"], password=os.environ["DATALOOP_BOT_PASSWORD"])
    if dl.token_expired():
        pytest.fail("dl.login_m2m did not log in: check DATALOOP_BOT_EMAIL, DATALOOP_BOT_PASSWORD and DATALOOP_ENV")
    return dl.projects.get(project_id=os.environ["DATALOOP_PROJECT_ID"])


@pytest.fixture(scope="module")
def app(project, cleanup) -> dl.App:
    dpk = dl.Dpk.from_json(_json=platform_manifest(), client_api=dl.client_api, project=project)
    dpk = project.dpks.publish(dpk=dpk, local_path=str(ROOT))
    cleanup(f"dpk {dpk.name} ({dpk.id})", dpk.delete)
    app = project.apps.install(dpk=dpk)
    cleanup(f"app {app.name} ({app.id})", app.uninstall)
    return app


@pytest.fixture(scope="module")
def app_model(project, app) -> dl.Model:
    filters = dl.Filters(resource=dl.FiltersResource.MODEL, field="app.id", values=app.id)
    (model,) = list(project.models.list(filters=filters).all())
    return model


@pytest.fixture(scope="module")
def uploaded(project, cleanup, tmp_path_factory) -> Uploaded:
    """A dataset of squares moving left or right (tests/motion_dataset.py) in /train and /validation, plus /bad."""
    dataset = project.datasets.create(dataset_name=RUN)
    cleanup(f"dataset {dataset.name} ({dataset.id})", lambda: dataset.delete(sure=True, really=True))
    dataset.add_labels(label_list=LABELS)
    root = tmp_path_factory.mktemp("motion")
    motion = write_motion_dataset(
        root, classes=LABELS, train_per_class=4, validation_per_class=2, frames=FRAMES, fps=FPS, two_range_video=False
    )
    subsets: dict[str, list[dl.Item]] = {"train": [], "validation": []}
    for subset, ranges in motion.ranges.items():
        for filename, labelled in ranges.items():
            local_path = root / subset / "items" / filename.lstrip("/")
            # Flat folders, so the subsets are plain "dir" filters.
            item = dataset.items.upload(local_path=str(local_path), remote_path=f"/{subset}")
            builder = item.annotations.builder()
            for label, first_frame, last_frame in labelled:
                builder.add(
                    annotation_definition=dl.Classification(label=label),
                    frame_num=first_frame,
                    end_frame_num=last_frame,
                )
            item.annotations.upload(builder)
            subsets[subset].append(item)
    bad = dataset.items.upload(local_path=write_text_as_video(root / "notes.mp4"), remote_path="/bad")
    return Uploaded(dataset, subsets["train"], subsets["validation"], bad)


@pytest.fixture(scope="module")
def deployed_model(project, app_model, cleanup) -> dl.Model:
    """A project clone of the pretrained a0 base model, deployed (CPU service)."""
    source = project.models.get(model_id=app_model.id)  # clone() edits the source's configuration in memory
    model = source.clone(model_name=f"{RUN}-pretrained", project_id=project.id)
    cleanup(f"model {model.name} ({model.id})", lambda: delete_model(project, model.id))
    model.deploy()
    return project.models.get(model_id=model.id)  # its metadata now names the service


@pytest.fixture(scope="module")
def trained(project, app_model, uploaded, cleanup) -> tuple[dl.Execution, dl.Model]:
    """A clone of a0 base on the uploaded dataset (labels left/right), after train_model."""
    if not os.environ.get("MOVINET_RUNNER_IMAGE_GPU"):
        # The manifest's GPU image is Dataloop's public CUDA 11.8 base, on which training refuses
        # to run (TensorFlow 2.20 needs CUDA 12): that is by design, not the platform disagreeing.
        pytest.skip("training needs MOVINET_RUNNER_IMAGE_GPU: the prebuilt GPU image (docs/deploy.md)")
    source = project.models.get(model_id=app_model.id)
    model = source.clone(
        model_name=f"{RUN}-finetuned",
        dataset=uploaded.dataset,
        project_id=project.id,
        labels=LABELS,
        configuration={"num_epochs": 2},
        train_filter=in_folder("/train"),
        validation_filter=in_folder("/validation"),
    )
    cleanup(f"model {model.name} ({model.id})", lambda: delete_model(project, model.id))
    execution = finished(model.train())
    return execution, project.models.get(model_id=model.id)


# --- the flows, in the order a user meets them ------------------------------------------------


def test_the_app_installs_the_model_with_its_configuration(app_model):
    checks.check_app_model(app_model, EMBEDDINGS_SIZE)


def test_predict_items_annotates_the_good_video_and_names_the_bad_one(deployed_model, uploaded):
    good = uploaded.validation[0]

    execution = finished(deployed_model.predict(item_ids=[good.id, uploaded.bad.id]))

    checks.check_predict_items(
        execution, uploaded.bad.name, model_annotations(good, deployed_model), deployed_model.configuration["top_k"]
    )


def test_predict_dataset_annotates_every_filtered_video(project, deployed_model, uploaded):
    execution = finished(
        project.models.predict(model=deployed_model, dataset_id=uploaded.dataset.id, filters=in_folder("/validation"))
    )

    checks.check_succeeded(execution)
    for item in uploaded.validation:
        assert model_annotations(item, deployed_model), f"no annotations by {deployed_model.name} on {item.name}"


def test_a_re_predict_replaces_unchanged_predictions_and_keeps_a_corrected_one(deployed_model, uploaded):
    item = uploaded.validation[-1]
    first = finished(deployed_model.predict(item_ids=[item.id]))
    checks.check_succeeded(first)
    predictions = model_annotations(item, deployed_model)
    # A person corrects one prediction, later than the upload's own timestamps.
    time.sleep(EDIT_TOLERANCE_S + 1)
    corrected = predictions[0]
    corrected.label = next(label for label in kinetics_600_labels() if label != corrected.label)
    corrected.update(system_metadata=True)

    second = finished(deployed_model.predict(item_ids=[item.id]))

    checks.check_succeeded(second)
    after = model_annotations(item, deployed_model)
    # The unchanged predictions were replaced; the corrected one is still there, beside the new ones.
    assert {a.id for a in predictions} & {a.id for a in after} == {corrected.id}
    assert len(after) == len(predictions) + 1


def test_embed_items_uploads_unit_vectors_of_embeddings_size(project, deployed_model, uploaded):
    items = uploaded.train[:2]

    execution = finished(deployed_model.embed(item_ids=[item.id for item in items]))

    checks.check_succeeded(execution)
    feature_set = project.models.get(model_id=deployed_model.id).feature_set
    vectors = feature_vectors(feature_set, items) if feature_set is not None else {}
    checks.check_vectors(feature_set, vectors, {item.id for item in items}, EMBEDDINGS_SIZE)


def test_embed_dataset_embeds_every_filtered_video(project, deployed_model, uploaded):
    execution = finished(
        project.models.embed(model=deployed_model, dataset_id=uploaded.dataset.id, filters=in_folder("/validation"))
    )

    checks.check_succeeded(execution)
    feature_set = project.models.get(model_id=deployed_model.id).feature_set
    vectors = feature_vectors(feature_set, uploaded.validation)
    checks.check_vectors(feature_set, vectors, {item.id for item in uploaded.validation}, EMBEDDINGS_SIZE)


def test_fine_tune_on_a_generated_dataset(trained):
    execution, model = trained

    checks.check_fine_tuned(execution, model, list(model.artifacts.list()), LABELS)


def test_evaluate_the_fine_tuned_model_on_the_validation_folder(trained, uploaded):
    _, model = trained

    execution = finished(model.evaluate(dataset_id=uploaded.dataset.id, filters=in_folder("/validation")))

    checks.check_evaluated(
        execution,
        # The evaluation's own predictions, apart from the model's (platform.annotations).
        {item.name: model_annotations(item, model, evaluation_name(model.name)) for item in uploaded.validation},
        LABELS,
    )
