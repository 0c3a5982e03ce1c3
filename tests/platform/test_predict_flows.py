"""The platform's prediction flows through dtlpy's own code (predict_items, predict_dataset), with
only the calls that talk HTTP replaced (tests/conftest.py): what gets uploaded, what is kept
when a video fails, and which items a dataset run predicts."""

from __future__ import annotations

import os
import types
from concurrent.futures import ThreadPoolExecutor

import dtlpy as dl
import pytest

from adapter import MovinetAdapter
from adapter.movinet_adapter import PredictionFailed
from adapter.platform.annotations import evaluation_name
from adapter.platform.dataset_runs import EveryItemFailed
from tests.conftest import annotation_model_names, model_entity
from tests.motion_dataset import write_motion_dataset
from tests.platform.test_concurrent_calls import downloads_meet
from tests.videos import write_text_as_video, write_video

SMALL = {"model_id": "a0", "model_mode": "base", "imgz": 48, "n_frames": 4, "batch_size": 2, "top_k": 3, "fps": 5}
MODEL_NAME = "movinet-a0-platform"


@pytest.fixture
def adapter(hub_cache, platform) -> MovinetAdapter:
    entity = model_entity(SMALL, name=MODEL_NAME, model_id="model-platform")
    return MovinetAdapter(model_entity=entity)


EVALUATION_NAME = evaluation_name(MODEL_NAME)


def this_models(annotations) -> list:
    return [a for a in annotations if MODEL_NAME in annotation_model_names(a)]


def evaluations(annotations) -> list:
    return [a for a in annotations if EVALUATION_NAME in annotation_model_names(a)]


def test_predicting_twice_leaves_one_set_of_this_models_annotations(adapter, platform, tmp_path, capsys):
    item = platform.add_item(write_video(tmp_path / "walk.mp4", frames=12, fps=10))
    other_model = {
        "type": "class",
        "label": "walking",
        "metadata": {"user": {"model": {"name": "another-model", "confidence": 0.5}}},
    }
    platform.uploaded[item.id] = [other_model]

    adapter.predict_items([item])
    adapter.predict_items([item])

    mine = this_models(platform.uploaded[item.id])
    assert len(mine) == 3  # top_k video-level annotations, once
    assert "predicting" not in capsys.readouterr().out  # no progress-bar fragments off a terminal
    assert other_model in platform.uploaded[item.id]  # another model's annotations are not touched
    for annotation in mine:
        # What dtlpymetrics matches predictions on: the model's name and a confidence.
        assert annotation.metadata["user"]["model"]["name"] == MODEL_NAME
        assert 0.0 < annotation.metadata["user"]["model"]["confidence"] <= 1.0


def test_a_failed_video_keeps_the_annotations_it_had(adapter, platform, tmp_path):
    good = platform.add_item(write_video(tmp_path / "walk.mp4", frames=12, fps=10))
    item = platform.add_item(write_video(tmp_path / "run.mp4", frames=12, fps=10))
    adapter.predict_items([good, item])
    before = list(platform.uploaded[item.id])
    # The item's file is replaced by one that cannot be decoded (a re-upload gone wrong).
    platform.files[item.id] = write_text_as_video(tmp_path / "broken.mp4")

    with pytest.raises(PredictionFailed, match="run.mp4") as raised:
        adapter.predict_items([good, item])

    assert platform.uploaded[item.id] == before  # nothing deleted, nothing added
    assert len(this_models(platform.uploaded[good.id])) == 3  # the good item was predicted again
    assert [name for name, _ in raised.value.failures] == [f"item 'run.mp4' (id {item.id})"]


PERSON = "annotator@example.com"


def platform_annotation(item, label, *, creator, created_at, updated_by=None, updated_at=None, model=None) -> dict:
    """A class annotation on a video as the platform returns it; model: (name, id) for a prediction."""
    metadata = {"system": {"frame": 0, "endFrame": 11, "objectId": "1", "attributes": {}}, "user": {}}
    if model is not None:
        name, model_id = model
        metadata["system"]["model"] = {"model_id": model_id, "name": name, "confidence": 0.4}
        metadata["user"]["model"] = {"model_id": model_id, "name": name, "confidence": 0.4}
    return {
        "id": f"{item.id}-{label}-{creator}",
        "itemId": item.id,
        "datasetId": "dataset-1",
        "type": "class",
        "label": label,
        "coordinates": None,
        "metadata": metadata,
        "creator": creator,
        "createdAt": created_at,
        "updatedBy": updated_by or creator,
        "updatedAt": updated_at or created_at,
        "source": "sdk" if model is not None else "ui",
    }


