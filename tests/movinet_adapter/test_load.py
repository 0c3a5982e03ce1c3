"""MovinetAdapter.load: settings that do not fit the loaded model are said at load, once."""

from __future__ import annotations

import logging

import pytest

from adapter.model import network
from adapter.model.loading import FineTunedInfo, save_finetuned
from adapter.movinet_adapter import MovinetAdapter
from adapter.platform.offline_model import offline_model

LABELS = ["walk", "run"]


@pytest.fixture(scope="module")
def two_classes(tmp_path_factory) -> str:
    folder = str(tmp_path_factory.mktemp("two-classes"))
    model = network.build_classifier("a0", "base", num_classes=len(LABELS))
    save_finetuned(model, folder, FineTunedInfo("a0", "base", LABELS, imgz=32, n_frames=4, fps=5.0))
    return folder


def load(folder: str, top_k: int) -> MovinetAdapter:
    adapter = MovinetAdapter()
    configuration = {"imgz": 32, "n_frames": 4, "top_k": top_k, "runtime": "tensorflow"}
    adapter.model_entity = offline_model({"name": "movinet-test", "configuration": configuration, "labels": LABELS})
    adapter.load(folder)
    return adapter


def test_top_k_above_the_class_count_warns_naming_both_numbers(two_classes, caplog):
    with caplog.at_level(logging.WARNING):
        load(two_classes, top_k=5)

    warnings = [record.getMessage() for record in caplog.records if "'top_k'" in record.getMessage()]
    assert len(warnings) == 1 and "is 5" in warnings[0] and "2 classes" in warnings[0]


def test_top_k_within_the_class_count_is_quiet(two_classes, caplog):
    with caplog.at_level(logging.WARNING):
        load(two_classes, top_k=2)

    assert not [record for record in caplog.records if "'top_k'" in record.getMessage()]
