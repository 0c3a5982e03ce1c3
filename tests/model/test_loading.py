"""Fine-tuned weights are checked when they are loaded: a damaged file or a name leading out of the folder is refused once."""

from __future__ import annotations

import json
import os

import pytest

from adapter.cli import parser as cli
from adapter.model import loading, network
from adapter.model.loading import FineTunedFolderError, FineTunedInfo, find_finetuned, save_finetuned

SMALL = ["--set", "imgz=32", "--set", "n_frames=4", "--set", "runtime=tensorflow"]


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory) -> str:
    folder = str(tmp_path_factory.mktemp("finetuned"))
    model = network.build_classifier("a0", "base", num_classes=2)
    save_finetuned(model, folder, FineTunedInfo("a0", "base", ["a", "b"], imgz=32, n_frames=4, fps=5.0))
    return folder


def test_intact_weights_pass_the_check(finetuned):
    info = find_finetuned(finetuned)

    loading.check_weights_file(os.path.join(finetuned, info.weights_filename))  # does not raise


@pytest.mark.parametrize("keep", [0.5, 0.98])
def test_truncated_weights_exit_2_at_load_naming_the_file_once(finetuned, tmp_path, capsys, keep):
    from tests.videos import write_video

    damaged = tmp_path / "damaged"
    damaged.mkdir()
    info = find_finetuned(finetuned)
    data = open(os.path.join(finetuned, info.weights_filename), "rb").read()
    (damaged / info.weights_filename).write_bytes(data[: int(len(data) * keep)])
    (damaged / loading.METADATA_FILENAME).write_text(open(os.path.join(finetuned, loading.METADATA_FILENAME)).read())
    videos = [write_video(tmp_path / f"v{index}.mp4", frames=8, fps=5, width=32, height=32) for index in range(2)]

    code = cli.main(["predict", *videos, "--weights", str(damaged), *SMALL])

    error = capsys.readouterr().err
    assert code == 2, error[-2000:]
    weights_path = str(damaged / info.weights_filename)
    assert error.count(weights_path) == 1 and "truncated" in error
    assert "FAILED" not in error  # refused at load, not once per video


@pytest.mark.parametrize("name", ["../outside.weights.h5", "/etc/passwd", "sub/w.weights.h5", ".."])
def test_a_weights_filename_that_leads_out_of_the_folder_is_refused(tmp_path, name):
    outside = tmp_path / "outside.weights.h5"
    outside.write_bytes(b"x")
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "w.weights.h5").write_bytes(b"x")
    metadata = dict(model_id="a0", model_mode="base", labels=["a"], imgz=32, n_frames=4, fps=5.0)
    (folder / loading.METADATA_FILENAME).write_text(json.dumps({**metadata, "weights_filename": name}))

    with pytest.raises(FineTunedFolderError, match="not a file name"):
        find_finetuned(str(folder))
