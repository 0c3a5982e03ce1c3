"""adapter/core/files.py: a write that fails leaves the previous file as it was and nothing beside it."""

from __future__ import annotations

import json
import os

import pytest

from adapter.core import files


def _entries(folder) -> list[str]:
    return sorted(os.listdir(folder))


def test_a_write_replaces_the_file_with_the_new_content(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")

    files.write_json(target, {"videos": 2}, indent=2)

    assert json.loads(target.read_text()) == {"videos": 2}
    assert _entries(tmp_path) == ["out.json"]


def test_a_block_that_raises_leaves_the_old_file_intact_and_no_partial(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"good old content")

    with pytest.raises(OSError, match="No space left"):
        with files.atomic_open(target, "wb") as file:
            file.write(b"half of the new")
            raise OSError(28, "No space left on device")

    assert target.read_bytes() == b"good old content"
    assert _entries(tmp_path) == ["out.bin"]


def test_a_value_that_cannot_be_serialised_writes_nothing(tmp_path):
    target = tmp_path / "out.json"
    target.write_text('{"kept": true}')

    with pytest.raises(TypeError):
        files.write_json(target, {"vector": object()})

    assert json.loads(target.read_text()) == {"kept": True}
    assert _entries(tmp_path) == ["out.json"]


def test_a_failing_flush_to_disk_leaves_the_old_file(tmp_path, monkeypatch):
    # A full disk often shows only when the data reaches it (fsync), after every write() succeeded.
    target = tmp_path / "out.txt"
    target.write_text("previous")

    def disk_full(descriptor):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", disk_full)
    with pytest.raises(OSError):
        files.write_text(target, "new text")

    assert target.read_text() == "previous"
    assert _entries(tmp_path) == ["out.txt"]


def test_a_new_file_gets_the_permissions_a_plain_open_would_give(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    atomic = tmp_path / "atomic.txt"

    files.write_text(atomic, "x")

    assert os.stat(atomic).st_mode == os.stat(plain).st_mode


def test_a_missing_folder_is_an_error_before_anything_is_written(tmp_path):
    with pytest.raises(FileNotFoundError):
        files.write_text(tmp_path / "missing" / "out.txt", "x")
    assert _entries(tmp_path) == []


def test_only_whole_file_modes_are_accepted(tmp_path):
    with pytest.raises(ValueError, match="mode"):
        with files.atomic_open(tmp_path / "x", "a"):
            pass


@pytest.mark.parametrize(
    "relative, inside",
    [
        ("/walk.mp4", "walk.mp4"),
        ("clips/a/walk.mp4", "clips/a/walk.mp4"),
        ("/clips/../walk.mp4", "walk.mp4"),
        ("/../../../outside/x.mp4", None),
        ("../items2/x.mp4", None),  # a sibling whose name starts like the folder's
        ("/", None),
        ("clips/..", None),  # the folder itself is not a file in it
    ],
)
def test_path_inside_keeps_names_in_their_folder(tmp_path, relative, inside):
    folder = tmp_path / "items"

    expected = None if inside is None else os.path.join(str(folder), inside)
    assert files.path_inside(folder, relative) == expected


@pytest.mark.parametrize("name, plain", [("w.weights.h5", True), ("..", False), ("a/b.h5", False), ("", False)])
def test_is_plain_filename(name, plain):
    assert files.is_plain_filename(name) is plain
