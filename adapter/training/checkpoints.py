"""Training checkpoints on disk: one folder per kept epoch, each written whole or not at all.

    <folder>/checkpoints/epoch-0003/    after 3 finished epochs:
        movinet_finetuned.weights.h5     the model's weights (save_finetuned's format, with movinet.json)
        movinet.json
        optimizer.index, optimizer.data-*  the optimizer's variables (a tf.train.Checkpoint: Adam's moments and step)
        resume.json                      the run's record (adapter.training.resume) and the size and
                                         SHA-256 of every other file of the folder

A checkpoint is written into a ``.partial-epoch-0003-*`` folder beside its final name, its
files flushed to disk, resume.json last, and only then renamed to ``epoch-0003``. A kill at
any moment leaves every earlier checkpoint as it was, and at worst a ``.partial-*`` folder
that no reader looks at and the next write removes. A reader still checks each file against
resume.json (verify_checkpoint): a copy that came back incomplete from the platform, or a
truncated file, is found and skipped.

A run keeps two checkpoints: its newest and its best epoch's (often the same folder);
prune() removes the others once a newer one is complete.

Test hook: with the environment variable MOVINET_TEST_KILL_BEFORE_CHECKPOINT_RENAME=N the
process SIGKILLs itself when checkpoint epoch-N is complete in its ``.partial-*`` folder but
not yet renamed, the worst moment for a kill (tests/training/test_killed_training.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import tempfile
from collections.abc import Callable

from adapter.core.files import PARTIAL_PREFIX, write_json

CHECKPOINTS_DIRNAME = "checkpoints"
RESUME_FILENAME = "resume.json"
KILL_HOOK_ENV = "MOVINET_TEST_KILL_BEFORE_CHECKPOINT_RENAME"
_EPOCH_DIR = re.compile(r"epoch-(\d{4,})")


class IncompleteCheckpoint(ValueError):
    """A checkpoint folder that is not whole: a file missing, of another size or content, or no record."""


def checkpoints_root(folder: str) -> str:
    """Where a run (or a model's downloaded artifacts) keeps its checkpoints.

    Args:
        folder: the run's output_path, or the folder the artifacts were downloaded to.

    Returns:
        <folder>/checkpoints.
    """
    return os.path.join(folder, CHECKPOINTS_DIRNAME)


def epoch_dir_name(epochs_done: int) -> str:
    """The folder name of the checkpoint taken after epochs_done finished epochs (epoch-0003)."""
    return f"epoch-{epochs_done:04d}"


def epoch_dir(folder: str, epochs_done: int) -> str:
    """The checkpoint folder of a run's epoch.

    Args:
        folder: as checkpoints_root.
        epochs_done: finished epochs when the checkpoint was taken (1 after the first).

    Returns:
        Its path (whether or not it exists).
    """
    return os.path.join(checkpoints_root(folder), epoch_dir_name(epochs_done))


def list_checkpoints(folder: str | None) -> list[tuple[int, str]]:
    """The checkpoint folders under folder's checkpoints/, newest first (unchecked).

    Args:
        folder: as checkpoints_root, or None.

    Returns:
        [(epochs_done, path)]; ``.partial-*`` folders are never listed.
    """
    if not folder:
        return []
    root = checkpoints_root(folder)
    try:
        names = os.listdir(root)
    except OSError:
        return []
    found = []
    for name in names:
        match = _EPOCH_DIR.fullmatch(name)
        if match and os.path.isdir(os.path.join(root, name)):
            found.append((int(match.group(1)), os.path.join(root, name)))
    return sorted(found, reverse=True)


def write_checkpoint(folder: str, epochs_done: int, write_files: Callable[[str], None], record: dict) -> str:
    """Write one epoch's checkpoint as a unit: files, then resume.json naming them, then one rename.

    Args:
        folder: the run's output_path.
        epochs_done: finished epochs (the folder is epoch_dir_name(epochs_done)).
        write_files: writes the checkpoint's files into the folder it is given.
        record: the run's record; stored in resume.json with a "files" entry added.

    Returns:
        The checkpoint's folder. A checkpoint of the same name that was there (an unusable
        one a resumed run is replacing) is removed.
    """
    root = checkpoints_root(folder)
    os.makedirs(root, exist_ok=True)
    name = epoch_dir_name(epochs_done)
    partial = tempfile.mkdtemp(prefix=f"{PARTIAL_PREFIX}{name}-", dir=root)
    try:
        write_files(partial)
        files = {}
        for file_name in sorted(os.listdir(partial)):
            path = os.path.join(partial, file_name)
            _fsync(path)
            files[file_name] = {"size": os.path.getsize(path), "sha256": _sha256(path)}
        write_json(os.path.join(partial, RESUME_FILENAME), {**record, "files": files}, indent=2)
        if os.environ.get(KILL_HOOK_ENV) == str(epochs_done):
            os.kill(os.getpid(), signal.SIGKILL)
        target = os.path.join(root, name)
        if os.path.exists(target):
            # Only an unusable checkpoint can have this name (a resumed run re-trains its epoch):
            # moved aside under a name no reader lists, then removed.
            stale = tempfile.mkdtemp(prefix=f"{PARTIAL_PREFIX}stale-{name}-", dir=root)
            os.replace(target, os.path.join(stale, name))
            shutil.rmtree(stale, ignore_errors=True)
        os.replace(partial, target)
        _fsync(root)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return target


def read_record(checkpoint: str) -> dict:
    """The resume.json of a checkpoint folder, unchecked.

    Args:
        checkpoint: an epoch-NNNN folder.

    Returns:
        Its record; raises IncompleteCheckpoint when there is none or it is not a JSON object.
    """
    path = os.path.join(checkpoint, RESUME_FILENAME)
    try:
        with open(path) as file:
            record = json.load(file)
    except FileNotFoundError:
        raise IncompleteCheckpoint(f"it has no {RESUME_FILENAME}") from None
    except (OSError, ValueError) as err:
        raise IncompleteCheckpoint(f"its {RESUME_FILENAME} cannot be read ({err})") from err
    if not isinstance(record, dict) or not isinstance(record.get("files"), dict):
        raise IncompleteCheckpoint(f"its {RESUME_FILENAME} does not list the checkpoint's files")
    return record


def verify_checkpoint(checkpoint: str) -> dict:
    """The record of a checkpoint whose every file is as resume.json lists it.

    Args:
        checkpoint: an epoch-NNNN folder.

    Returns:
        Its record; raises IncompleteCheckpoint naming the first file that is missing, of another
        size, or of other content.
    """
    record = read_record(checkpoint)
    for name, expected in record["files"].items():
        path = os.path.join(checkpoint, name)
        if os.path.basename(name) != name or not os.path.isfile(path):
            raise IncompleteCheckpoint(f"{name} is missing")
        size = os.path.getsize(path)
        if size != expected.get("size"):
            raise IncompleteCheckpoint(f"{name} has {size} bytes, {RESUME_FILENAME} says {expected.get('size')}")
        if _sha256(path) != expected.get("sha256"):
            raise IncompleteCheckpoint(f"{name} does not match its SHA-256 in {RESUME_FILENAME}")
    return record


def copy_checkpoint(checkpoint: str, folder: str) -> str:
    """Copy a checkpoint folder into folder's checkpoints/, as a unit (temporary name, then rename).

    Args:
        checkpoint: an epoch-NNNN folder (e.g. in the model's downloaded artifacts).
        folder: the run's output_path.

    Returns:
        The copy's path (the checkpoint itself when it is already there).
    """
    name = os.path.basename(os.path.normpath(checkpoint))
    target = os.path.join(checkpoints_root(folder), name)
    if os.path.realpath(target) == os.path.realpath(checkpoint):
        return target

    def copy_files(partial: str) -> None:
        for file_name in os.listdir(checkpoint):
            if file_name != RESUME_FILENAME:
                shutil.copy2(os.path.join(checkpoint, file_name), os.path.join(partial, file_name))

    record = {key: value for key, value in read_record(checkpoint).items() if key != "files"}
    epochs_done = int(_EPOCH_DIR.fullmatch(name).group(1))
    return write_checkpoint(folder, epochs_done, copy_files, record)


def prune(folder: str, keep: set[str]) -> list[str]:
    """Remove the checkpoint folders not in keep, and ``.partial-*`` folders a killed write left.

    Args:
        folder: the run's output_path.
        keep: the checkpoint folder names to keep (e.g. {"epoch-0005", "epoch-0003"}).

    Returns:
        The names removed.
    """
    root = checkpoints_root(folder)
    removed = []
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(root):
            if name in keep or not (name.startswith(PARTIAL_PREFIX) or _EPOCH_DIR.fullmatch(name)):
                continue
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)
            removed.append(name)
    return sorted(removed)


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync(path: str) -> None:
    # A kill leaves written pages to the kernel; fsync also covers a node that loses power.
    with contextlib.suppress(OSError):
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