def test_a_re_predict_replaces_only_this_models_unchanged_predictions(adapter, platform, tmp_path):
    item = platform.add_item(write_video(tmp_path / "walk.mp4", frames=12, fps=10))
    model = (MODEL_NAME, adapter.model_entity.id)
    uploaded_at = "2026-11-30T10:00:00.000Z"
    bot = platform.caller
    earlier_prediction = platform_annotation(item, "walking", creator=bot, created_at=uploaded_at, model=model)
    # A prediction a person corrected in the studio: their email and a later time.
    corrected = platform_annotation(
        item,
        "jogging",
        creator=bot,
        created_at=uploaded_at,
        updated_by=PERSON,
        updated_at="2026-11-30T11:20:00.000Z",
        model=model,
    )
    # A prediction the same account changed later (a person predicting and correcting from the SDK).
    changed_later = platform_annotation(
        item, "running", creator=PERSON, created_at=uploaded_at, updated_at="2026-11-30T12:00:00.000Z", model=model
    )
    drawn = platform_annotation(item, "dancing", creator=PERSON, created_at=uploaded_at)  # ground truth
    # Another model with the same name (say, in another project sharing the dataset).
    namesake = platform_annotation(item, "hopping", creator=bot, created_at=uploaded_at, model=(MODEL_NAME, "other-id"))
    platform.uploaded[item.id] = [earlier_prediction, corrected, changed_later, drawn, namesake]

    adapter.predict_items([item])

    stored = platform.uploaded[item.id]
    assert earlier_prediction not in stored  # replaced
    assert all(a in stored for a in (corrected, changed_later, drawn, namesake))
    assert len(stored) == 4 + 3  # and this run's top-3


@pytest.fixture
def dataset(platform, tmp_path):
    motion = write_motion_dataset(
        tmp_path / "data",
        train_per_class=2,
        validation_per_class=0,
        frames=8,
        width=48,
        height=48,
        two_range_video=False,
    )
    return platform.add_dataset(motion.root, subsets=("train",))


def items_named(platform, dataset, prefix) -> list[str]:
    return sorted(i["id"] for i in platform.dataset_items[dataset.id] if i["name"].startswith(prefix))


def test_predict_dataset_predicts_only_the_filtered_items_and_reports_the_failed_one(
    adapter, platform, dataset, tmp_path
):
    left = items_named(platform, dataset, "left")
    right = items_named(platform, dataset, "right")
    platform.files[left[1]] = write_text_as_video(tmp_path / "broken.mp4")

    report = adapter.predict_dataset(dataset, filters=dl.Filters(field="dir", values="/left"))

    assert {item_id for item_id, annotations in platform.uploaded.items() if this_models(annotations)} == {left[0]}
    assert not any(platform.uploaded.get(item_id) for item_id in right)  # outside the filter
    assert report["items"] == 2 and report["succeeded"] == 1
    name = next(i["name"] for i in platform.dataset_items[dataset.id] if i["id"] == left[1])
    assert [entry["item"] for entry in report["failed"]] == [f"item {name!r} (id {left[1]})"]


def test_a_dataset_run_in_which_every_item_failed_fails(adapter, platform, dataset, tmp_path):
    for item_id in items_named(platform, dataset, "right"):
        platform.files[item_id] = write_text_as_video(tmp_path / f"{item_id}.mp4")

    with pytest.raises(EveryItemFailed, match="every one of the 2"):
        adapter.predict_dataset(dataset, filters=dl.Filters(field="dir", values="/right"))


