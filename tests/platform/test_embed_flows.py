"""embed_dataset through dtlpy's own flow (feature-set resolution, item listing, embed_items, the
feature upload), with only the calls that talk HTTP replaced (tests/conftest.py)."""

from __future__ import annotations

import numpy as np
import pytest

from adapter import MovinetAdapter
from adapter.core.variants import VARIANTS
from adapter.platform.feature_sets import FeatureSetMismatch
from tests.conftest import model_entity
from tests.motion_dataset import write_motion_dataset

A0_SIZE = VARIANTS["a0"].embeddings_size
# No embeddings_size: the SDK would size a new feature set 256 and write 256 into it.
CONFIGURATION = {"model_id": "a0", "model_mode": "base", "imgz": 48, "n_frames": 4, "batch_size": 2, "fps": 5}
MODEL_ID = "model-embed"


@pytest.fixture
def adapter(hub_cache, platform) -> MovinetAdapter:
    entity = model_entity(CONFIGURATION, name="movinet-a0-embed", model_id=MODEL_ID, project_id="project-1")
    return MovinetAdapter(model_entity=entity)


@pytest.fixture
def dataset(platform, tmp_path):
    motion = write_motion_dataset(
        tmp_path / "data", train_per_class=1, validation_per_class=0, frames=8, width=48, height=48
    )
    return platform.add_dataset(motion.root, subsets=("train",))


def test_embed_dataset_without_embeddings_size_creates_a_feature_set_of_the_variants_size(adapter, platform, dataset):
    assert "embeddings_size" not in adapter.model_entity.configuration
    platform.add_feature_set(name="another-model", size=256, model_id="another-model-id")  # not this model's

    adapter.embed_dataset(dataset)

    (feature_set,) = [s for s in platform.feature_sets if s.model_id == MODEL_ID]
    assert feature_set.size == A0_SIZE
    # What the platform's model now says, and what the SDK checked each vector's length against.
    assert adapter.model_entity.configuration["embeddings_size"] == A0_SIZE
    item_ids = {item["id"] for item in platform.dataset_items[dataset.id]}
    assert {feature["item_id"] for feature in platform.features} == item_ids
    for feature in platform.features:
        assert feature["feature_set_id"] == feature_set.id
        assert len(feature["value"]) == A0_SIZE
        np.testing.assert_allclose(np.linalg.norm(feature["value"]), 1.0, atol=1e-5)


def test_embed_dataset_refuses_the_models_feature_set_of_another_size_naming_it(adapter, platform, dataset):
    # Made by an earlier version that let the SDK size it 256.
    platform.add_feature_set(name="movinet-a0-embed", size=256, model_id=MODEL_ID)

    with pytest.raises(FeatureSetMismatch) as raised:
        adapter.embed_dataset(dataset)

    message = str(raised.value)
    assert "'movinet-a0-embed'" in message and "feature-set-1" in message
    assert "256" in message and str(A0_SIZE) in message
    assert platform.features == []  # nothing embedded into it
    assert len(platform.feature_sets) == 1  # and no second set beside it
