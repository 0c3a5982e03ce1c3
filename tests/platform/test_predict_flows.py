"""The platform's prediction flows through dtlpy's own code (predict_items, predict_dataset), with
only the calls that talk HTTP replaced (tests/conftest.py): what gets uploaded, what is kept
when a video fails, and which items a dataset run predicts."""

from __future__ import annotations

import os
import types

import dtlpy as dl
import pytest

from adapter import MovinetAdapter
from adapter.movinet_adapter import PredictionFailed
from adapter.platform.dataset_runs import EveryItemFailed
from tests.conftest import annotation_model_names, model_entity
from tests.motion_dataset import write_motion_dataset
from tests.videos import write_text_as_video, write_video

SMALL = {"model_id": "a0", "model_mode": "base", "imgz": 48, "n_frames": 4, "batch_size": 2, "top_k": 3, "fps": 5}
MODEL_NAME = "movinet-a0-platform"


@pytest.fixture
def adapter(hub_cache, platform) -> MovinetAdapter:
    entity = model_entity(SMALL, name=MODEL_NAME, model_id="model-platform")
    return MovinetAdapter(model_entity=entity)


def this_models(annotations) -> list:
    return [a for a in annotations if MODEL_NAME in annotation_model_names(a)]


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
    platform.uploaded.clear()

    model, _ = adapter.evaluate_model(adapter.model_entity, dataset)

    assert model is adapter.model_entity
    # One whole-video annotation per item: top-1 only.
    assert all(len(this_models(platform.uploaded[i["id"]])) == 1 for i in items if not i.get("hidden"))
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
    adapter.predict_items(as_items(dataset, items))  # earlier predictions: top_k (3) per item
    broken = sorted(platform.uploaded)[1]
    earlier = list(platform.uploaded[broken])
    platform.files[broken] = write_text_as_video(tmp_path / "broken.mp4")
    good = sorted(i["id"] for i in items if i["id"] != broken)

    model, _ = adapter.evaluate_model(adapter.model_entity, dataset)

    table = pd.read_csv(score_uploads[f"{model.id}.csv"])
    # The broken item's earlier top-3 are not this run's predictions: not scored; the others are.
    assert sorted(table["item_id"]) == good
    assert platform.uploaded[broken] == earlier  # kept as they were
    assert all(len(this_models(platform.uploaded[item_id])) == 1 for item_id in good)
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
            for a in this_models(platform.uploaded[item["id"]])
            if a.metadata["user"]["movinet"]["level"] == "segment"
        ]
        assert segments  # temporal annotations were uploaded
        scores.append(score_segments(item["filename"], segments, [(item["annotations"][0]["label"], 0, 7)], 8))
    want = summarize_segments(scores)
    assert got == pytest.approx(
        {"frame accuracy": want["frame_accuracy"], "segment F1@0.5": want["f1_at_50"], "edit": want["edit"]}
    )
    assert "temporal segments of 4 video(s)" in caplog.text
