"""`movinet train` killed with SIGKILL, then run again with the same --output: it resumes.

Four training processes on one tiny dataset (a0, 32 px, 4 frames, 2 classes, random
initialisation, 4 epochs), seeded alike:

- uninterrupted: the reference run.
- killed while writing checkpoint 2 (the checkpoints module's test hook SIGKILLs the process
  when epoch-0002 is complete under its temporary name, before the rename), then
- run again: it resumes after epoch 1, and is SIGKILLed in the middle of its epoch 4 (from
  outside, as soon as checkpoint 3 exists), then
- run again: it resumes after epoch 3 and finishes.

The last run's record (training_history.json) must be the uninterrupted run's: each epoch's
data comes from (seed, epoch), Adam's state and step come back, and dropout_rate is 0
(dropout masks are not saved).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from adapter.training.checkpoints import KILL_HOOK_ENV, list_checkpoints
from adapter.training.outputs import HISTORY_FILENAME
from adapter.training.resume import RESUME_FILENAME
from tests.conftest import ROOT, set_options
from tests.motion_dataset import write_motion_dataset

EPOCHS = 4
OPTIONS = set_options(
    imgz=32,
    n_frames=4,
    batch_size=2,
    fps=5,
    runtime="tensorflow",
    pretrained="false",
    dropout_rate=0,
    num_epochs=EPOCHS,
    learning_rate=0.003,
)
# The command line takes no seed: seed the process as a user's run would be repeated.
DRIVER = (
    "import sys, tf_keras\n"
    "tf_keras.utils.set_random_seed(0)\n"
    "from adapter.cli.parser import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def start_training(data, output, log, **env) -> subprocess.Popen:
    command = [sys.executable, "-c", DRIVER, "train", data, "--output", str(output), *OPTIONS]
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT), **env}
    return subprocess.Popen(command, cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT)


def train(data, output, tmp_path, name, timeout=600, **env) -> tuple[int, str]:
    log_path = tmp_path / f"{name}.log"
    with open(log_path, "w") as log:
        process = start_training(data, output, log, **env)
        returncode = process.wait(timeout=timeout)
    return returncode, log_path.read_text()


def history(output) -> dict[str, list[float]]:
    with open(os.path.join(output, HISTORY_FILENAME)) as file:
        return json.load(file)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("killed-training-data")
    return write_motion_dataset(root, train_per_class=2, validation_per_class=1, frames=8, width=40, height=40, speed=6)


def test_a_training_killed_mid_checkpoint_write_and_mid_epoch_resumes_to_the_uninterrupted_runs_epochs(
    dataset, tmp_path
):
    returncode, log = train(dataset.root, tmp_path / "reference", tmp_path, "reference")
    assert returncode == 0, log[-3000:]
    reference = history(tmp_path / "reference")

    output = tmp_path / "killed"
    # 1. Killed between writing checkpoint 2 and renaming it: checkpoint 1 is what is left.
    returncode, log = train(dataset.root, output, tmp_path, "killed-at-write", **{KILL_HOOK_ENV: "2"})
    assert returncode == -signal.SIGKILL, log[-3000:]
    assert [epochs for epochs, _ in list_checkpoints(str(output))] == [1]

    # 2. Run again: resumes after epoch 1; killed from outside in the middle of epoch 4.
    with open(tmp_path / "killed-mid-epoch.log", "w") as log_file:
        process = start_training(dataset.root, output, log_file)
        deadline = time.monotonic() + 600
        while not any(epochs == 3 for epochs, _ in list_checkpoints(str(output))):
            assert process.poll() is None and time.monotonic() < deadline, "the run ended before checkpoint 3"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=60) == -signal.SIGKILL
    log = (tmp_path / "killed-mid-epoch.log").read_text()
    assert "Resuming from epoch 1 of 4" in log, log[-3000:]
    newest = list_checkpoints(str(output))[0][1]
    with open(os.path.join(newest, RESUME_FILENAME)) as file:
        state = json.load(file)
    assert state["epochs_done"] == 3  # killed before epoch 4's checkpoint
    steps = state["optimizer_step"] // 3

    # 3. Run again: resumes after epoch 3 and finishes; epochs, optimizer step and history continue.
    returncode, log = train(dataset.root, output, tmp_path, "resumed")
    assert returncode == 0, log[-3000:]
    assert "Resuming from epoch 3 of 4" in log and f"optimizer step {3 * steps}," in log
    assert log.count("Epoch 4/4:") == 1 and "Epoch 1/4:" not in log and "Epoch 3/4:" not in log
    resumed = history(output)
    assert resumed["finished"] is True
    assert set(resumed["history"]) == set(reference["history"])
    # The same float32 operations on the same inputs in the same order: only the summation order of
    # multi-threaded kernels may differ, far below 1e-4 relative over 4 epochs of a few steps. A
    # resume that changed the data, lost Adam's moments or its step, or started over differs by
    # far more (the losses move by more than 1e-2 between epochs here).
    for key, values in reference["history"].items():
        assert resumed["history"][key] == pytest.approx(values, rel=1e-4, abs=1e-5), key
    assert resumed["best_epoch"] == reference["best_epoch"]
