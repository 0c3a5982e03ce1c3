"""tools/bake_conversions.py: the image build's step that leaves each preset's conversion where replicas read it."""

from __future__ import annotations

import importlib.util
import logging
import shutil

import pytest

from adapter.core.config import MovinetConfig
from adapter.core.presets import kinetics_600_labels, preset_configurations
from adapter.model import hub
from tests.conftest import ROOT, handle_sha1

SMALL = {"imgz": 48, "n_frames": 4}


def _load_tool():
    spec = importlib.util.spec_from_file_location("bake_conversions", ROOT / "tools" / "bake_conversions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bake_conversions = _load_tool()


@pytest.fixture
def private_hub_cache(exported_models, tmp_path, monkeypatch):
    """A TFHUB_CACHE_DIR of copies (the bake writes beside the weights; the shared exports stay clean)."""
    cache = tmp_path / "tfhub"
    shutil.copytree(exported_models["stream"], cache / handle_sha1("stream"))
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(cache))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))  # not this machine's cache
    return cache


def test_a_baked_preset_is_not_converted_again_by_a_replica(private_hub_cache, caplog):
    from adapter.model.loading import load_model
    from adapter.runtime.backend import make_classifier

    report = bake_conversions.bake(["movinet-a0-stream"], overrides=SMALL)

    assert report["failed"] == [] and report["unreachable"] == []
    ((name, where),) = report["baked"]
    assert name == "movinet-a0-stream"
    # Beside the weights in the image's hub cache: the first folder a replica looks in.
    assert where == str(private_hub_cache / handle_sha1("stream") / "tflite-cache")

    # A replica: a fresh load of the preset; its classifier must come from the cache, not a conversion.
    config = MovinetConfig.from_dict({**preset_configurations()["movinet-a0-stream"], **SMALL})
    loaded = load_model(config, None, labels=kinetics_600_labels())

    def no_conversion(*args):
        raise AssertionError("the replica converted a preset the image had baked")

    with caplog.at_level(logging.INFO, logger="adapter.runtime.conversion_cache"):
        make_classifier(config, loaded, converter=no_conversion)
    assert "Reusing the TF Lite conversion" in caplog.text


def test_unreachable_weights_are_reported_by_preset_and_fail_unless_skipped(monkeypatch, capsys):
    def unreachable(config):
        raise hub.HubModelUnavailable(f"no network for {config.model_id}")

    monkeypatch.setattr(hub, "resolve_saved_model", unreachable)
    monkeypatch.setattr("adapter.model.loading.resolve_saved_model", unreachable, raising=False)

    assert bake_conversions.main(["movinet-a1-base"]) == 1
    err = capsys.readouterr().err
    assert "not baked (weights unreachable): movinet-a1-base" in err and "no network for a1" in err
    assert bake_conversions.main(["movinet-a1-base", "--skip-unreachable"]) == 0


def test_an_unknown_preset_is_named():
    with pytest.raises(ValueError, match="movinet-z9-base"):
        bake_conversions.bake(["movinet-z9-base"])
