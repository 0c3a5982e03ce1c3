"""Atomic file writes: a temporary file beside the target, flushed, then renamed over it.

A reader sees the old file or the new one, never half of one; a failed write (disk full, a
kill) leaves the previous file as it was and no temporary file behind (except after kill -9,
when a ``.partial-*`` file may remain beside the target, never under its name).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from typing import IO, Any

PARTIAL_PREFIX = ".partial-"


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator[IO]:
    """Open a temporary file beside path for writing; on a clean exit it replaces path.

    Args:
        path: the file to write; its folder must exist.
        mode: "w" (text) or "wb" (bytes).
        kwargs: passed to open() (e.g. encoding).

    Returns:
        A context manager yielding the open temporary file. If the block raises, path is left
        untouched and the temporary file is removed.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes whole files: mode must be 'w' or 'wb'. Received: mode={mode!r}")
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    descriptor, partial = tempfile.mkstemp(prefix=PARTIAL_PREFIX + os.path.basename(path) + ".", dir=folder)
    try:
        with os.fdopen(descriptor, mode, **kwargs) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        # mkstemp makes the file private; give it the mode a plain open() would have.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(partial, 0o666 & ~umask)
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(partial)
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write data to path atomically (see atomic_open)."""
    with atomic_open(path, "wb") as file:
        file.write(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write text (UTF-8) to path atomically (see atomic_open)."""
    with atomic_open(path, "w", encoding="utf-8") as file:
        file.write(text)


def write_json(path: str | os.PathLike, value: Any, **dump_kwargs) -> None:
    """Write value as JSON to path atomically; nothing is written when it cannot be serialised.

    Args:
        path: the file to write.
        value: a JSON-serialisable value.
        dump_kwargs: passed to json.dumps (e.g. indent=2).
    """
    write_text(path, json.dumps(value, **dump_kwargs))


def path_inside(folder: str | os.PathLike, relative: str) -> str | None:
    """folder/relative, or None when relative leads out of folder (``..``, an absolute path after ``/``).

    The check is on the path's text (normalised), not on symbolic links: a link the user put
    inside the folder is followed, a name from a JSON file or a download cannot climb out.

    Args:
        folder: the folder the path must stay in.
        relative: a path relative to folder, as a JSON or manifest names it (leading "/" allowed:
            remote paths start with one).

    Returns:
        The joined, normalised path, or None when it is not strictly inside folder.
    """
    base = os.path.normpath(os.path.abspath(os.fspath(folder)))
    joined = os.path.normpath(os.path.join(base, relative.lstrip("/")))
    if joined == base or os.path.commonpath([base, joined]) != base:
        return None
    return joined


def is_plain_filename(name: object) -> bool:
    """Whether name is one file name: a non-empty string without a folder separator, not "." or "..".

    Args:
        name: the value to check (e.g. weights_filename from movinet.json).

    Returns:
        True for a name that stays in the folder it is joined to.
    """
    return (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and "/" not in name
        and (os.sep == "/" or os.sep not in name)
        and "\0" not in name
    )
