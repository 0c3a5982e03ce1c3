"""A service with concurrency above 1: one adapter, executions on a thread pool (as the agent runs
them), each through dtlpy's own predict_items flow with only HTTP replaced (tests/conftest.py).
Each call must see only its own failures, annotations and results."""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor

import dtlpy as dl
import pytest

from adapter import MovinetAdapter
from adapter.movinet_adapter import PredictionFailed
from tests.conftest import annotation_model_names, model_entity
from tests.videos import write_text_as_video, write_video

MODEL_NAME = "movinet-a0-concurrent"


def adapter_for(mode: str) -> MovinetAdapter:
    configuration = {"model_id": "a0", "model_mode": mode, "imgz": 48, "n_frames": 4, "batch_size": 2, "fps": 5}
    return MovinetAdapter(model_entity=model_entity({**configuration, "top_k": 2}, name=MODEL_NAME, model_id=mode))


def downloads_meet(monkeypatch, parties: int) -> None:
    """Hold the first `parties` item downloads until all of them are under way: the calls overlap for sure."""
    barrier = threading.Barrier(parties)
    arrivals = itertools.count()
    download = dl.Item.download

    def meeting_download(self, *args, **kwargs):
        if next(arrivals) < parties:
            barrier.wait(timeout=120)
        return download(self, *args, **kwargs)

    monkeypatch.setattr(dl.Item, "download", meeting_download)


def predictions(platform, item) -> list[tuple[str, float]]:
    """(label, confidence) of this model's annotations on the item, as uploaded."""
    return [
        (a.label, a.metadata["user"]["model"]["confidence"])
        for a in platform.uploaded.get(item.id, [])
        if MODEL_NAME in annotation_model_names(a)
    ]


@pytest.mark.parametrize("mode", ["base", "stream"])
def test_two_executions_at_once_keep_their_own_failures_and_annotations(
    mode, hub_cache, platform, tmp_path, monkeypatch
):
    adapter = adapter_for(mode)
    walk = platform.add_item(write_video(tmp_path / "walk.mp4", frames=16, fps=10, direction=(3, 0)))
    noise = platform.add_item(write_video(tmp_path / "noise.mp4", frames=16, fps=10, pattern="noise", seed=2))
    broken = platform.add_item(write_text_as_video(tmp_path / "broken.mp4"))
    # Each video alone first: what a call on its own uploads.
    adapter.predict_items([walk])
    adapter.predict_items([noise])
    alone = {item.id: predictions(platform, item) for item in (walk, noise)}
    platform.uploaded.clear()
    downloads_meet(monkeypatch, parties=3)

    with ThreadPoolExecutor(max_workers=2) as executions:  # the agent's pool, concurrency 2
        first = executions.submit(adapter.predict_items, [walk])
        second = executions.submit(adapter.predict_items, [noise, broken])
        items, annotations = first.result(timeout=600)
        with pytest.raises(PredictionFailed) as raised:
            second.result(timeout=600)

    # The first call succeeded with its own annotations; the second names only its own bad video.
    assert [item.id for item in items] == [walk.id]
    assert {a.item_id for a in annotations} == {walk.id}
    assert [name for name, _ in raised.value.failures] == [f"item 'broken.mp4' (id {broken.id})"]
    # Each video's annotations are the ones it gets alone (the interpreters were not shared mid-call).
    for item in (walk, noise):
        labels, confidences = zip(*predictions(platform, item))
        labels_alone, confidences_alone = zip(*alone[item.id])
        assert labels == labels_alone
        assert confidences == pytest.approx(confidences_alone, abs=1e-5)
    assert predictions(platform, broken) == []