@pytest.fixture
def score_uploads(platform, dataset, tmp_path, monkeypatch) -> dict:
    """{file name: local path} of the score files dtlpymetrics uploads; they are served back when it lists them."""
    scores = {}

    def items_upload(self, local_path=None, remote_path=None, overwrite=False, **kwargs):
        name = os.path.basename(local_path)
        scores[name] = local_path
        filename = f"{remote_path}/{name}"
        stored = platform.dataset_items[dataset.id]
        existing = [i for i in stored if i["filename"] == filename]
        if existing and not overwrite:
            raise AssertionError(f"{filename} exists and overwrite is off")
        # As the platform: overwrite replaces the item at that remote path.
        item = {"id": f"score-{name}", "name": name, "filename": filename, "type": "file", "hidden": True}
        stored[:] = [i for i in stored if i["filename"] != filename] + [item]
        platform.files[item["id"]] = local_path
        return dl.Item.from_json(_json=item, client_api=dl.client_api, dataset=dataset)

    monkeypatch.setattr(dl.repositories.Items, "upload", items_upload)
    monkeypatch.setattr(dl.Dataset, "_get_ontology", lambda self: types.SimpleNamespace(labels=[]))
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")  # dtlpymetrics writes its files to ../.dataloop
    return scores


def as_items(dataset, item_jsons) -> list:
    return [dl.Item.from_json(_json=i, client_api=dl.client_api, dataset=dataset) for i in item_jsons]


def test_evaluate_model_scores_top1_predictions_with_dtlpymetrics(adapter, platform, dataset, score_uploads, capsys):
    import pandas as pd

    items = platform.dataset_items[dataset.id]
    # What the model predicts for each video, learnt first through the same flow.
    adapter.predict_items(as_items(dataset, items))
    predicted = {i["id"]: this_models(platform.uploaded[i["id"]])[0].label for i in items}  # top-1 comes first
    labels = adapter.loaded.labels
    # Ground truth: right for the first two videos, a different label for the other two.
    right_ids = sorted(predicted)[:2]
    for item in items:
        truth = (
            predicted[item["id"]] if item["id"] in right_ids else next(l for l in labels if l != predicted[item["id"]])
        )
        for annotation in item["annotations"]:
            annotation["label"] = truth
    earlier = {item_id: list(annotations) for item_id, annotations in platform.uploaded.items()}

    model, _ = adapter.evaluate_model(adapter.model_entity, dataset)

    assert model is adapter.model_entity
    for item in items:
        if item.get("hidden"):
            continue
        # One whole-video annotation per item: top-1 only, under the evaluation's own name;
        # the model's earlier top-3 predictions stay as they were, and are not scored.
        assert len(evaluations(platform.uploaded[item["id"]])) == 1
        assert this_models(platform.uploaded[item["id"]]) == earlier[item["id"]]
    table = pd.read_csv(score_uploads[f"{model.id}.csv"])
    # One row per item: its ground truth matched with the model's single top-1 annotation.
    assert sorted(table["item_id"]) == sorted(predicted)
    assert table["first_id"].notna().all() and table["second_id"].notna().all()
    assert sorted(table.loc[table["label_score"] == 1, "item_id"]) == right_ids
    captured = capsys.readouterr()
    # Off a terminal, neither the SDK's nor dtlpymetrics' progress bars write fragments.
    assert "predicting" not in captured.out and "Calculating metrics" not in captured.err


def test_evaluate_model_scores_the_good_items_and_leaves_a_failed_one_out_with_its_annotations(
    adapter, platform, dataset, score_uploads, tmp_path, caplog
):
    import pandas as pd

    items = platform.dataset_items[dataset.id]
    adapter.evaluate_model(adapter.model_entity, dataset)  # an earlier evaluation: its top-1 per item
    broken = sorted(platform.uploaded)[1]
    earlier = list(platform.uploaded[broken])
    platform.files[broken] = write_text_as_video(tmp_path / "broken.mp4")
    good = sorted(i["id"] for i in items if i["id"] != broken and not i.get("hidden"))  # not the score files

    model, _ = adapter.evaluate_model(adapter.model_entity, dataset)

    table = pd.read_csv(score_uploads[f"{model.id}.csv"])
    # The broken item's earlier evaluation is not this run's prediction: not scored; the others are.
    assert sorted(table["item_id"]) == good
    assert platform.uploaded[broken] == earlier  # kept as they were
    assert all(len(evaluations(platform.uploaded[item_id])) == 1 for item_id in good)
    name = next(i["name"] for i in items if i["id"] == broken)
    assert any(f"without item {name!r} (id {broken})" in record.getMessage() for record in caplog.records)


