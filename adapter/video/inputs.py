"""A video to predict: a local file, or a platform item downloaded to its own folder (platform.items).

prepare_item_func is called from 16 threads at once and an exception there would abort
the whole call, so a problem with one item is carried in VideoInput.error instead and
reported by predict() for that item alone.
"""

from __future__ import annotations

import dataclasses
import shutil


@dataclasses.dataclass
class VideoInput:
    name: str  # how messages refer to this video
    path: str | None
    item: object | None = None  # the platform item (dtlpy.Item) it was downloaded from
    error: str | None = None
    download_dir: str | None = None  # removed once the video has been predicted

    def cleanup(self) -> None:
        if self.download_dir:
            shutil.rmtree(self.download_dir, ignore_errors=True)
            self.download_dir = None


def local_video(path: str) -> VideoInput:
    """A local video file as predict() takes it; messages name it by its path."""
    return VideoInput(name=path, path=path)
