"""`python -m adapter predict` as a user runs it: offline, no login, exit codes and output files."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from adapter.cli.options import parse_set
from adapter.core.config import ConfigError
from tests.conftest import ROOT, set_options
from tests.videos import write_text_as_video, write_video


def run_cli(*args, env_extra=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "adapter", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )


def write_metadata(weights, weights_filename: str) -> None:
    """movinet.json of a two-label a0 base model whose weights are weights_filename."""
    metadata = dict(model_id="a0", model_mode="base", labels=["a", "b"], imgz=32, n_frames=4, fps=5.0)
    (weights / "movinet.json").write_text(json.dumps({**metadata, "weights_filename": weights_filename}))


def test_predict_writes_annotations_for_every_video_and_fails_for_the_bad_one(hub_cache, tmp_path):
    good = write_video(tmp_path / "walk.mp4", frames=15, fps=10)
    other = write_video(tmp_path / "run.mkv", frames=9, fps=10, width=48, height=64)
    bad = write_text_as_video(tmp_path / "notes.mp4")
    output = tmp_path / "annotations.json"

    result = run_cli(
        "predict",
        good,
        bad,
        other,
        *set_options(imgz=48, n_frames=4, num_frames=4),
        "--output",
        str(output),
        env_extra={"TFHUB_CACHE_DIR": str(hub_cache)},
    )

    assert result.returncode == 1, result.stderr[-3000:]
    written = json.loads(output.read_text())
    assert list(written) == [good, bad, other]  # the videos after the bad one were still done
    assert written[bad] == []
    for path, frames in ((good, 15), (other, 9)):
        video_level = [a for a in written[path] if a["metadata"]["user"]["movinet"]["level"] == "video"]
        assert len(video_level) == 3  # movinet-a0-base's top_k
        assert {(a["metadata"]["system"]["frame"], a["metadata"]["system"]["endFrame"]) for a in video_level} == {
            (0, frames - 1)
        }
        printed = next(line for line in result.stdout.splitlines() if line.startswith(path + ":"))
        assert video_level[0]["label"] in printed
    assert f"FAILED {bad}" in result.stderr
    # The unknown key is reported with the key it most likely meant.
    assert "'num_frames'" in result.stderr and "'n_frames'" in result.stderr


def test_bad_configuration_value_exits_2_naming_the_key(tmp_path):
    result = run_cli("predict", str(tmp_path / "x.mp4"), "--set", "imgz=0")

    assert result.returncode == 2
    assert "'imgz'" in result.stderr and "0" in result.stderr


def test_unknown_model_name_lists_the_models(tmp_path):
    result = run_cli("predict", str(tmp_path / "x.mp4"), "--model", "movinet-z9-base")

    assert result.returncode == 2
    assert "movinet-z9-base" in result.stderr and "movinet-a5-stream" in result.stderr


def test_set_values_parse_as_json_where_they_do():
    assert parse_set(["imgz=96", "model_mode=stream", "temporal_annotations=true", "fps=null", "hub_handle=/m"]) == {
        "imgz": 96,
        "model_mode": "stream",
        "temporal_annotations": True,
        "fps": None,
        "hub_handle": "/m",
    }
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_set(["imgz"])


def test_weights_folder_without_a_fine_tuned_model_is_refused_not_ignored(tmp_path):
    (tmp_path / "weights").mkdir()

    result = run_cli("predict", str(tmp_path / "x.mp4"), "--weights", str(tmp_path / "weights"))

    assert result.returncode == 2
    assert "--weights" in result.stderr and "no fine-tuned model" in result.stderr


def test_weights_folder_whose_metadata_names_missing_weights_is_refused(tmp_path):
    weights = tmp_path / "weights"
    weights.mkdir()
    write_metadata(weights, "gone.weights.h5")

    result = run_cli("predict", str(tmp_path / "x.mp4"), "--weights", str(weights))

    assert result.returncode == 2
    assert "gone.weights.h5" in result.stderr


def test_train_on_a_folder_without_the_training_layout_is_a_clear_error(tmp_path):
    (tmp_path / "data").mkdir()

    result = run_cli("train", str(tmp_path / "data"), "--output", str(tmp_path / "out"), "--set", "imgz=32")

    assert result.returncode == 2
    assert "error:" in result.stderr and "Traceback" not in result.stderr


def test_weights_of_another_variant_or_mode_exit_2_naming_both(tmp_path):
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "w.weights.h5").write_bytes(b"")
    write_metadata(weights, "w.weights.h5")

    result = run_cli("predict", str(tmp_path / "x.mp4"), "--weights", str(weights), "--set", "model_mode=stream")

    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert "movinet-a0-base" in result.stderr and "model_mode='stream'" in result.stderr


def test_saved_model_that_does_not_fit_the_network_exits_2(hub_cache, exported_models, tmp_path):
    # A stream SavedModel given as the handle of a base model: the variables cannot restore.
    result = run_cli(
        "predict",
        str(tmp_path / "x.mp4"),
        "--set",
        f"hub_handle={exported_models['stream']}",
        env_extra={"TFHUB_CACHE_DIR": str(hub_cache)},
    )

    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert "does not match the network" in result.stderr