def test_an_evaluation_in_which_every_item_failed_fails_before_scoring(
    adapter, platform, dataset, score_uploads, tmp_path
):
    for item in platform.dataset_items[dataset.id]:
        platform.files[item["id"]] = write_text_as_video(tmp_path / f"{item['id']}.mp4")

    with pytest.raises(EveryItemFailed, match="Evaluation failed for every one of the 4"):
        adapter.evaluate_model(adapter.model_entity, dataset)

    assert score_uploads == {}


def test_a_filtered_evaluation_scores_only_its_items_even_after_an_evaluation_of_all(
    adapter, platform, dataset, score_uploads
):
    import pandas as pd

    left = items_named(platform, dataset, "left")
    adapter.evaluate_model(adapter.model_entity, dataset)  # every item: their annotations were downloaded once

    model, _ = adapter.evaluate_model(adapter.model_entity, dataset, filters=dl.Filters(field="dir", values="/left"))

    # Only this run's items: none of the earlier download's item files are scored again.
    assert sorted(pd.read_csv(score_uploads[f"{model.id}.csv"])["item_id"]) == left


def test_predict_dataset_puts_fewer_long_videos_in_an_execution_without_changing_the_model(
    adapter, platform, dataset, monkeypatch
):
    # Two-minute videos: the configured 20 one-minute videos become 10 per execution for this run.
    for item in platform.dataset_items[dataset.id]:
        item["metadata"]["system"]["duration"] = 120.0
    adapter.model_entity.configuration["predict_embed_subset_limit"] = 20
    adapter.model_entity.configuration["predict_embed_timeout"] = 600  # else the SDK writes its default back
    limits = []
    split = dl.entities.Filters._get_split_filters

    def recording_split(dataset, filters, max_items, **kwargs):
        limits.append(max_items)
        return split(dataset, filters, max_items, **kwargs)

    monkeypatch.setattr(dl.entities.Filters, "_get_split_filters", staticmethod(recording_split))
    updates = platform.model_updates

    report = adapter.predict_dataset(dataset, filters=dl.Filters(field="dir", values="/left"))

    assert limits == [10]
    assert report["items"] == 2
    # The platform's copy keeps the configured limit: no update was sent for the run's.
    assert adapter.model_entity.configuration["predict_embed_subset_limit"] == 20
    assert platform.model_updates == updates


# --- dataset runs split into child executions ------------------------------------------------


@pytest.fixture
def object_id_dataset(platform, tmp_path):
    """Six videos whose ids are platform ObjectIds, as the SDK's id-range split needs."""
    motion = write_motion_dataset(
        tmp_path / "data",
        train_per_class=3,
        validation_per_class=0,
        frames=8,
        width=48,
        height=48,
        two_range_video=False,
    )
    dataset = platform.add_dataset(motion.root, subsets=("train",))
    items = sorted(platform.dataset_items[dataset.id], key=lambda item: item["name"])
    for number, item in enumerate(items, start=1):
        new_id = f"65a0{number:020x}"
        platform.files[new_id] = platform.files.pop(item["id"])
        item["id"] = new_id
    return dataset


