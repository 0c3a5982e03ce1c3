"""Starting from any model and exporting what was trained (model.loading, model.network, export.savedmodel, cli).

A hub_handle SavedModel of any class count; the error for one of another variant or mode;
`movinet train --weights`; what the log says training starts from; `movinet
export-savedmodel` (hub signatures, label asset, same outputs as the adapter) and its
round trip as a hub_handle. Fine-tuned weights here are random (built, not trained): the
tests prove the mechanics, benchmarks/transfer.py that a pretrained start helps.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_hub

from adapter import MovinetAdapter
from adapter.cli import parser as cli
from adapter.core.config import ConfigError, MovinetConfig
from adapter.core.presets import kinetics_600_labels, preset_model
from adapter.model import network
from adapter.model.loading import LABELS_ASSET, FineTunedInfo, find_finetuned, load_model, save_finetuned
from adapter.platform.offline_model import offline_model
from adapter.training.model import build_training_model
from adapter.video.inputs import local_video
from tests.conftest import HANDLE, ROOT, _cache_root, set_options
from tests.motion_dataset import write_motion_dataset
from tests.videos import write_video

LABELS = ["slow", "fast", "still"]
# runtime pinned: each fine-tuned model would otherwise convert to TF Lite on load.
SMALL = dict(model_id="a0", model_mode="base", imgz=32, n_frames=4, batch_size=4, fps=5, runtime="tensorflow")
SMALL_SET = set_options(**{key: value for key, value in SMALL.items() if key not in ("model_id", "model_mode")})


def cached(name: str, make) -> str:
    """A product of make(folder) in the test cache, keyed by the sources that define it; made once.

    SavedModel exports take minutes on 2 cores: they are made when the exporter, the network
    or the presets change (or the cache is cold), as conftest caches the hub exports.
    """
    sources = [
        ROOT / "adapter" / f
        for f in (
            "export/savedmodel.py",
            "export/hub.py",
            "model/network.py",
            "model/layer_swaps.py",
            "core/variants.py",
        )
    ]
    digest = hashlib.sha1(b"".join(path.read_bytes() for path in sources)).hexdigest()[:12]
    target = _cache_root() / f"savedmodel-export-{digest}" / name
    if not target.is_dir():
        partial = target.with_name(f"{name}.partial-{os.getpid()}")
        shutil.rmtree(partial, ignore_errors=True)
        partial.parent.mkdir(parents=True, exist_ok=True)
        make(str(partial))
        try:
            partial.rename(target)  # only complete products become visible
        except OSError:  # another session made it meanwhile
            shutil.rmtree(partial, ignore_errors=True)
    return str(target)


def write_finetuned(folder: str) -> None:
    """Fine-tuned a0-base weights for LABELS in folder, as save() writes them (random weights)."""
    tf.keras.utils.set_random_seed(5)
    model = network.build_classifier("a0", "base", num_classes=len(LABELS))
    save_finetuned(model, folder, FineTunedInfo("a0", "base", LABELS, imgz=32, n_frames=4, fps=5.0))


@pytest.fixture(scope="module")
def finetuned() -> str:
    return cached("finetuned", write_finetuned)


@pytest.fixture(scope="module")
def exported(finetuned) -> str:
    """`movinet export-savedmodel --weights FINETUNED --output DIR`."""

    def export(output):
        assert cli.main(["export-savedmodel", "--weights", finetuned, "--output", output, *SMALL_SET]) == 0

    return cached("base-savedmodel", export)


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> str:
    return write_video(tmp_path_factory.mktemp("video") / "clip.mp4", frames=12, fps=5, width=48, height=48)


def adapter_for(configuration: dict, labels=None, weights=None) -> MovinetAdapter:
    """A loaded adapter bound to an offline model entity (no platform calls), as the command line binds one."""
    adapter = MovinetAdapter()
    adapter.model_entity = offline_model({"name": "movinet-test", "configuration": configuration, "labels": labels})
    adapter.load(weights)
    return adapter


# ------------------------------------------------------------------------------ export-savedmodel


def test_exported_savedmodel_has_the_hub_signature_labels_asset_and_the_adapters_outputs(finetuned, exported):
    saved = tensorflow_hub.load(exported)  # as a TF Hub model is loaded; tf.saved_model.load underneath

    assert list(saved.signatures) == ["serving_default"]
    with open(saved.labels_file.asset_path.numpy().decode()) as file:
        assert file.read().splitlines() == LABELS
    assert os.path.isfile(os.path.join(exported, "assets", LABELS_ASSET))

    adapter = adapter_for(SMALL, weights=finetuned)
    clip = tf.random.stateless_uniform([2, 4, 32, 32, 3], seed=[1, 2])
    (logits,) = saved.signatures["serving_default"](image=clip).values()
    np.testing.assert_allclose(logits.numpy(), adapter.loaded.model(clip, training=False).numpy(), rtol=1e-4, atol=1e-5)


def test_an_exported_savedmodel_is_a_hub_handle_again_with_the_labels_of_its_asset(finetuned, exported, video):
    fine_tuned = adapter_for(SMALL, weights=finetuned)
    expected = fine_tuned.classify_video(local_video(video))[0].probabilities

    # A preset's configuration and Kinetics label map, pointed at the export: the asset names the classes.
    preset = preset_model("movinet-a0-base")
    configuration = {**preset["configuration"], **SMALL, "hub_handle": exported}
    round_trip = adapter_for(configuration, labels=kinetics_600_labels())

    assert round_trip.loaded.labels == LABELS
    assert round_trip.loaded.finetuned is None and round_trip.loaded.source == exported
    np.testing.assert_allclose(
        round_trip.classify_video(local_video(video))[0].probabilities, expected, rtol=1e-4, atol=1e-5
    )

    # A label map with one name per class wins over the asset (renamed labels survive).
    renamed = adapter_for({**SMALL, "hub_handle": exported}, labels=["a", "b", "c"])
    assert renamed.loaded.labels == ["a", "b", "c"]


def test_a_hub_savedmodel_without_label_names_gets_placeholders_and_a_warning(exported, tmp_path, caplog):
    unnamed = tmp_path / "unnamed"
    shutil.copytree(exported, unnamed)
    os.remove(unnamed / "assets" / LABELS_ASSET)
    config = MovinetConfig.from_dict({**SMALL, "hub_handle": str(unnamed)})

    with caplog.at_level(logging.WARNING, logger="adapter.model.loading"):
        loaded = load_model(config, None, labels=kinetics_600_labels())

    assert loaded.labels == ["class_0", "class_1", "class_2"]
    assert "has 3 classes and no label names" in caplog.text and "id_to_label_map" in caplog.text
    # Still a starting point for training: the head's class layer is replaced.
    model = build_training_model(config, ["a", "b"], loaded)
    assert model(tf.zeros([1, 4, 32, 32, 3])).shape == (1, 2)


def test_a_savedmodel_of_another_variant_or_mode_names_what_it_is_and_what_is_asked(
    hub_cache, exported_models, exported
):
    with pytest.raises(network.WeightsMismatch) as stream_as_base:
        network.load_pretrained("a0", "base", str(exported_models["stream"]))
    message = str(stream_as_base.value)
    assert "movinet-a0-stream with 600 classes" in message and "model_mode='base'" in message

    with pytest.raises(network.WeightsMismatch) as base_as_a1:
        network.load_pretrained("a1", "base", exported)
    message = str(base_as_a1.value)
    assert "movinet-a0-base with 3 classes" in message and "model_id='a1'" in message


def test_export_savedmodel_of_a_stream_model_has_init_states_and_call_with_the_adapters_outputs(hub_cache):
    def export(output):
        assert (
            cli.main(["export-savedmodel", "--model", "movinet-a0-stream", "--output", output, "--set", "imgz=32"]) == 0
        )

    output = cached("stream-savedmodel", export)  # the hub a0-stream export (random weights) with its labels
    saved = tf.saved_model.load(output)  # as TF Serving loads it
    assert set(saved.signatures) == {"init_states", "call"}

    adapter = adapter_for({**SMALL, "model_mode": "stream"})
    frames = tf.random.stateless_uniform([1, 3, 32, 32, 3], seed=[3, 4])
    exported_states = saved.signatures["init_states"](tf.constant([1, 3, 32, 32, 3]))
    states = adapter.model.init_states(tf.constant([1, 3, 32, 32, 3]))
    for index in range(3):
        frame = frames[:, index : index + 1]
        outputs = saved.signatures["call"](image=frame, **exported_states)
        exported_logits = outputs.pop("logits")
        exported_states = outputs
        logits, states = adapter.model({**states, "image": frame}, training=False)
        np.testing.assert_allclose(exported_logits.numpy(), logits.numpy(), rtol=1e-4, atol=1e-5)
    with open(saved.labels_file.asset_path.numpy().decode()) as file:
        assert len(file.read().splitlines()) == 600


def test_export_savedmodel_refuses_a_folder_that_is_not_empty(finetuned, tmp_path):
    (tmp_path / "taken.txt").write_text("x")
    assert cli.main(["export-savedmodel", "--weights", finetuned, "--output", str(tmp_path)]) == 2


# ------------------------------------------------------------------------------ train --weights


def test_training_logs_what_the_hub_weights_came_from(hub_cache, caplog):
    config = MovinetConfig.from_dict(SMALL)
    start = load_model(config, None)
    with caplog.at_level(logging.INFO, logger="adapter.training.model"):
        build_training_model(config, ["a", "b"], start)
    handle = HANDLE.format(mode="base")
    assert f"Training starts from the hub model {handle} (600 classes) at {start.source}" in caplog.text
    assert "new class layer for 2 labels" in caplog.text


def test_train_with_weights_starts_from_the_fine_tuned_model_and_says_so(finetuned, tmp_path, caplog):
    data = write_motion_dataset(
        tmp_path / "data",
        train_per_class=2,
        validation_per_class=1,
        frames=8,
        width=48,
        height=48,
        two_range_video=False,
    )
    output = tmp_path / "out"
    caplog.set_level(logging.INFO, logger="adapter")

    code = cli.main(
        ["train", data.root, "--output", str(output), "--weights", finetuned, *SMALL_SET, "--set", "num_epochs=1"]
    )

    assert code == 0
    assert (
        f"Training starts from fine-tuned weights movinet-a0-base (3 classes) in {finetuned}: its backbone and "
        "head projection, with a new class layer for 2 labels"
    ) in caplog.text
    assert find_finetuned(str(output)).labels == ["left", "right"]
    with open(output / "training_history.json") as file:
        assert len(json.load(file)["history"]["loss"]) == 1


def test_train_with_weights_refuses_contradictions_before_reading_data(finetuned, tmp_path):
    missing = str(tmp_path / "never-read")
    assert (
        cli.main(["train", missing, "--output", str(tmp_path / "o"), "--weights", str(tmp_path)]) == 2
    )  # no movinet.json
    with pytest.raises(ConfigError, match="pretrained=false"):
        from adapter.cli.train import run_offline_training

        adapter = MovinetAdapter()
        adapter.model_entity = offline_model(
            {"name": "t", "configuration": {**SMALL, "pretrained": False}, "labels": ["a", "b"]}
        )
        run_offline_training(adapter, missing, str(tmp_path / "o"), labels=["a", "b"], weights=finetuned)


def test_a_savedmodel_export_that_fails_leaves_no_folder_and_no_partial(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from official.projects.movinet.tools import export_saved_model

    from adapter.core.config import MovinetConfig
    from adapter.export.savedmodel import export_savedmodel

    def dies_half_way(model, export_path, **kwargs):
        os.makedirs(os.path.join(export_path, "variables"))
        open(os.path.join(export_path, "saved_model.pb"), "wb").close()
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export_saved_model, "export_saved_model", dies_half_way)
    loaded = SimpleNamespace(model=network.build_classifier("a0", "base", num_classes=2), labels=["a", "b"], source="x")
    output = tmp_path / "saved_model"

    with pytest.raises(OSError, match="No space left"):
        export_savedmodel(loaded, MovinetConfig.from_dict({"imgz": 32}), str(output))

    assert list(tmp_path.iterdir()) == []  # neither a half SavedModel at the name nor a partial folder beside it
