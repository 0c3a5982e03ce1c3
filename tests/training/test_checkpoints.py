"""Checkpoint folders (adapter.training.checkpoints): written whole or not at all, checked file by file.

No model here: the files are bytes; test_resume.py writes real weights and optimizer state.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from adapter.core.files import PARTIAL_PREFIX
from adapter.training import checkpoints
from adapter.training.checkpoints import (
    KILL_HOOK_ENV,
    RESUME_FILENAME,
    IncompleteCheckpoint,
    copy_checkpoint,
    epoch_dir,
    list_checkpoints,
    prune,
    verify_checkpoint,
    write_checkpoint,
)
from tests.conftest import ROOT


def files_writer(contents: dict[str, bytes]):
    def write_files(folder):
        for name, data in contents.items():
            with open(os.path.join(folder, name), "wb") as file:
                file.write(data)

    return write_files


def leftovers(folder) -> list[str]:
    return [name for name in os.listdir(checkpoints.checkpoints_root(folder)) if name.startswith(PARTIAL_PREFIX)]


def test_a_checkpoint_records_the_size_and_digest_of_every_file_it_holds(tmp_path):
    path = write_checkpoint(str(tmp_path), 3, files_writer({"w.h5": b"weights", "opt.index": b"ix"}), {"run_id": "r"})

    assert path == epoch_dir(str(tmp_path), 3) and os.path.basename(path) == "epoch-0003"
    record = verify_checkpoint(path)
    assert record["run_id"] == "r"
    assert set(record["files"]) == {"w.h5", "opt.index"}
    assert record["files"]["w.h5"]["size"] == len(b"weights")
    assert leftovers(str(tmp_path)) == []


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda path: os.remove(os.path.join(path, "w.h5")), "w.h5 is missing"),
        (lambda path: open(os.path.join(path, "w.h5"), "wb").write(b"wei"), "w.h5 has 3 bytes"),
        (lambda path: open(os.path.join(path, "w.h5"), "wb").write(b"WEIGHTS"), "SHA-256"),
        (lambda path: os.remove(os.path.join(path, RESUME_FILENAME)), "no resume.json"),
        (lambda path: open(os.path.join(path, RESUME_FILENAME), "w").write("{trunc"), "cannot be read"),
    ],
    ids=["missing", "truncated", "altered", "no-record", "broken-record"],
)
def test_a_damaged_checkpoint_fails_verification_naming_the_file(tmp_path, damage, reason):
    path = write_checkpoint(str(tmp_path), 1, files_writer({"w.h5": b"weights"}), {})
    damage(path)

    with pytest.raises(IncompleteCheckpoint, match=reason):
        verify_checkpoint(path)


def test_a_write_that_fails_leaves_the_earlier_checkpoints_and_no_partial_folder(tmp_path):
    first = write_checkpoint(str(tmp_path), 1, files_writer({"w.h5": b"one"}), {})

    def failing(folder):
        files_writer({"w.h5": b"half"})(folder)
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_checkpoint(str(tmp_path), 2, failing, {})

    assert [path for _, path in list_checkpoints(str(tmp_path))] == [first]
    verify_checkpoint(first)
    assert leftovers(str(tmp_path)) == []


def test_a_kill_before_the_rename_leaves_the_previous_checkpoint_whole_and_the_next_write_cleans_up(tmp_path):
    # A separate process, killed by SIGKILL (the hook) with checkpoint 2 complete but not renamed.
    script = (
        "import sys\n"
        "from adapter.training.checkpoints import write_checkpoint\n"
        "def files(data):\n"
        "    def write(folder):\n"
        "        open(folder + '/w.h5', 'wb').write(data)\n"
        "    return write\n"
        "write_checkpoint(sys.argv[1], 1, files(b'one'), {'epochs_done': 1})\n"
        "write_checkpoint(sys.argv[1], 2, files(b'two'), {'epochs_done': 2})\n"
        "print('not killed')\n"
    )
    env = {**os.environ, KILL_HOOK_ENV: "2", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], env=env, capture_output=True, text=True)

    assert done.returncode == -signal.SIGKILL, done.stderr
    assert "not killed" not in done.stdout
    ((epochs_done, path),) = list_checkpoints(str(tmp_path))
    assert epochs_done == 1 and verify_checkpoint(path)["epochs_done"] == 1
    partial = leftovers(str(tmp_path))
    assert len(partial) == 1  # the complete-but-unnamed checkpoint 2, which no reader lists

    newer = write_checkpoint(str(tmp_path), 2, files_writer({"w.h5": b"two"}), {})
    assert prune(str(tmp_path), {os.path.basename(newer)}) == sorted(["epoch-0001", *partial])
    assert [p for _, p in list_checkpoints(str(tmp_path))] == [newer] and leftovers(str(tmp_path)) == []


def test_rewriting_an_epoch_replaces_the_unusable_checkpoint_of_that_name(tmp_path):
    broken = write_checkpoint(str(tmp_path), 2, files_writer({"w.h5": b"old"}), {})
    with open(os.path.join(broken, "w.h5"), "wb") as file:
        file.write(b"o")  # truncated: a resumed run re-trains this epoch

    again = write_checkpoint(str(tmp_path), 2, files_writer({"w.h5": b"new"}), {"run_id": "again"})

    assert again == broken and verify_checkpoint(again)["run_id"] == "again"
    assert leftovers(str(tmp_path)) == []


def test_prune_keeps_the_named_checkpoints_and_leaves_other_files_alone(tmp_path):
    for epochs in (1, 2, 3):
        write_checkpoint(str(tmp_path), epochs, files_writer({"w.h5": b"x"}), {})
    other = tmp_path / "checkpoints" / "notes.txt"
    other.write_text("mine")

    assert prune(str(tmp_path), {"epoch-0003", "epoch-0001"}) == ["epoch-0002"]
    assert [n for n, _ in list_checkpoints(str(tmp_path))] == [3, 1] and other.read_text() == "mine"


def test_a_copied_checkpoint_is_verified_whole_in_its_new_folder(tmp_path):
    source = write_checkpoint(str(tmp_path / "artifacts"), 4, files_writer({"w.h5": b"x" * 1000}), {"run_id": "r"})

    copy = copy_checkpoint(source, str(tmp_path / "output"))

    assert copy == epoch_dir(str(tmp_path / "output"), 4)
    assert (
        verify_checkpoint(copy)["files"]
        == json.loads((tmp_path / "artifacts/checkpoints/epoch-0004/resume.json").read_text())["files"]
    )
    assert copy_checkpoint(copy, str(tmp_path / "output")) == copy  # already there: nothing to do