class ChildExecutionsPlatform:
    """The platform's side of child executions: POST /ml/models/<id>/predict runs the chunk on
    another replica (a second adapter) at once; GET /executions/<id> and POST /query/faas serve them."""

    def __init__(self, platform, dataset, child_adapter, finish=True):
        self.platform, self.dataset, self.child, self.finish = platform, dataset, child_adapter, finish
        self.executions: dict[str, dict] = {}

    def gen_request(self, client, req_type, path, json_req=None, **kwargs):
        import re

        response = types.SimpleNamespace
        if req_type == "post" and re.fullmatch(r"/ml/models/[^/]+/predict", path):
            execution_id = f"65b0{len(self.executions) + 1:020x}"
            execution = {"id": execution_id, "functionName": "predict_dataset", "input": json_req["input"]}
            if not self.finish:
                execution["latestStatus"] = {"status": "in-progress", "percentComplete": 10}
            else:
                query = {"filter": json_req["input"]["datasetQuery"]}
                try:
                    report = self.child.predict_dataset(self.dataset, filters=dl.Filters(custom_filter=query))
                    execution.update(latestStatus={"status": "success", "percentComplete": 100}, output=report)
                except Exception as err:
                    execution.update(latestStatus={"status": "failed", "message": str(err)}, output=None)
            self.executions[execution_id] = execution
            return True, response(json=lambda: dict(execution))
        if req_type == "get" and path.startswith("/executions/"):
            return True, response(json=lambda: dict(self.executions[path.rsplit("/", 1)[1]]))
        if req_type.lower() == "post" and path == "/query/faas":
            from tests.conftest import dql_matches

            matched = [e for e in self.executions.values() if dql_matches(e, json_req.get("filter", {}))]
            return True, response(
                json=lambda: {"items": matched, "totalItemsCount": len(matched), "totalPagesCount": 1}
            )
        raise AssertionError(f"unexpected platform request in an offline test: {req_type} {path}")


def deployed_adapter(configuration: dict) -> MovinetAdapter:
    entity = model_entity(configuration, name=MODEL_NAME, model_id="65c000000000000000000001")
    entity.metadata = {"system": {"deploy": {"services": ["65d000000000000000000001"]}}}
    adapter = MovinetAdapter(model_entity=entity)
    adapter.project = dl.Project.from_json(
        _json={"id": "project-1", "name": "offline-project"}, client_api=dl.client_api
    )
    return adapter


def test_a_dataset_larger_than_the_limit_reports_its_children_items_and_failures(
    hub_cache, platform, object_id_dataset, tmp_path, monkeypatch
):
    configuration = {**SMALL, "predict_embed_subset_limit": 2, "predict_embed_timeout": 600}
    parent, child = deployed_adapter(configuration), deployed_adapter(configuration)
    ids = sorted(item["id"] for item in platform.dataset_items[object_id_dataset.id])
    names = {item["id"]: item["name"] for item in platform.dataset_items[object_id_dataset.id]}
    broken = [ids[0], ids[1], ids[3]]
    for item_id in broken:
        platform.files[item_id] = write_text_as_video(tmp_path / f"{item_id}.mp4")
    children = ChildExecutionsPlatform(platform, object_id_dataset, child)
    monkeypatch.setattr(
        type(dl.client_api),
        "gen_request",
        lambda client, *args, **kwargs: children.gen_request(client, *args, **kwargs),
    )

    # dtlpy's own predict_dataset -> _execute_dataset_operation: split, one child per chunk, wait, count failed.
    report = parent.predict_dataset(object_id_dataset)

    statuses = [execution["latestStatus"]["status"] for execution in children.executions.values()]
    assert len(statuses) >= 3 and "failed" in statuses and "success" in statuses
    # Every item predicted by the children counts, and every failure is named, in the parent's report.
    assert report["items"] == 6
    assert report["succeeded"] == 3
    assert sorted(entry["item"] for entry in report["failed"]) == sorted(
        f"item {names[item_id]!r} (id {item_id})" for item_id in broken
    )
    assert {item_id for item_id, annotations in platform.uploaded.items() if this_models(annotations)} == (
        set(ids) - set(broken)
    )


def test_children_still_running_when_the_wait_ends_fail_the_parent_by_name(
    hub_cache, platform, object_id_dataset, monkeypatch
):
    from adapter.platform.dataset_runs import ChildrenUnfinished

    configuration = {**SMALL, "predict_embed_subset_limit": 3, "predict_embed_timeout": 1}
    parent = deployed_adapter(configuration)
    children = ChildExecutionsPlatform(platform, object_id_dataset, None, finish=False)
    monkeypatch.setattr(
        type(dl.client_api),
        "gen_request",
        lambda client, *args, **kwargs: children.gen_request(client, *args, **kwargs),
    )

    with pytest.raises(ChildrenUnfinished, match="had not finished") as raised:
        parent.predict_dataset(object_id_dataset)

    assert all(execution_id in str(raised.value) for execution_id in children.executions)
    assert "6 items" in str(raised.value)


def test_a_re_evaluation_keeps_and_does_not_score_an_evaluation_prediction_a_person_changed(
    adapter, platform, dataset, score_uploads
):
    import pandas as pd

    adapter.evaluate_model(adapter.model_entity, dataset)
    corrected_item = sorted(platform.uploaded)[0]
    (corrected,) = evaluations(platform.uploaded[corrected_item])
    # A person corrects that prediction in the studio.
    corrected.label = "a person's label"
    corrected.updated_by, corrected.updated_at = PERSON, "2099-01-01T00:00:00.000Z"

    model, _ = adapter.evaluate_model(adapter.model_entity, dataset)

    assert corrected in platform.uploaded[corrected_item]  # kept
    fresh = {a.id for item_id, stored in platform.uploaded.items() for a in evaluations(stored) if a is not corrected}
    assert len(fresh) == 4  # one new top-1 per item
    table = pd.read_csv(score_uploads[f"{model.id}.csv"])
    # Every prediction scored is this run's: the corrected one is neither a prediction nor ground truth.
    assert set(table["second_id"].dropna()) == fresh
    assert corrected.id not in set(table["first_id"].dropna())


def test_an_evaluation_and_a_prediction_at_once_keep_their_own_names_and_top_k(
    adapter, platform, dataset, score_uploads, tmp_path, monkeypatch
):
    import pandas as pd

    other = platform.add_item(write_video(tmp_path / "other.mp4", frames=12, fps=10))
    items = [i["id"] for i in platform.dataset_items[dataset.id]]
    # The evaluation's first batch (2 videos) and the prediction's video download together.
    downloads_meet(monkeypatch, parties=3)

    with ThreadPoolExecutor(max_workers=2) as executions:  # the agent's pool, concurrency 2
        evaluation = executions.submit(adapter.evaluate_model, adapter.model_entity, dataset)
        prediction = executions.submit(adapter.predict_items, [other])
        model, _ = evaluation.result(timeout=600)
        prediction.result(timeout=600)

    # The prediction: the configured top_k under the model's name; the evaluation: top-1 under its own.
    assert len(this_models(platform.uploaded[other.id])) == 3 and not evaluations(platform.uploaded[other.id])
    for item_id in items:
        assert len(evaluations(platform.uploaded[item_id])) == 1 and not this_models(platform.uploaded[item_id])
    assert sorted(pd.read_csv(score_uploads[f"{model.id}.csv"])["item_id"]) == sorted(items)


def test_evaluate_model_with_temporal_annotations_reports_segment_metrics(
    hub_cache, platform, dataset, score_uploads, caplog
):
    import logging

    from adapter.evaluation.segment_metrics import score_segments, summarize_segments

    configuration = {**SMALL, "evaluate_temporal_annotations": True, "temporal_smoothing": 1}
    adapter = MovinetAdapter(model_entity=model_entity(configuration, name=MODEL_NAME, model_id="model-platform"))
    caplog.set_level(logging.INFO, logger="adapter")

    model, _ = adapter.evaluate_model(adapter.model_entity, dataset)

    (samples,) = platform.metrics
    got = {sample.legend: sample.y for sample in samples if sample.figure == "temporal segments"}
    # The same numbers from what was uploaded, scored here against each item's labelled range (frames 0-7).
    scores = []
    for item in platform.dataset_items[dataset.id]:
        if item.get("hidden"):
            continue
        segments = [
            (a.label, a.start_frame, a.end_frame)
            for a in evaluations(platform.uploaded[item["id"]])  # evaluate_model predicts under its own name
            if a.metadata["user"]["movinet"]["level"] == "segment"
        ]
        assert segments  # temporal annotations were uploaded
        scores.append(score_segments(item["filename"], segments, [(item["annotations"][0]["label"], 0, 7)], 8))
    want = summarize_segments(scores)
    assert got == pytest.approx(
        {"frame accuracy": want["frame_accuracy"], "segment F1@0.5": want["f1_at_50"], "edit": want["edit"]}
    )
    assert "temporal segments of 4 video(s)" in caplog.text
